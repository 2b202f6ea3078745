"""Benchmarks (measurements, not timed tests): ``python -m gan_lab.bench WORKLOAD``.

``seeds``: training K seeds together in one seed-batched run against K separate
single-seed runs of the same networks and budget, on the device present. Writes
``results/bench-seeds-<device>.json`` with provenance.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from . import data, profile, train
from .results import provenance, save_json


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
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.bench", description=__doc__)
    parser.add_argument("workload", choices=["seeds"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 64], help="K values to measure")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    dev = profile.device(args.device)
    record = {"provenance": provenance(dev), "workload": "seeds", "runs": []}
    for k in args.seeds:
        result = bench_seeds(k, args.steps, repeats=args.repeats, device=str(dev))
        record["runs"].append(result)
        print(f"{k} seeds batched: {result['seconds_batched']:.2f} s; {k} separate runs: "
              f"{result['seconds_separate_total']:.2f} s (batched is x{result['speedup_batched_vs_separate']:.2f} "
              f"faster; costs {result['batched_cost_in_single_runs']:.2f} single runs)")
    path = save_json(Path(args.out) / f"bench-seeds-{dev.type}.json", record)
    print(f"on {record['provenance']['device_name']} -> {path}")


if __name__ == "__main__":
    main()
