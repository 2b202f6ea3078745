"""The ``chapters`` benchmark workload: every chapter executed from a clean kernel, timed.

``python -m gan_lab.bench chapters [--profile full]`` calls :func:`bench_chapters`, as the
book build executes the chapters (progress bars off, static explorers), and records each
chapter's wall time, its kernel's CPU time and the time the chapter printed for itself.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from . import profile

ROOT = Path(__file__).resolve().parents[1]


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
                text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                               if o.get("name") == "stdout")
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
    return {"profile": profile_name, "chapters": out,
            "total_seconds": sum(c["seconds"] for c in out.values()),
            "total_kernel_cpu_seconds": sum(c["kernel_cpu_seconds"] for c in out.values())}


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (the chapters' kernels)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
