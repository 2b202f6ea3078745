"""Benchmarks (measurements, not timed tests): ``python -m gan_lab.bench [WORKLOAD]``.

With no workload, the suite runs every workload on the device present and writes
``results/bench-<device>.json`` with provenance. The workloads:

``seeds``
    Training K seeds together in one seed-batched run against K separate single-seed
    runs of the same networks and budget; also the 2-D GAN's steps per second for one
    seed and for 64 seeds batched. Alone it writes ``results/bench-seeds-<device>.json``.
``mnist``
    MNIST DCGAN generator+discriminator steps per second: the optimised loop against a
    plain baseline of the same networks (see :mod:`gan_lab.images`), when that module is
    present.
``chapters``
    The wall time of every chapter executed from a clean kernel in a chosen profile
    (``quick`` by default), as the book build runs it. Alone it writes
    ``results/bench-chapters-<profile>-<device>.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import torch

from . import data, profile, train
from .results import provenance, save_json

ROOT = Path(__file__).resolve().parents[1]


def _timed_fit(**kwargs) -> float:
    dev = profile.device(kwargs.get("device"))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    train.fit(data.ring(), progress=False, **kwargs)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - start


def bench_seeds(seeds: int = 8, steps: int = 300, batch_size: int = 256, repeats: int = 3,
                device: str | None = None) -> dict:
    """Seconds for one K-seed batched run versus K separate runs (best of ``repeats``)."""
    for name, val in (("seeds", seeds), ("steps", steps), ("batch_size", batch_size), ("repeats", repeats)):
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    dev = profile.device(device)
    cfg = dict(steps=steps, batch_size=batch_size, device=str(dev))
    _timed_fit(seeds=1, **{**cfg, "steps": 20})  # warm-up: allocator, kernels, lazy init
    batched = min(_timed_fit(seeds=seeds, **cfg) for _ in range(repeats))
    single = min(_timed_fit(seeds=1, **cfg) for _ in range(repeats))
    separate = single * seeds  # K separate runs cost K times one run
    return {
        "config": {**cfg, "seeds": seeds, "repeats": repeats, "cpu_threads": train.TrainConfig.cpu_threads,
                   "networks": "MLP (64, 64) G and D, ring data"},
        "seconds_batched": batched,
        "seconds_single_seed": single,
        "seconds_separate_total": separate,
        "speedup_batched_vs_separate": separate / batched,
        "batched_cost_in_single_runs": batched / single,
        "steps_per_second_single_seed": steps / single,
        "steps_per_second_batched": steps / batched,
        "seed_steps_per_second_batched": seeds * steps / batched,
    }


def bench_chapters(profile_name: str = "quick", chapters=None, timeout: int = 1800) -> dict:
    """Execute chapters from clean kernels, as the book build does, and time each one.

    Each chapter runs in a fresh kernel with ``GAN_LAB_PROFILE=profile_name``, progress bars
    off and static explorers. Returns the measured wall time of each chapter (kernel start
    included), the kernel's CPU time (user + system, a measure that contention on a shared
    machine does not inflate) and the time the chapter printed for itself.
    """
    if profile_name not in profile.PROFILES:
        raise ValueError(f"profile_name must be one of {profile.PROFILES}, got {profile_name!r}")
    paths = sorted((ROOT / "book").glob("ch*.ipynb")) if chapters is None else [Path(c) for c in chapters]
    if not paths:
        raise ValueError("chapters: no chapter notebooks found")
    import nbformat  # after the checks: bad arguments are refused where Jupyter is not installed
    from nbclient import NotebookClient
    env = {"GAN_LAB_PROFILE": profile_name, "GAN_LAB_PROGRESS": "0", "GAN_LAB_STATIC": "1",
           "OMP_WAIT_POLICY": "PASSIVE"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    out = {}
    try:
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            start, cpu_start = time.perf_counter(), _children_cpu()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
            printed = None
            for cell in nb.cells[::-1]:
                text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
                match = re.search(r"wall time ([0-9.]+) s", text)
                if match:
                    printed = float(match.group(1))
                    break
            out[path.stem] = {"seconds": seconds, "chapter_clock_seconds": printed, "kernel_cpu_seconds": cpu}
            print(f"{path.stem}: {seconds:.1f} s wall, {cpu:.1f} s kernel CPU (chapter clock {printed} s, "
                  f"profile {profile_name})", flush=True)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"profile": profile_name, "chapters": out, "total_seconds": sum(c["seconds"] for c in out.values()),
            "total_kernel_cpu_seconds": sum(c["kernel_cpu_seconds"] for c in out.values())}


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (the chapters' kernels)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_mnist(device: str | None = None, **kwargs) -> dict | None:
    """The MNIST DCGAN workload from :mod:`gan_lab.images`, or ``None`` where it is absent."""
    try:
        from . import images
    except ImportError:
        return None
    run = getattr(images, "benchmark", None)
    return None if run is None else run(device=device, **kwargs)


def suite(device: str | None = None, chapters: bool = True, profile_name: str = "quick") -> dict:
    """Every workload on one device: 2-D steps/s (1 and 64 seeds), MNIST, chapter wall times."""
    dev = profile.device(device)
    record = {"provenance": provenance(dev), "workload": "suite"}
    record["seeds"] = [bench_seeds(k, device=str(dev)) for k in (8, 64)]
    one, many = record["seeds"][-1]["steps_per_second_single_seed"], record["seeds"][-1]["steps_per_second_batched"]
    print(f"2-D GAN: {one:.0f} steps/s with 1 seed, {many:.0f} steps/s with 64 seeds batched", flush=True)
    record["mnist"] = bench_mnist(device=str(dev))
    if chapters:
        record["chapters"] = bench_chapters(profile_name)
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", nargs="?", default="suite", choices=["suite", "seeds", "mnist", "chapters"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 64], help="K values to measure (seeds)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", default="quick", choices=list(profile.PROFILES), help="chapters' profile")
    parser.add_argument("--chapter", action="append", default=None, help="a chapter notebook (repeatable)")
    parser.add_argument("--no-chapters", action="store_true", help="suite without the chapter timings")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    dev = profile.device(args.device)
    out = Path(args.out)
    if args.workload == "seeds":
        record = {"provenance": provenance(dev), "workload": "seeds", "runs": []}
        for k in args.seeds:
            result = bench_seeds(k, args.steps, repeats=args.repeats, device=str(dev))
            record["runs"].append(result)
            print(f"{k} seeds batched: {result['seconds_batched']:.2f} s; {k} separate runs: "
                  f"{result['seconds_separate_total']:.2f} s (batched is x{result['speedup_batched_vs_separate']:.2f} "
                  f"faster; costs {result['batched_cost_in_single_runs']:.2f} single runs)")
        path = save_json(out / f"bench-seeds-{dev.type}.json", record)
    elif args.workload == "chapters":
        record = {"provenance": provenance(dev), "workload": "chapters", **bench_chapters(args.profile, args.chapter)}
        path = save_json(out / f"bench-chapters-{args.profile}-{dev.type}.json", record)
    elif args.workload == "mnist":
        result = bench_mnist(device=str(dev))
        if result is None:
            raise SystemExit("the mnist workload needs gan_lab.images.benchmark, which this version lacks")
        path = save_json(out / f"bench-mnist-{dev.type}.json", {"provenance": provenance(dev), "workload": "mnist",
                                                                 **result})
    else:
        record = suite(str(dev), chapters=not args.no_chapters, profile_name=args.profile)
        path = save_json(out / f"bench-{dev.type}.json", record)
    print(f"on {provenance(dev)['device_name']} -> {path}")


if __name__ == "__main__":
    main()
