"""Benchmarks (measurements, not timed tests): ``python -m gan_lab.bench [WORKLOAD]``.

Every figure is the ratio of two runs side by side in one process, never an extrapolation: the
engine against a plain PyTorch loop of the same networks written the obvious way
(:mod:`gan_lab.baselines`), alternating for ``repeats`` rounds, min and median over the rounds,
in seed-steps per second, both under ``fit``'s CPU thread count (``TrainConfig.cpu_threads``).
``fit`` runs eager (``compile=False``) and compiled (``compile=True``: compilation seconds, warm
rate, total rate); an engine without a ``compile`` option has its compiled rows skipped with a note.

Workloads (the suite runs all, into ``results/bench-<device>.json`` with provenance; one alone
writes ``results/bench-<workload>-<device>.json``): ``seeds`` (2-D GAN, MLP 64-64: 1 seed against
one plain run, 8 and 64 seeds batched against 8 and 64 plain runs in sequence), ``pacgan`` (PacGAN's
networks: 1 and 20 seeds), ``mnist`` (the DCGAN step of :func:`gan_lab.images.fit_images` against a
``DataLoader`` loop), ``jax`` (the optional JAX + optax peer, jitted and under ``vmap``, skipped with
a line where jax is missing) and ``chapters`` (each chapter's wall time from a clean kernel, into
``bench-chapters-<profile>-<device>.json``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch

from . import baselines, checks, data, profile, train
from .chapter_times import bench_chapters  # noqa: F401  (the chapters workload)
from .results import provenance, save_json

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("suite", "seeds", "pacgan", "mnist", "jax", "chapters")
ENGINES = ("eager", "compiled")  #: the engines of ``fit`` that are timed, ``compile=False`` and ``compile=True``
#: The 2-D GAN of the ``seeds`` and ``jax`` workloads (also :func:`gan_lab.baselines.plain_mlp_gan`'s defaults).
MLP_GAN = dict(batch_size=256, z_dim=2, g_hidden=(64, 64), d_hidden=(64, 64), loss="ns", lr_g=1e-3, lr_d=1e-3,
               betas=(0.5, 0.999))


class CompileUnsupported(RuntimeError):
    """The engine under test takes no ``compile`` option (the compiled rows are skipped)."""


def stats(values) -> dict:
    """``{"min", "median", "all"}`` of a list of numbers (the figures of one row over its repeats)."""
    values = [float(v) for v in values]
    return {"min": min(values), "median": statistics.median(values), "all": values}


def _call_engine(fn, engine: str, dev: torch.device) -> dict:
    """Run ``fn(compile=...)``: wall, compilation and engine-clock seconds, and any warnings.

    Where the engine has no ``compile`` option (``TypeError``) the eager engine runs as ``fn()``
    and the compiled one raises :class:`CompileUnsupported`.
    """
    baselines.sync(dev)
    start, option = time.perf_counter(), True
    with warnings.catch_warnings(record=True) as caught:  # a compile fallback warns: keep what it said
        warnings.simplefilter("always")
        try:
            run = fn(compile=engine == "compiled")
        except TypeError as err:
            if "compile" not in str(err):
                raise
            if engine == "compiled":
                raise CompileUnsupported(f"compiled rows skipped: no compile option in this engine ({err})") \
                    from err
            run, option = fn(), False
    baselines.sync(dev)
    return {"seconds": time.perf_counter() - start, "run_seconds": float(run.seconds),
            "compile_seconds": float(getattr(run, "compile_seconds", 0.0)), "compile_option": option,
            "engine": getattr(run, "engine", engine if option else "eager"),
            "warnings": sorted({str(w.message) for w in caught if "gan_lab" in w.filename})}


def _loop_seconds(result) -> float:
    """The plain loops' own clock (training loop only): one :class:`baselines.PlainRun` or a list of them."""
    runs = result if isinstance(result, (list, tuple)) else [result]
    if not runs or not all(isinstance(r, baselines.PlainRun) for r in runs):
        raise TypeError("clock='loop' needs plain_fn to return a PlainRun or a list of them")
    return sum(r.seconds for r in runs)


