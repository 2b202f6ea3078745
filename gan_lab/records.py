"""Reproduction records across machines: trial blocks, shards, configuration hashes and merging.

A reproduction trains ``trials`` independent trials. They are split into ``blocks`` contiguous
blocks of near-equal size (:func:`partition`); each block is one seed-batched
:func:`gan_lab.train.fit` with ``seed`` = the block's first trial and ``seeds`` = its size, so
slot ``j`` of block ``[a, b)`` is trial ``a + j`` and its networks are initialised from that
trial's seed alone. The data and noise stream of a fit, however, is one generator shared by
its slots (seeded with the block's first seed), and the evaluation noise is one draw for all
slots: a trial's numbers depend on the block it is trained in. So the block layout is part of
the configuration (and of its hash), and equality is defined for a fixed layout: shards that
together hold every block of a layout merge (:func:`merge`) into the record that an unsharded
run of the same layout writes, trial for trial, with the same per-trial metrics in trial order
and summaries recomputed over all trials; only the provenance (devices, dates, wall and CPU
times) differs. The metrics are bit for bit equal where training is deterministic: on one
device type (the tests check it on the CPU), and on CUDA as far as its kernels are.

Shard ``i/n`` (``i`` is 0-based, ``0 <= i < n``, which is ``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``
for ``sbatch --array=0-(n-1)``) holds the blocks of part ``i`` of ``partition(blocks, n)``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np

from . import __version__
from .results import load_json

#: Fields of every trial that are labels, not metrics (:func:`summarize_trials` skips them).
TRIAL_LABELS = ("trial", "seed")
#: The row fields that hold timings, which add up over shards and differ between any two runs.
ROW_TIMINGS = ("seconds", "cpu_seconds")


def summarize(values) -> dict:
    """Mean and standard error of the mean (``std(ddof=1) / sqrt(n)``; 0 for one value) over trials."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("values must not be empty")
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "stderr": se}


def summarize_trials(trials: list[dict]) -> dict:
    """:func:`summarize` of every scalar numeric metric of ``trials`` (lists and labels skipped)."""
    keys = [k for k, v in trials[0].items() if k not in TRIAL_LABELS
            and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: summarize([t[k] for t in trials]) for k in keys}


def partition(total: int, parts: int) -> list[tuple[int, int]]:
    """``range(total)`` as ``parts`` contiguous ``(start, stop)`` blocks, the longest first."""
    if not isinstance(parts, int) or isinstance(parts, bool) or not 1 <= parts <= total:
        raise ValueError(f"parts must be an int in [1, {total}], got {parts!r}")
    size, extra = divmod(total, parts)
    starts = [k * size + min(k, extra) for k in range(parts + 1)]
    return list(zip(starts[:-1], starts[1:]))


def parse_shard(shard) -> tuple[int, int]:
    """``"i/n"`` (or ``(i, n)``) -> ``(i, n)``, checked: ``i`` is 0-based, ``0 <= i < n``."""
    text = "/".join(map(str, shard)) if isinstance(shard, (tuple, list)) else str(shard)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"--shard must look like i/n with 0 <= i < n (i is 0-based, as "
                         f"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT), got {text!r}")
    return int(match[1]), int(match[2])


def shard_blocks(trials: int, blocks: int, shard: tuple[int, int] | None) -> list[tuple[int, int]]:
    """The trial blocks ``(start, stop)`` that shard ``(i, n)`` trains (all of them for ``None``)."""
    if shard is not None and shard[1] > trials:
        raise ValueError(f"--shard i/n needs n <= trials ({trials}), got n = {shard[1]}")
    if blocks > trials:
        raise ValueError(f"blocks must be at most trials ({trials}), got {blocks}")
    layout = partition(trials, blocks)
    if shard is None:
        return layout
    i, n = shard
    if n > blocks:
        raise ValueError(f"--shard i/n needs n <= blocks (every shard trains whole blocks of trials), "
                         f"got n = {n} and blocks = {blocks}")
    first, stop = partition(blocks, n)[i]
    return layout[first:stop]


