"""Profiles (``quick`` or ``full`` budgets), the device, the base seed and the chapter clock.

``GAN_LAB_PROFILE=quick|full`` picks the budget; the default is ``quick`` on every
device (``full`` only when asked). Both profiles run the same code: only budgets
(steps, seeds, sample counts) differ. ``GAN_LAB_DEVICE`` overrides the automatic
device choice (CUDA if available, else CPU). ``GAN_LAB_SEED`` (default 0) is the base
seed: it shifts every seed a chapter uses, through :func:`seed_for` and :func:`rng` (the
random generator for purpose ``i``) and :func:`gan_lab.train.fit`.
"""

from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

PROFILES = ("quick", "full")
DEVICE_TYPES = ("cpu", "cuda")  #: device types gan_lab runs on
#: The distance between the seed ranges of consecutive base seeds. Base seed ``b`` turns seed
#: ``i`` into ``i + SEED_STRIDE * b``, so base seeds 0, 1, 2, ... use disjoint random streams
#: as long as a chapter's seeds stay below the stride.
SEED_STRIDE = 1000
T = TypeVar("T")


def profile_name() -> str:
    """The active profile: ``GAN_LAB_PROFILE`` if set, else ``quick`` (on every device)."""
    raw = os.environ.get("GAN_LAB_PROFILE", "")
    name = raw.strip().lower()
    if not name:
        return "quick"
    if name not in PROFILES:
        raise ValueError(f"GAN_LAB_PROFILE must be one of {PROFILES}, got {raw!r}")
    return name


def base_seed() -> int:
    """The base seed, ``GAN_LAB_SEED`` (a non-negative integer; default 0)."""
    raw = os.environ.get("GAN_LAB_SEED", "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"GAN_LAB_SEED must be a non-negative integer such as 0 or 7, got {raw!r}")
    return value


def seed_for(i: int = 0) -> int:
    """Seed number ``i`` shifted by the base seed: ``i + SEED_STRIDE * base_seed()``."""
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < SEED_STRIDE:
        raise ValueError(f"i must be an int in [0, {SEED_STRIDE}), got {i!r}")
    return i + SEED_STRIDE * base_seed()


def rng(i: int = 0, device: str | torch.device | None = "cpu") -> torch.Generator:
    """The random generator for purpose ``i``: a ``torch.Generator`` seeded with :func:`seed_for` ``(i)``.

    Chapters draw every sample, code and evaluation set through this, so ``GAN_LAB_SEED``
    moves all of them at once. ``device`` is where the generator (and so what it draws)
    lives: the CPU by default, ``None`` for :func:`device`.
    """
    dev = torch.device("cpu") if device == "cpu" else _pick_device(device)
    return torch.Generator(dev).manual_seed(seed_for(i))


def _normalise(dev: torch.device) -> torch.device:
    """``cuda`` -> ``cuda:<current index>`` so that devices compare equal when they are the same."""
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return dev


def device(override: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``override``, else ``GAN_LAB_DEVICE``, else CUDA if present, else CPU.

    CUDA devices come with their index (``cuda:0``), so that two names of one device compare equal.
    """
    env = os.environ.get("GAN_LAB_DEVICE", "").strip()
    source = "device" if override is not None else "GAN_LAB_DEVICE"
    choice = override if override is not None else env or None
    if choice is None:
        return _normalise(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{source} must name a torch device such as 'cpu', 'cuda' or 'cuda:1', "
                         f"got {choice!r}") from err
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"{source} must be a device of type {DEVICE_TYPES}, got {choice!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{source} {str(choice)!r} was asked for, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{source} {str(choice)!r} is not present: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return _normalise(dev)


_pick_device = device


def same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """Whether two device names mean the same device (``cuda`` and ``cuda:0`` do)."""
    return _normalise(torch.device(a)) == _normalise(torch.device(b))


def budget(quick: T, full: T) -> T:
    """Pick ``quick`` or ``full`` by the active profile (same code, different sizes)."""
    return quick if profile_name() == "quick" else full


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether training shows a progress bar: ``progress`` if given, else ``GAN_LAB_PROGRESS`` (default on).

    The book build sets ``GAN_LAB_PROGRESS=0`` so that static pages carry no
    progress widgets; readers running a chapter see the bar.
    """
    if progress is not None:
        return bool(progress)
    return os.environ.get("GAN_LAB_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


def progress_bar(iterable, desc: str, progress: bool | None = None):
    """A tqdm bar over ``iterable``: the notebook widget or terminal bar (``tqdm.auto``) when
    progress is on, a silent pass-through when off (so no widget warning is printed either)."""
    if progress_enabled(progress):
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc)
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, disable=True)


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators with one call."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class ChapterClock:
    """Prints the profile, the device, the base seed and, at :meth:`finish`, the chapter's wall time."""

    title: str
    profile: str = field(default_factory=profile_name)
    device: torch.device = field(default_factory=device)
    base_seed: int = field(default_factory=base_seed)
    start: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        # three short lines: each fits the website's 77-character output box
        print(f"{self.title}\nprofile: {self.profile} | device: {self.device} | base seed: {self.base_seed}\n"
              f"torch {torch.__version__} | python {platform.python_version()}")

    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return time.perf_counter() - self.start

    def finish(self) -> None:
        """Print the wall time since the chapter started (returns nothing, so a notebook's last
        cell shows the line once; :meth:`elapsed` gives the number)."""
        seconds = self.elapsed()
        print(f"{self.title}: wall time {seconds:.1f} s (profile {self.profile}, device {self.device})")


def start_chapter(title: str, seed: int = 0) -> ChapterClock:
    """Start a chapter: seed every global generator (:func:`seed_all`) and its clock.

    Prints the profile, the device and the base seed now and the wall time at ``finish()``.
    The global generators get ``seed`` shifted by the base seed (``GAN_LAB_SEED``). Seeding
    here is the one call through which a chapter fixes Python's, NumPy's and PyTorch's
    global random streams; training and sampling take explicit generators from :func:`rng`.
    """
    if not isinstance(title, str) or not title:
        raise ValueError(f"title must be a non-empty str, got {title!r}")
    seed_all(seed_for(seed))
    return ChapterClock(title)
