"""The one training loop behind every fit: history, divergence, snapshots, checkpoints, progress.

A fit (:func:`gan_lab.train.fit`, :func:`~gan_lab.train.fit_discriminator`,
:func:`~gan_lab.train.fit_mmd`, :func:`gan_lab.images.fit_images`) builds its networks,
optimisers and one *iteration* (a function of the step index that trains one step and
returns that step's statistics as a tensor ``(k, S)`` on the device), and hands them to
:func:`run`. The loop then does everything else the same way for all of them:

- the statistics go into one preallocated device buffer (:class:`History`), one write per step;
  the host reads it only every ``check_every`` steps, to look for non-finite losses;
- a seed whose loss became NaN or infinite is reported (:class:`TrainingDiverged` when no
  seed is left), the others train on;
- snapshots every ``snapshot_every`` steps;
- checkpoints through :mod:`gan_lab.checkpoint` (networks, optimisers, random stream,
  history, snapshots), resumable bit for bit on the same device type;
- a progress bar, and the CPU thread count set for the loop and restored after it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import checkpoint as checkpoint_file
from . import profile


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite: raised for a single-seed run, or when every seed diverged."""


class History:
    """Per-step statistics ``(steps, k, S)`` in one device buffer, filled in place."""

    def __init__(self, names, steps: int, seeds: int, device: torch.device, watched=()):
        self.names = tuple(names)
        self.buffer = torch.zeros(steps, len(self.names), seeds, device=device)
        self.watched = [self.names.index(n) for n in watched]  # rows checked for finiteness

    def write(self, step: int, row: torch.Tensor) -> None:
        self.buffer[step] = row.reshape(self.buffer.shape[1:])

    def rows(self, start: int, stop: int) -> dict:
        return {n: self.buffer[start:stop, i].detach().cpu().clone() for i, n in enumerate(self.names)}

    def load_rows(self, start: int, stop: int, rows: dict) -> None:
        for i, n in enumerate(self.names):
            self.buffer[start:stop, i] = rows[n].to(self.buffer.device)

    def numpy(self, squeeze_seeds: bool = False) -> dict:
        """name -> array ``(steps, S)`` (``(steps,)`` with ``squeeze_seeds``)."""
        arr = self.buffer.cpu().numpy()
        return {n: arr[:, i, 0] if squeeze_seeds else arr[:, i] for i, n in enumerate(self.names)}


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device):
    """Run the block with ``n`` torch CPU threads (CPU devices only), then restore the old count."""
    if n is None or device.type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def config_record(config) -> dict:
    """A config dataclass as plain Python values (what a checkpoint can store and compare)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


@dataclass
class State:
    """What a checkpoint holds: networks, optimisers, random stream, history, snapshots, progress.

    The state file is rewritten at each save; the history rows and snapshots since the last
    save are appended to the log, so saving stays linear in steps.
    """

    modules: dict  # name -> nn.Module
    optimizers: dict  # name -> torch.optim.Optimizer
    rng: torch.Generator
    history: History
    snapshots: list
    snapshot_type: type | None = None  # rebuilds a snapshot from its stored dict
    step: int = 0  # generator steps done
    checked: int = 0  # steps already checked for divergence
    seconds: float = 0.0
    diverged: dict = field(default_factory=dict)
    saved_step: int = 0
    saved_snaps: int = 0
    log_bytes: int = 0
    resumed_from: int = 0  # the step a checkpoint resumed the run from

    def _state(self, config, engine: str) -> dict:
        return {
            "device_type": self.rng.device.type, "torch": str(torch.__version__),
            "config": config_record(config), "base_seed": profile.base_seed(), "engine": engine,
            "step": self.step, "checked": self.checked, "seconds": self.seconds,
            "diverged": [[s, t] for s, t in self.diverged.items()],
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "rng": self.rng.get_state(),
        }

    def save(self, path, config, engine: str) -> None:
        snaps = [asdict(s) if is_dataclass(s) else s for s in self.snapshots[self.saved_snaps:]]
        chunk = {"start": self.saved_step, "stop": self.step,
                 "history": self.history.rows(self.saved_step, self.step), "snapshots": snaps}
        self.log_bytes = checkpoint_file.save(path, self._state(config, engine), chunk, self.log_bytes)
        self.saved_step, self.saved_snaps = self.step, len(self.snapshots)

    def load(self, path, config, engine: str) -> None:
        ckpt, chunks = checkpoint_file.load(path)
        record = config_record(config)
        # the device is compared by type below (any CUDA index resumes a CUDA checkpoint), and the
        # engine (which ``compile`` chooses) by the engine that actually wrote the checkpoint
        diff = sorted(k for k in set(ckpt["config"]) | set(record)
                      if k not in ("device", "compile") and ckpt["config"].get(k) != record.get(k))
        if diff:
            raise ValueError(f"checkpoint {path} was written by a run with a different config "
                             f"(fields {diff}); pass resume=False to start afresh")
        if ckpt["base_seed"] != profile.base_seed():
            raise ValueError(f"checkpoint {path} was written with base seed GAN_LAB_SEED={ckpt['base_seed']}, "
                             f"this run has {profile.base_seed()}; set it back or pass resume=False")
        dev = self.rng.device
        if ckpt["device_type"] != dev.type:
            raise ValueError(f"checkpoint {path} was written on a {ckpt['device_type']} device (torch "
                             f"{ckpt['torch']}) and cannot resume on {dev}: the random stream of one device "
                             f"type does not carry over to another. Resume on {ckpt['device_type']} "
                             f"(device={ckpt['device_type']!r} or GAN_LAB_DEVICE), or pass resume=False.")
        if ckpt["engine"] != engine:
            raise ValueError(f"checkpoint {path} was written by the {ckpt['engine']} step and this run uses the "
                             f"{engine} step (their arithmetic differs in rounding); pass compile="
                             f"{ckpt['engine'] == 'compiled'} to resume it, or resume=False")
        for k, m in self.modules.items():
            m.load_state_dict(ckpt["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        self.rng.set_state(ckpt["rng"])
        self.step, self.checked, self.seconds = ckpt["step"], ckpt["checked"], ckpt["seconds"]
        self.diverged = {int(s): int(t) for s, t in ckpt["diverged"]}
        done = 0
        self.snapshots.clear()
        for chunk in chunks:
            if chunk["start"] != done:
                raise ValueError(f"checkpoint log of {path} is inconsistent: a chunk starts at step "
                                 f"{chunk['start']}, expected {done}")
            self.history.load_rows(chunk["start"], chunk["stop"], chunk["history"])
            self.snapshots.extend(self.snapshot_type(**s) for s in chunk["snapshots"])
            done = chunk["stop"]
        if done != self.step:
            raise ValueError(f"checkpoint log of {path} covers {done} steps, its state {self.step}")
        self.saved_step, self.saved_snaps, self.log_bytes = self.step, len(self.snapshots), ckpt["log_bytes"]


def check_divergence(state: State, step: int, n_seeds: int) -> None:
    """Flag seeds whose watched losses became non-finite since the last check.

    A single-seed run (or a batched run in which every seed has diverged) raises
    :class:`TrainingDiverged`; otherwise newly diverged seeds get a ``RuntimeWarning``.
    """
    hist, lo = state.history, state.checked
    state.checked = step
    if not hist.watched or step <= lo:
        return
    block = hist.buffer[lo:step, hist.watched]  # (T, w, S)
    bad = ~torch.isfinite(block).all(1)  # (T, S)
    if not bool(bad.any()):
        return
    bad, new = bad.cpu(), []
    for s in range(n_seeds):
        rows = bad[:, s].nonzero()
        if s not in state.diverged and len(rows):
            state.diverged[s] = lo + int(rows[0]) + 1  # 1-based generator step
            new.append(s)
    if n_seeds == 1 or len(state.diverged) == n_seeds:
        raise TrainingDiverged(_diverged_message(state, n_seeds))
    if new:
        listed = ", ".join(f"seed index {s} at step {state.diverged[s]}" for s in new)
        warnings.warn(f"training diverged (NaN or inf loss) for {listed}; the other seeds keep training. "
                      "See run.diverged.", RuntimeWarning, stacklevel=5)


def _diverged_message(state: State, n_seeds: int) -> str:
    hist = state.history
    names = [hist.names[i] for i in hist.watched]
    s = min(state.diverged, key=state.diverged.get)
    t = state.diverged[s] - 1  # row of the first bad step
    values = hist.buffer[: t + 1, hist.watched, s].cpu()  # (t + 1, w)
    which = ", ".join(f"{k} = {float(v)}" for k, v in zip(names, values[t]) if not np.isfinite(float(v)))
    finite = torch.isfinite(values[:t]).all(1).nonzero()
    if len(finite):
        last = int(finite[-1])
        before = ", ".join(f"{k} = {float(v):.6g}" for k, v in zip(names, values[last]))
        before = f"last finite values (step {last + 1}): {before}"
    else:
        before = "no finite step before it"
    scope = "the run" if n_seeds == 1 else f"all {n_seeds} seeds (seed index {s} first)"
    return (f"training diverged at step {t + 1} of {scope}: {which}; {before}. "
            "Try a smaller learning rate, a gradient penalty, or another loss.")


def run(iteration: Callable[[int], torch.Tensor], state: State, config, *, steps: int, n_seeds: int,
        label: str, progress: bool | None = None, snapshot: Callable[[int], object] | None = None,
        snapshot_every: int | None = None, checkpoint=None, checkpoint_every: int = 500,
        resume: bool = True, threads: int | None = 1, engine: str = "eager",
        check_every: int | None = None) -> float:
    """Train ``steps`` iterations (continuing from ``checkpoint`` if it exists); return the seconds taken.

    Args:
        iteration: trains step ``i`` (0-based) and returns its statistics ``(k, S)``.
        state: the :class:`State` (networks, optimisers, stream, history, snapshots).
        config: the run's config dataclass (stored in and compared against checkpoints).
        snapshot: returns the snapshot object after ``i`` steps; called at 0 and every ``snapshot_every``.
        check_every: steps between reads of the history for non-finite losses (default 25 on
            the CPU; 500 on CUDA, where each read waits for the device).
    """
    dev = state.rng.device
    check_every = check_every or (25 if dev.type == "cpu" else 500)
    if snapshot_every and snapshot is not None and not state.snapshots:
        state.snapshots.append(snapshot(0))
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state.load(checkpoint, config, engine)
    state.resumed_from = state.step
    start = time.perf_counter() - state.seconds
    bar = profile.progress_bar(range(state.step, steps), label, progress)
    with cpu_threads(threads, dev):
        for i in bar:
            state.history.write(i, iteration(i))
            done = state.step = i + 1
            if snapshot_every and snapshot is not None and done % snapshot_every == 0:
                state.snapshots.append(snapshot(done))
            if done % check_every == 0 or done == steps:
                check_divergence(state, done, n_seeds)
            if checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
                state.seconds = time.perf_counter() - start
                state.save(checkpoint, config, engine)
    bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - start