def compare(fit_fn, fit_seed_steps: int, plain_fn, plain_seed_steps: int, *, repeats: int, device,
            threads: int | None, engines=ENGINES, warmup=None, clock: str = "wall", plain_clock=None) -> dict:
    """Time the engine against a plain baseline, alternating, ``repeats`` rounds in this process.

    Args:
        fit_fn: ``fit_fn(compile=bool)`` runs the engine once (``fit_seed_steps`` seed-steps): its run.
        plain_fn: ``plain_fn()`` runs the baseline once (``plain_seed_steps``; maybe K plain runs in turn).
        repeats: timed rounds; each runs the baseline, then each of ``engines`` (:data:`ENGINES`).
        threads: CPU threads for the plain loops (give the engine the same count).
        warmup: an untimed callable run first (allocator, kernel selection, lazy imports).
        clock: ``"wall"``: each side timed by the wall clock around the whole call; ``"loop"``: each
            side's own clock of its training loop (``Run.seconds``, which includes compilation, and
            ``PlainRun.seconds``), leaving out one-off work before and after the loop.
        plain_clock: if given, ``plain_clock(plain_fn())`` is the baseline's seconds (a peer's own clock).

    Returns:
        ``plain`` and ``fit`` (per engine) with seconds and seed-steps per second, and ``ratio``:
        per engine, the engine's rate over the baseline's rate of the same round, min/median/all.
        The compiled engine adds ``compile_seconds``, ``warm_...`` (compilation excluded) and
        ``total_...`` (included) figures, or ``skipped`` with the reason. Only the process's first
        compiled round pays the whole compilation: later ones reuse ``torch.compile``'s caches.
    """
    dev = profile.device(device)
    repeats = checks.positive_int("repeats", repeats)
    if clock not in ("wall", "loop"):
        raise ValueError(f"clock must be 'wall' or 'loop', got {clock!r}")
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        raise ValueError(f"engines must be a non-empty subset of {ENGINES}, got {engines!r}")
    if warmup is not None:
        with baselines.cpu_threads(threads if dev.type == "cpu" else None):
            warmup()
    plain, runs, notes = [], {e: [] for e in engines}, {}
    for _ in range(repeats):
        with baselines.cpu_threads(threads if dev.type == "cpu" else None):
            baselines.sync(dev)
            start = time.perf_counter()
            result = plain_fn()
            baselines.sync(dev)
            seconds = time.perf_counter() - start if clock == "wall" else _loop_seconds(result)
            plain.append(seconds if plain_clock is None else plain_clock(result))
        for engine in engines:
            if engine in notes:
                continue
            try:
                runs[engine].append(_call_engine(fit_fn, engine, dev))
            except CompileUnsupported as err:
                notes[engine] = str(err)
    plain_rate = [plain_seed_steps / s for s in plain]
    out = {"clock": clock, "fit": {}, "ratio": {},
           "plain": {"seed_steps": plain_seed_steps, "seconds": plain,
                     "seed_steps_per_second": stats(plain_rate)}}
    for engine in engines:
        if engine in notes:
            out["fit"][engine] = {"skipped": notes[engine]}
            continue
        rows = runs[engine]
        seconds = [r["seconds"] if clock == "wall" else r["run_seconds"] for r in rows]
        rate = [fit_seed_steps / s for s in seconds]
        record = {"seed_steps": fit_seed_steps, "seconds": seconds,
                  "wall_seconds": [r["seconds"] for r in rows],
                  "run_seconds": [r["run_seconds"] for r in rows]}
        if not all(r["compile_option"] for r in rows):
            record["note"] = "this engine takes no compile option yet: timed as called, its only (eager) path"
        if any(r["engine"] != engine for r in rows):
            record["engines_run"] = [r["engine"] for r in rows]  # a failed compile falls back to eager
        if any(r["warnings"] for r in rows):
            record["warnings"] = sorted({w for r in rows for w in r["warnings"]})
        if engine == "compiled":
            warm = [fit_seed_steps / max(s - r["compile_seconds"], 1e-9) for s, r in zip(seconds, rows)]
            record.update(compile_seconds=[r["compile_seconds"] for r in rows],
                          warm_seed_steps_per_second=stats(warm), total_seed_steps_per_second=stats(rate))
            out["ratio"]["compiled_warm"] = stats([w / p for w, p in zip(warm, plain_rate)])
            out["ratio"]["compiled_total"] = stats([t / p for t, p in zip(rate, plain_rate)])
        else:
            record["seed_steps_per_second"] = stats(rate)
            out["ratio"][engine] = stats([t / p for t, p in zip(rate, plain_rate)])
        out["fit"][engine] = record
    return out


