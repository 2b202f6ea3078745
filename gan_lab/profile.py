"""Profiles (``quick`` or ``full`` budgets), the device, and the chapter clock.

``GAN_LAB_PROFILE=quick|full`` picks the budget; the default is ``full`` where a
CUDA device is present and ``quick`` otherwise. Both profiles run the same code:
only budgets (steps, seeds, sample counts) differ. ``GAN_LAB_DEVICE`` overrides
the automatic device choice (CUDA if available, else CPU).
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
T = TypeVar("T")


def profile_name() -> str:
    """The active profile: ``GAN_LAB_PROFILE`` if set, else ``full`` on CUDA, else ``quick``."""
    name = os.environ.get("GAN_LAB_PROFILE", "").strip().lower()
    if not name:
        return "full" if torch.cuda.is_available() else "quick"
    if name not in PROFILES:
        raise ValueError(f"GAN_LAB_PROFILE must be one of {PROFILES}, got {name!r}")
    return name


def device(override: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``override``, else ``GAN_LAB_DEVICE``, else CUDA if present, else CPU."""
    choice = override if override is not None else os.environ.get("GAN_LAB_DEVICE") or None
    if choice is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {choice!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was asked for, but CUDA is not available here")
    return dev


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
    """Prints the profile, the device and, at :meth:`finish`, the chapter's wall time."""

    title: str
    profile: str = field(default_factory=profile_name)
    device: torch.device = field(default_factory=device)
    start: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        print(
            f"{self.title} | profile: {self.profile} | device: {self.device} | "
            f"torch {torch.__version__} | python {platform.python_version()}"
        )

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

    Prints the profile and device now and the wall time at ``finish()``. Seeding here is
    the one call through which a chapter fixes Python's, NumPy's and PyTorch's global
    random streams; training and sampling take explicit ``torch.Generator`` objects too.
    """
    if not isinstance(title, str) or not title:
        raise ValueError(f"title must be a non-empty str, got {title!r}")
    seed_all(seed)
    return ChapterClock(title)
