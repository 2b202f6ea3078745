r"""Reproductions of published tables: ``python -m gan_lab.reproduce NAME --profile quick|full|paper``.

Past one machine: ``python -m gan_lab.reproduce NAME --shard i/n`` trains shard ``i`` (0-based) of
``n``, a slice of the trials, and writes a shard record; ``python -m gan_lab.reproduce merge FILES...``
combines the shard records into the record of the whole run (see :mod:`gan_lab.records`, which
also says in what sense the merged record equals an unsharded run: for the same ``--blocks``).

Each reproduction is a :class:`Reproduction` in :data:`gan_lab.reproduce.REGISTRY`: a name, the paper it
reproduces (a key of ``book/references.bib``), the paper's reference numbers, a budget per
profile and a function that trains and measures. :func:`run` executes one and writes a JSON
record with :func:`gan_lab.results.save_json` (atomic, read back and compared): provenance
(device, date, versions, git commit), the configuration, the seeds, every trial's metrics,
and the mean and standard error over trials beside the paper's numbers. The record is
rewritten after every row, marked ``"complete": false`` until the last one is done.

``pacgan``: Table 1 of Lin et al. (2018), rows GAN and PacGAN2 on the 2-D ring and grid.
The setup follows the authors' code: a batch-normalised generator (4 x 400, ReLU), a maxout
discriminator (3 x 200, 5 pieces), :math:`z \in \mathbb{R}^2` standard normal, the
non-saturating loss, Adam with learning rate :math:`10^{-4}` and :math:`\beta_1 = 0.8` for
both networks, 100 packs per batch, simultaneous updates, weights :math:`N(0, 0.02^2)`, and
2,500 samples (batch norm in evaluation mode) scored by :func:`gan_lab.metrics.mode_stats`.
Two differences: fresh data every step instead of a fixed set of 100,000 points, and batch
norm statistics over all ``100 * m`` generated points of a step instead of per pack slot.
Profiles: ``paper`` is the paper's 400,000 iterations (a GPU job); ``full`` is what a 2-core
CPU finishes in about half an hour (1,500 iterations, under 0.4 % of the paper's: it runs the
paper's protocol, not its result, and its numbers are far from the published ones); ``quick``
checks the pipeline in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import data, metrics, profile, train, wgan_toy
from .records import code_version, config_hash, merge, parse_shard, shard_blocks, summarize, summarize_trials
from .results import provenance, save_json

PROFILES = ("quick", "full", "paper")


@dataclass(frozen=True)
class Reproduction:
    """One published result that :func:`run` can reproduce.

    Attributes:
        name: the command-line name.
        title: what is reproduced (paper, table).
        cite: the BibTeX key in ``book/references.bib``.
        reference: the paper's numbers, as the function's rows report them.
        budgets: profile name -> keyword budget (``steps``, ``trials``, ...) for ``train_fn``.
        train_fn: ``(budget, device, progress, on_row, checkpoint, blocks) -> list of rows``;
            ``on_row(rows)`` is called after each finished row, so partial results can be
            saved, ``checkpoint(key)`` gives the checkpoint file for one training run
            (``None`` for none), passed on to :func:`gan_lab.train.fit`, and ``blocks`` lists
            the ``(start, stop)`` blocks of trials to train, one fit each with ``seed=start``
            (:mod:`gan_lab.records`). Each row's ``trials`` are dicts with ``trial`` (index),
            ``seed`` and the metrics, in trial order.
        setup: what else fixes the results (architecture, optimiser, ...): part of the
            configuration hash that decides which shards may be merged.
        table_fn: ``record -> str``, the plain-text table :func:`table` prints for this
            reproduction's records (``None``: the PacGAN table).
    """

    name: str
    title: str
    cite: str
    reference: dict
    budgets: dict
    train_fn: Callable = field(repr=False)
    setup: dict = field(default_factory=dict)
    table_fn: Callable | None = field(default=None, repr=False)


#: Every registered reproduction, by name (what the command line offers).
REGISTRY: dict[str, Reproduction] = {}


def register(reproduction: Reproduction) -> Reproduction:
    """Add ``reproduction`` to :data:`gan_lab.reproduce.REGISTRY`.

    Its name must be new and its budgets must cover every profile.
    """
    if reproduction.name in REGISTRY:
        raise ValueError(f"a reproduction named {reproduction.name!r} is already registered")
    missing = set(PROFILES) - set(reproduction.budgets)
    if missing:
        raise ValueError(f"reproduction {reproduction.name!r} has no budget for profile(s) {sorted(missing)}")
    REGISTRY[reproduction.name] = reproduction
    return reproduction


# --- PacGAN, Table 1 ------------------------------------------------------------------------

#: The PacGAN 2-D networks (Lin et al. 2018, appendix; the authors' code).
PACGAN_ARCH = dict(g_arch="batchnorm", g_hidden=(400, 400, 400, 400), d_arch="maxout",
                   d_hidden=(200, 200, 200), maxout_pieces=5)
#: The PacGAN 2-D training setup, with the NS loss, Adam(1e-4, beta1 = 0.8), batches of 100 packs and
#: simultaneous updates.
PACGAN_TRAIN = dict(loss="ns", z_dim=2, optimizer="adam", lr_g=1e-4, lr_d=1e-4, betas=(0.8, 0.999),
                    batch_size=100, update="simultaneous", n_critic=1)
#: Published Table 1 values of Lin et al. (2018), with modes as (mean, standard error) over 10 trials,
#: and the high-quality fraction and reverse KL as means (their standard errors are not recorded here).
PACGAN_TABLE1 = {
    "ring": {"GAN": {"modes": [6.3, 0.5], "high_quality": 0.982, "reverse_kl": 0.45},
             "PacGAN2": {"modes": [7.9, 0.1], "high_quality": 0.956, "reverse_kl": 0.07}},
    "grid": {"GAN": {"modes": [17.3, 0.8], "high_quality": 0.948, "reverse_kl": 0.70},
             "PacGAN2": {"modes": [23.8, 0.7], "high_quality": 0.913, "reverse_kl": 0.13}},
}
PACGAN_ROWS = (("ring", "GAN", 1), ("ring", "PacGAN2", 2), ("grid", "GAN", 1), ("grid", "PacGAN2", 2))
_DATASETS = {"ring": data.ring, "grid": data.grid}


#: The seed of the fixed evaluation noise (the reference code also fixes it).
PACGAN_EVAL_SEED = 2333


def _pacgan_rows(budget: dict, device: str | None, progress: bool | None, on_row=None,
                 checkpoint=lambda key: None, blocks=None) -> list[dict]:
    steps, trials, n_eval = budget["steps"], budget["trials"], budget["eval_samples"]
    blocks = [(0, trials)] if blocks is None else blocks
    rows = []
    for dataset, method, pack in PACGAN_ROWS:
        mixture = _DATASETS[dataset]()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        per_trial, diverged = [], {}
        for a, b in blocks:  # one seed-batched fit per block: slot j is trial a + j
            key = f"{dataset}-{method}" + ("" if (a, b) == (0, trials) else f"-trials{a}-{b}")
            run_ = train.fit(mixture, steps=steps, seeds=b - a, seed=a, pack=pack, device=device,
                             progress=progress, checkpoint=checkpoint(key),
                             checkpoint_every=max(100, steps // 40), **PACGAN_ARCH, **PACGAN_TRAIN)
            # a fixed evaluation noise, one draw for the block's seeds
            samples = run_.sample(n_eval, rng=torch.Generator().manual_seed(PACGAN_EVAL_SEED))
            stats = metrics.mode_stats(samples, mixture)
            per_trial += [{"trial": a + i, "seed": run_.first_seed + i, "modes": int(stats["modes"][i]),
                           "high_quality": float(stats["high_quality"][i]),
                           "reverse_kl": float(stats["reverse_kl"][i]), "counts": stats["counts"][i].tolist()}
                          for i in range(b - a)]
            diverged.update({str(a + k): v for k, v in getattr(run_, "diverged", {}).items()})
        # every block's fit has this configuration, but for seed = its first trial and seeds = its size
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(run_.config).items()}
        config.update(seed=0, seeds=trials)
        rows.append({
            "dataset": dataset, "method": method, "pack": pack, "train_config": config,
            "seconds": time.perf_counter() - wall0, "cpu_seconds": time.process_time() - cpu0,
            "diverged": diverged, "trials": per_trial, "summary": summarize_trials(per_trial),
            "paper": PACGAN_TABLE1[dataset][method],
        })
        if on_row is not None:
            on_row(rows)
    return rows


register(Reproduction(
    name="pacgan",
    title="PacGAN (Lin et al. 2018), Table 1: GAN and PacGAN2 on 2D-ring and 2D-grid",
    cite="lin2018pacgan",
    reference=PACGAN_TABLE1,
    budgets={
        "quick": {"steps": 30, "trials": 2, "eval_samples": 2500},
        "full": {"steps": 1500, "trials": 10, "eval_samples": 2500},
        "paper": {"steps": 400_000, "trials": 10, "eval_samples": 2500},
    },
    train_fn=_pacgan_rows,
    setup={"arch": PACGAN_ARCH, "train": PACGAN_TRAIN, "rows": PACGAN_ROWS, "eval_seed": PACGAN_EVAL_SEED},
))


# --- WGAN-GP value surfaces, Figure 1 (defined in gan_lab.wgan_toy) ---------------------------

register(Reproduction(name=wgan_toy.NAME, title=wgan_toy.TITLE, cite=wgan_toy.CITE, reference=wgan_toy.PAPER,
                      budgets=wgan_toy.BUDGETS, train_fn=wgan_toy.surface_rows, setup=wgan_toy.SETUP,
                      table_fn=wgan_toy.table))


# --- running one -----------------------------------------------------------------------------


def configuration(name: str, profile_name: str, *, budget: dict | None = None, blocks: int = 1,
                  base_seed: int | None = None) -> dict:
    """The configuration that :func:`run` records (and hashes) for reproduction ``name``.

    Args:
        name: a key of :data:`gan_lab.reproduce.REGISTRY`.
        profile_name: a profile; ``budget`` defaults to its budget in the registry.
        budget: the budget actually run (the profile's, with any overrides).
        blocks: the number of trial blocks.
        base_seed: default :func:`gan_lab.profile.base_seed`.

    Returns:
        A JSON-ready dict: ``reproduction``, ``profile``, ``budget``, ``blocks``, ``base_seed``
        and ``setup``, whose :func:`gan_lab.records.config_hash` a record stores.
    """
    rep = REGISTRY[name]
    budget = dict(rep.budgets[profile_name]) if budget is None else budget
    seed = profile.base_seed() if base_seed is None else base_seed
    return json.loads(json.dumps({"reproduction": rep.name, "profile": profile_name, "budget": budget,
                                  "blocks": blocks, "base_seed": seed, "setup": rep.setup}))


def run(name: str, profile_name: str = "quick", *, trials: int | None = None, steps: int | None = None,
        out: str | Path | None = None, device: str | None = None, progress: bool | None = None,
        checkpoint_dir: str | Path | None = None, shard=None, blocks: int | None = None) -> dict:
    """Run reproduction ``name`` at a profile's budget and return (and optionally save) its record.

    Args:
        name: a key of :data:`gan_lab.reproduce.REGISTRY`, such as ``"pacgan"``.
        profile_name: ``"quick"``, ``"full"`` or ``"paper"``.
        trials: override the profile's number of trials (seeds trained together).
        steps: override the profile's training iterations.
        out: a JSON path to write (rewritten after every row); ``None`` writes nothing.
        device: a torch device; default :func:`gan_lab.profile.device`.
        progress: show progress bars.
        checkpoint_dir: where each training run saves its checkpoints (atomically, every
            40th of its budget); re-running the same command after an interruption resumes
            each run from its last checkpoint, and runs that had finished are not repeated.
            ``None``: no checkpoints.
        shard: ``"i/n"`` or ``(i, n)``: train only shard ``i`` (0-based) of ``n`` and return a shard
            record for :func:`gan_lab.records.merge`; ``None`` trains every trial.
        blocks: into how many blocks of trials the run is split, one seed-batched fit each
            (:mod:`gan_lab.records`); part of the configuration, since a trial's data stream is
            shared with its block. Default 1 unsharded, ``n`` for a shard of ``n``: shards
            ``0/n ... (n-1)/n`` merged equal ``run(..., blocks=n)``.

    Returns:
        The record: ``reproduction``, ``title``, ``cite``, ``profile``, ``complete``,
        ``config`` (what fixes the results) and its ``config_hash``, ``code`` (gan_lab version,
        git commit, sources hash), ``provenance``, ``budget``, ``seeds``, ``trials`` (indices held),
        ``blocks``, ``rows`` (each with ``trials``, ``summary`` and ``paper``), ``cpu_seconds`` and
        ``wall_seconds``; a shard record also has ``shard`` (``index``, ``count``).

    Raises:
        ValueError: for an unknown name or profile, ``trials``/``steps``/``blocks`` that are not
            positive ints, or a ``shard`` that is not ``i/n`` with ``0 <= i < n <= trials``.
    """
    if name not in REGISTRY:
        raise ValueError(f"name must be one of {sorted(REGISTRY)}, got {name!r}")
    if profile_name not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile_name!r}")
    for label, val in (("trials", trials), ("steps", steps), ("blocks", blocks)):
        if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 1):
            raise ValueError(f"{label} must be None or a positive int, got {val!r}")
    rep = REGISTRY[name]
    budget = dict(rep.budgets[profile_name])
    if trials is not None:
        budget["trials"] = trials
    if steps is not None:
        budget["steps"] = steps
    part = None if shard is None else parse_shard(shard)
    n_blocks = blocks if blocks is not None else (1 if part is None else part[1])
    held = shard_blocks(budget["trials"], n_blocks, part)
    held_trials = [t for a, b in held for t in range(a, b)]
    dev = profile.device(device)
    config = configuration(name, profile_name, budget=budget, blocks=n_blocks)
    prov = provenance(dev)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    record = {"reproduction": rep.name, "title": rep.title, "cite": rep.cite, "profile": profile_name,
              "complete": False, "config": config, "config_hash": config_hash(config),
              "code": code_version(prov["git_commit"]), "provenance": prov, "budget": budget,
              "seeds": held_trials, "trials": held_trials,
              "blocks": [list(b) for b in held], "rows": [], "cpu_seconds": 0.0, "wall_seconds": 0.0}
    if part is not None:
        record["shard"] = {"index": part[0], "count": part[1]}

    def save(rows, complete=False):
        record.update(rows=rows, complete=complete, cpu_seconds=time.process_time() - cpu0,
                      wall_seconds=time.perf_counter() - wall0)
        if out is not None:
            save_json(out, record)

    def checkpoint(key: str):
        if checkpoint_dir is None:
            return None
        tag = f"{name}-{profile_name}-{budget['steps']}x{budget['trials']}-{dev.type}-{key}.ckpt"
        return Path(checkpoint_dir) / tag

    rows = rep.train_fn(budget, str(dev), progress, save, checkpoint, held)
    save(rows, complete=True)
    return record


def table(record: dict) -> str:
    """The record's rows beside the paper's numbers, as a plain-text table (mean ± s.e. over trials).

    A reproduction with a ``table_fn`` formats its own records.
    """
    rep = REGISTRY.get(record.get("reproduction"))
    if rep is not None and rep.table_fn is not None:
        return rep.table_fn(record)
    head = f"{'data':5} {'method':8} {'modes (ours)':>14} {'paper':>11} {'HQ % (ours)':>13} {'paper':>6} " \
           f"{'rev-KL (ours)':>14} {'paper':>6}"
    lines = [head, "-" * len(head)]
    for row in record["rows"]:
        s, p = row["summary"], row["paper"]
        lines.append(
            f"{row['dataset']:5} {row['method']:8} "
            f"{s['modes']['mean']:6.1f} ± {s['modes']['stderr']:4.1f} "
            f"{p['modes'][0]:5.1f} ± {p['modes'][1]:3.1f} "
            f"{100 * s['high_quality']['mean']:6.1f} ± {100 * s['high_quality']['stderr']:4.1f} "
            f"{100 * p['high_quality']:6.1f} "
            f"{s['reverse_kl']['mean']:6.2f} ± {s['reverse_kl']['stderr']:4.2f} {p['reverse_kl']:6.2f}")
    return "\n".join(lines)


def merge_files(files, out: str | Path | None = None) -> dict:
    """:func:`gan_lab.records.merge` the shard records in ``files``; save the result to ``out`` if given."""
    record = merge([Path(f) for f in files], names=[str(f) for f in files])
    if out is not None:
        save_json(out, record)
    return record


def _merge_main(argv) -> dict:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.reproduce merge",
                                     description="Combine shard records into the record of the whole run.")
    parser.add_argument("files", nargs="+", help="the shard records (JSON) of one run, every shard once")
    parser.add_argument("--out", default=None, help="JSON path (default results/<name>-<profile>.json)")
    args = parser.parse_args(argv)
    try:
        record = merge_files(args.files)
        default = Path("results") / f"{record['reproduction']}-{record['profile']}.json"
        out = Path(args.out) if args.out else default
        save_json(out, record)
    except ValueError as err:
        parser.error(str(err))
    print(table(record))
    print(f"{len(args.files)} shards, {len(record['trials'])} trials, "
          f"{record['cpu_seconds']:.0f} CPU s -> {out}")
    return record


def main(argv=None) -> dict:
    """The command line: ``NAME [--shard i/n] [options]`` runs one, ``merge FILES...`` merges shards."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return _merge_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m gan_lab.reproduce",
        description="Reproduce a published table; writes JSON with provenance. "
                    "'python -m gan_lab.reproduce merge FILES...' merges shard records.")
    parser.add_argument("name", choices=sorted(REGISTRY))
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--out", default=None,
                        help="JSON path (default results/<name>-<profile>[-shard<i>of<n>].json)")
    parser.add_argument("--trials", type=int, default=None, help="override the profile's number of trials")
    parser.add_argument("--steps", type=int, default=None, help="override the profile's training iterations")
    parser.add_argument("--device", default=None)
    parser.add_argument("--checkpoint-dir", default=None,
                        help="checkpoints for resuming (default: <cache>/checkpoints for full and paper, "
                             "none for quick)")
    parser.add_argument("--shard", default=None, metavar="i/n",
                        help="shard i of n only, 0-based ($SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    parser.add_argument("--blocks", type=int, default=None,
                        help="split the trials into this many seed-batched fits (default 1; n with --shard)")
    args = parser.parse_args(argv)
    ckpt = args.checkpoint_dir
    if ckpt is None and args.profile != "quick":
        ckpt = data.cache_dir() / "checkpoints"
    try:
        part = None if args.shard is None else parse_shard(args.shard)
        tag = "" if part is None else f"-shard{part[0]}of{part[1]}"
        out = Path(args.out) if args.out else Path("results") / f"{args.name}-{args.profile}{tag}.json"
        record = run(args.name, args.profile, trials=args.trials, steps=args.steps, out=out,
                     device=args.device, checkpoint_dir=ckpt, shard=part, blocks=args.blocks)
    except ValueError as err:
        parser.error(str(err))
    print(table(record))
    print(f"{record['provenance']['device_name']}, {record['cpu_seconds']:.0f} CPU s -> {out}")
    return record


if __name__ == "__main__":
    main()