def _line(label: str, row: dict, peer: str = "plain") -> str:
    """One printed line per compared row: each engine's median ratio over the baseline (``peer``)."""
    parts = [f"{peer} {row['plain']['seed_steps_per_second']['median']:.0f} seed-steps/s"]
    for engine, rec in row["fit"].items():
        if "skipped" in rec:
            parts.append(f"{engine}: skipped")
        elif engine == "compiled":
            parts.append(f"compiled x{row['ratio']['compiled_warm']['median']:.2f} warm, "
                         f"x{row['ratio']['compiled_total']['median']:.2f} with "
                         f"{statistics.median(rec['compile_seconds']):.1f} s compiling"
                         + (" (fell back to eager: see its warnings)" if "engines_run" in rec else ""))
        else:
            parts.append(f"{engine} x{row['ratio'][engine]['median']:.2f}")
    return f"{label}: " + "; ".join(parts)


def _budget(name: str, value, default: int) -> int:
    return default if value is None else checks.positive_int(name, value)


def _ks(seeds) -> list[int]:
    return [checks.positive_int("seeds", k) for k in (seeds if isinstance(seeds, (list, tuple)) else [seeds])]


def _seed_rows(label: str, cfg: dict, plain, seeds, steps: int, seq_steps, repeats: int, dev, threads,
               engines) -> list[dict]:
    """One :func:`compare` row per K: ``fit`` with K seeds batched against K runs of ``plain(steps, seed)``.

    Each plain run in a K-run sequence trains ``seq_steps`` steps: by default ``steps`` for K = 1 and
    ``max(20, 4 steps / K)`` otherwise (about ``4 steps`` in all); the rows compare seed-steps per second.
    """
    ring, rows = data.ring(), []
    for k in _ks(seeds):
        n = _budget("seq_steps", seq_steps, steps if k == 1 else max(20, steps * 4 // k))
        fit = lambda steps_=steps, **kw: train.fit(ring, progress=False, steps=steps_, seeds=k,  # noqa: E731
                                                   **cfg, **kw)
        row = compare(fit, k * steps, lambda: [plain(n, s) for s in range(k)], k * n, repeats=repeats,
                      device=dev, threads=threads, engines=engines,
                      warmup=lambda: (plain(3, 0), _call_engine(lambda **kw: fit(3, **kw), "eager", dev)))
        rows.append({"seeds": k, "fit_steps": steps, "plain_runs": k, "plain_steps_each": n, **row})
        print(_line(f"{label}, {k} seed(s)", row), flush=True)
    return rows


def bench_seeds(seeds=(1, 8, 64), steps: int | None = None, seq_steps: int | None = None, repeats: int = 3,
                device: str | None = None, threads: int | None = 1, engines=ENGINES) -> dict:
    """The 2-D GAN: ``fit``, K seeds batched, against K plain runs (:func:`gan_lab.baselines.plain_mlp_gan`) in turn.

    ``seeds`` lists the K values (K = 1: one seed of ``fit`` against one plain run of equal budget);
    ``steps`` are ``fit``'s (default 400 on the CPU, 2000 on CUDA), ``seq_steps`` each plain run's
    (default ``steps`` for K = 1, else ``max(20, 4 steps / K)``); ``threads`` serve both sides.
    """
    dev = profile.device(device)
    steps = _budget("steps", steps, 2000 if dev.type == "cuda" else 400)
    threads = checks.optional_positive_int("threads", threads)
    cfg = dict(MLP_GAN, device=str(dev), cpu_threads=threads)
    plain = lambda n, s: baselines.plain_mlp_gan(n, seed=s, device=str(dev))  # noqa: E731
    return {"config": {**cfg, "steps": steps, "repeats": repeats, "data": "ring(8)",
                       "plain": "baselines.plain_mlp_gan: nn.Sequential, BCE-with-logits, Adam, loss.item() "
                                "per step, one D then one G step on fresh noise"},
            "rows": _seed_rows("2-D GAN", cfg, plain, seeds, steps, seq_steps, repeats, dev, threads,
                               engines)}


def bench_pacgan(seeds=(1, 20), steps: int | None = None, seq_steps: int | None = None, repeats: int = 3,
                 device: str | None = None, threads: int | None = 1, pack: int = 1, engines=ENGINES) -> dict:
    """PacGAN's networks and setup through ``fit`` against :func:`gan_lab.baselines.plain_pacgan`, K seeds vs K runs.

    As :func:`bench_seeds`; ``steps`` defaults to 200 on the CPU (1000 on CUDA); ``pack`` is the
    packing degree (1: PacGAN's plain GAN row, 2: PacGAN2).
    """
    from .reproduce import PACGAN_ARCH, PACGAN_TRAIN

    dev = profile.device(device)
    steps = _budget("steps", steps, 1000 if dev.type == "cuda" else 200)
    threads = checks.optional_positive_int("threads", threads)
    pack = checks.positive_int("pack", pack)
    cfg = dict(**PACGAN_ARCH, **PACGAN_TRAIN, pack=pack, device=str(dev), cpu_threads=threads)
    plain = lambda n, s: baselines.plain_pacgan(n, seed=s, pack=pack, device=str(dev))  # noqa: E731
    return {"config": {**cfg, "steps": steps, "repeats": repeats, "data": "ring(8)",
                       "plain": "baselines.plain_pacgan: Linear+BatchNorm1d+ReLU G 4x400, maxout D 3x200x5, "
                                "simultaneous updates, loss.item() per step"},
            "rows": _seed_rows("PacGAN networks", cfg, plain, seeds, steps, seq_steps, repeats, dev, threads,
                               engines)}


def bench_mnist(images=None, steps: int | None = None, repeats: int = 2, batch_size: int = 128,
                width: int = 32, device: str | None = None, threads: int | None = 1, engines=ENGINES) -> dict:
    """The MNIST DCGAN step: :func:`gan_lab.images.fit_images` against :func:`gan_lab.baselines.plain_dcgan`.

    Both: the same networks, NS loss, Adam(2e-4, (0.5, 0.999)), one D and one G step per step. ``fit_images``
    runs without its moving average (``ema=None``), as the plain loop keeps none. Each side is timed by
    its own clock of the training loop (``clock="loop"``): the wall time of ``fit_images`` also holds
    its one-off batch-norm recalibration after the loop (recorded as ``wall_seconds``). ``steps`` defaults to
    30 on the CPU (300 on CUDA); ``images`` to the MNIST training digits (:func:`gan_lab.data.load_mnist`).
    """
    from . import images as images_mod

    dev = profile.device(device)
    steps = _budget("steps", steps, 300 if dev.type == "cuda" else 30)
    batch_size, width = checks.positive_int("batch_size", batch_size), checks.positive_int("width", width)
    threads = checks.optional_positive_int("threads", threads)
    x = data.load_mnist("train").images if images is None else images
    cfg = dict(loss="ns", batch_size=batch_size, width=width, ema=None, device=str(dev), cpu_threads=threads)
    fit_fn = lambda steps_=steps, **kw: images_mod.fit_images(x, progress=False, steps=steps_,  # noqa: E731
                                                              **cfg, **kw)
    plain = lambda steps_: baselines.plain_dcgan(x, steps_, batch_size=batch_size, width=width,  # noqa: E731
                                                 device=str(dev))
    row = compare(fit_fn, steps, lambda: plain(steps), steps, repeats=repeats, device=dev, threads=threads,
                  engines=engines, clock="loop",
                  warmup=lambda: (plain(2), _call_engine(lambda **kw: fit_fn(2, **kw), "eager", dev)))
    print(_line("MNIST DCGAN step", row), flush=True)
    return {"config": {**cfg, "steps": steps, "repeats": repeats, "n_train": len(x),
                       "plain": "baselines.plain_dcgan: DataLoader over float32 images, shuffled, "
                                "batch .to(device), default memory format, loss.item() per step"}, **row}


def bench_jax(seeds=(1, 16), steps: int | None = None, repeats: int = 3, device: str | None = None,
              threads: int | None = 1, engines=ENGINES) -> dict:
    """The optional JAX peer (:func:`gan_lab.baselines.jax_mlp_gan`) beside ``fit``, per seed-step, in one process.

    Returns ``{"skipped": reason}`` where jax or optax does not import. Else one :func:`compare` row
    per K with ``jax`` in place of ``plain`` (its compilation timed apart): ``ratio`` is ``fit`` over
    JAX. JAX's threads are XLA's own (not set here).
    """
    dev = profile.device(device)
    seeds, repeats = _ks(seeds), checks.positive_int("repeats", repeats)
    steps = _budget("steps", steps, 2000 if dev.type == "cuda" else 400)
    reason = baselines.jax_available()
    if reason is not None:
        print(f"JAX peer: skipped: {reason}", flush=True)
        return {"skipped": reason}
    ring = data.ring()
    cfg = dict(MLP_GAN, device=str(dev), cpu_threads=threads)
    record = {"config": {**cfg, "steps": steps, "repeats": repeats}, "rows": []}
    for k in seeds:
        jax_runs: list[dict] = []
        fit = lambda steps_=steps, **kw: train.fit(ring, progress=False, steps=steps_, seeds=k,  # noqa: E731
                                                   **cfg, **kw)
        # JAX's own clock leaves out its compilation (timed apart), as the compiled engine's warm rate does
        peer = lambda: jax_runs.append(baselines.jax_mlp_gan(steps, seeds=k)) or jax_runs[-1]  # noqa: E731
        row = compare(fit, k * steps, peer, k * steps, repeats=repeats, device=dev, threads=threads,
                      engines=engines, plain_clock=lambda r: r["seconds"],
                      warmup=lambda: _call_engine(lambda **kw: fit(3, **kw), "eager", dev))
        print(_line(f"JAX peer, {k} seed(s)", row, peer="jax"), flush=True)
        row["jax"] = dict(row.pop("plain"), compile_seconds=[r["compile_seconds"] for r in jax_runs])
        record["rows"].append({"seeds": k, **row})
    return record


def suite(device: str | None = None, chapters: bool = True, profile_name: str = "quick", repeats: int = 3,
          threads: int | None = 1, engines=ENGINES) -> dict:
    """Every workload on one device in one record: ``seeds``, ``pacgan``, ``mnist``, ``jax``, ``chapters``."""
    dev = profile.device(device)
    common = dict(device=str(dev), repeats=repeats, threads=threads, engines=engines)
    record = {"provenance": provenance(dev), "workload": "suite", "cpu_threads": threads}
    record["seeds"] = bench_seeds(**common)
    record["pacgan"] = bench_pacgan(**common)
    record["mnist"] = bench_mnist(**common)
    record["jax"] = bench_jax(**common)
    if chapters:
        record["chapters"] = bench_chapters(profile_name)
    return record


def main(argv=None) -> dict:
    """The command line: run one workload (or the suite), print its figures and save the JSON record."""
    parser = argparse.ArgumentParser(prog="python -m gan_lab.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", nargs="?", default="suite", choices=WORKLOADS)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="K values (seeds: 1 8 64; pacgan: 1 20; jax: 1 16)")
    parser.add_argument("--steps", type=int, default=None, help="fit's steps per run (default per workload)")
    parser.add_argument("--seq-steps", type=int, default=None, help="steps of each plain run in a K-run row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=train.TrainConfig.cpu_threads,
                        help="CPU threads for fit and the plain loops alike")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--pack", type=int, default=1, help="pacgan: packing degree")
    parser.add_argument("--profile", default="quick", choices=list(profile.PROFILES), help="chapter profile")
    parser.add_argument("--chapter", action="append", default=None, help="a chapter notebook (repeatable)")
    parser.add_argument("--no-chapters", action="store_true", help="suite without the chapter timings")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    for option, where in (("seeds", "seeds pacgan jax"), ("steps", "seeds pacgan mnist jax"),
                          ("pack", "pacgan"), ("seq_steps", "seeds pacgan"), ("chapter", "chapters")):
        if getattr(args, option) != parser.get_default(option) and args.workload not in where.split():
            parser.error(f"--{option.replace('_', '-')} applies to the workload(s) {where}, "
                         f"not {args.workload}")
    dev = profile.device(args.device)
    out, name = Path(args.out), args.workload
    common = dict(device=str(dev), repeats=args.repeats, threads=args.threads, engines=tuple(args.engines))
    two_d = dict(steps=args.steps, **common, **({"seeds": tuple(args.seeds)} if args.seeds else {}))
    if name == "suite":
        record = suite(chapters=not args.no_chapters, profile_name=args.profile, **common)
        path = save_json(out / f"bench-{dev.type}.json", record)
    elif name == "chapters":
        record = {"provenance": provenance(dev), "workload": name,
                  **bench_chapters(args.profile, args.chapter)}
        path = save_json(out / f"bench-chapters-{args.profile}-{dev.type}.json", record)
    else:
        result = {"seeds": lambda: bench_seeds(seq_steps=args.seq_steps, **two_d),
                  "pacgan": lambda: bench_pacgan(seq_steps=args.seq_steps, pack=args.pack, **two_d),
                  "jax": lambda: bench_jax(**two_d),
                  "mnist": lambda: bench_mnist(steps=args.steps, **common)}[name]()
        record = {"provenance": provenance(dev), "workload": name, "cpu_threads": args.threads, name: result}
        path = save_json(out / f"bench-{name}-{dev.type}.json", record)
    print(f"on {record['provenance']['device_name']} -> {path}")
    return record


if __name__ == "__main__":
    main()