def config_hash(config: dict) -> str:
    """SHA-256 of ``config`` as canonical JSON (sorted keys, tuples as lists)."""
    canonical = json.dumps(json.loads(json.dumps(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def code_version(git_commit: str | None) -> dict:
    """What code wrote a record: the gan_lab version, the git commit, and a SHA-256 of gan_lab's sources
    (which also tells an uncommitted edit apart)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {"gan_lab": __version__, "git_commit": git_commit, "source_sha256": digest.hexdigest()}


def _differs(records: list[dict], names: list[str], what: str, get) -> None:
    values = [get(r) for r in records]
    if any(v != values[0] for v in values):
        listed = "; ".join(f"{n}: {v}" for n, v in zip(names, values))
        raise ValueError(f"shards come from different {what}, refusing to merge them ({listed})")


def _ranges(trials: list[int]) -> str:
    return ", ".join(str(t) for t in trials)


def merge(shards: list, names: list[str] | None = None) -> dict:
    """Combine shard records (dicts or JSON paths) into the record of the whole run.

    Returns the record that :func:`gan_lab.reproduce.run` writes for the same configuration
    unsharded (same ``config``, rows, per-trial metrics in trial order and summaries over all
    trials), with ``provenance["shards"]`` listing each shard's device, date and times, row
    timings and ``cpu_seconds``/``wall_seconds`` summed over the shards, and ``merged_from``.

    Raises:
        ValueError: naming the files, for a file that is not a complete shard record, for shards
            of different reproductions, profiles or configurations (their ``config_hash``), of
            different code (gan_lab version, git commit, sources) or torch versions, and for
            trials held by two shards or by none.
    """
    if not shards:
        raise ValueError("merge needs at least one shard record")
    names = list(names) if names is not None else [str(s) if not isinstance(s, dict) else f"shard {k}"
                                                   for k, s in enumerate(shards)]
    recs = [s if isinstance(s, dict) else load_json(s) for s in shards]
    for rec, name in zip(recs, names):
        if not isinstance(rec, dict) or "shard" not in rec or "config_hash" not in rec:
            what = "the record of a whole run" if isinstance(rec, dict) and "config_hash" in rec else \
                "no 'shard' and 'config_hash' fields"
            raise ValueError(f"{name} is not a shard record ({what}; shard records are written by "
                             "python -m gan_lab.reproduce NAME --shard i/n)")
        if config_hash(rec["config"]) != rec["config_hash"]:
            raise ValueError(f"{name}: its config does not match its config_hash (the file was edited)")
        if not rec.get("complete"):
            raise ValueError(f"{name} is an incomplete shard record (its run was interrupted): "
                             "rerun that shard")
    _differs(recs, names, "configurations (config_hash)", lambda r: r["config_hash"])
    _differs(recs, names, "code versions", lambda r: r["code"])
    _differs(recs, names, "torch versions", lambda r: r["provenance"]["torch"])
    owner: dict[int, str] = {}
    for rec, name in zip(recs, names):
        for t in rec["trials"]:
            if t in owner:
                raise ValueError(f"shards overlap: trial {t} is in both {owner[t]} and {name}")
            owner[t] = name
    expected = recs[0]["config"]["budget"]["trials"]
    missing = [t for t in range(expected) if t not in owner]
    if missing:
        raise ValueError(f"trials {_ranges(missing)} of 0..{expected - 1} are in no shard: "
                         "merge needs every shard of the run")
    order = sorted(range(len(recs)), key=lambda k: min(recs[k]["trials"]))
    recs, names = [recs[k] for k in order], [names[k] for k in order]
    first = recs[0]
    per_trial = ("trials", "summary", "diverged") + ROW_TIMINGS
    _differs(recs, names, "rows (the same configuration gave other rows)",
             lambda r: [{k: v for k, v in row.items() if k not in per_trial} for row in r["rows"]])
    rows = []
    for parts in zip(*(r["rows"] for r in recs)):
        row = {k: v for k, v in parts[0].items() if k not in ("trials", "summary", "diverged")}
        for k in ROW_TIMINGS:
            if k in row:
                row[k] = sum(p[k] for p in parts)
        trials = sorted((t for p in parts for t in p["trials"]), key=lambda t: t["trial"])
        diverged = {k: v for p in parts for k, v in p.get("diverged", {}).items()}
        row.update(diverged=dict(sorted(diverged.items(), key=lambda kv: int(kv[0]))), trials=trials,
                   summary=summarize_trials(trials))
        rows.append({k: row[k] for k in parts[0]})  # the shard's (and the unsharded run's) key order
    provs = [r["provenance"] for r in recs]
    provenance = {k: (v if all(p.get(k) == v for p in provs) else " + ".join(dict.fromkeys(str(p.get(k))
                                                                                     for p in provs)))
                  for k, v in provs[0].items() if k != "wall_seconds"}
    provenance["date"] = max(p["date"] for p in provs)
    provenance["shards"] = [{"file": name, "shard": f"{r['shard']['index']}/{r['shard']['count']}",
                             "trials": r["trials"], "device": r["provenance"]["device"],
                             "device_name": r["provenance"]["device_name"], "date": r["provenance"]["date"],
                             "wall_seconds": r["wall_seconds"], "cpu_seconds": r["cpu_seconds"]}
                            for r, name in zip(recs, names)]
    record = {k: v for k, v in first.items() if k != "shard"}
    record.update(provenance=provenance, seeds=[s for r in recs for s in r["seeds"]],
                  trials=[t for r in recs for t in r["trials"]],
                  blocks=[b for r in recs for b in r["blocks"]],
                  rows=rows, cpu_seconds=sum(r["cpu_seconds"] for r in recs),
                  wall_seconds=sum(r["wall_seconds"] for r in recs))
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    record["merged_from"] = {"files": names, "date": now}
    return record
