"""Results on disk: provenance records and atomic, verified JSON files.

Everything under ``results/`` is JSON carrying where it came from: the device, the
date, the library versions, the configuration and the seeds.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import scipy
import torch


def device_name(device: torch.device | str) -> str:
    """A human-readable name for ``device``: the GPU model, or the CPU model and core count."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores)"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device: torch.device | str) -> dict:
    """Where a result came from: device, date (UTC), versions and the git commit."""
    return {
        "device": str(torch.device(device)),
        "device_name": device_name(device),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "git_commit": _git_commit(),
    }


def write_atomic(path: str | os.PathLike, raw: bytes, verify=None) -> Path:
    """Write ``raw`` to ``path`` atomically: a temporary file in the same directory, fsync, rename.

    A crash leaves either the old file or the new one, never half of one. ``verify``, if
    given, is called with the temporary file's path after it is on disk and before the
    rename; if it raises, nothing is renamed and the temporary file is removed. Every file
    gan_lab writes (results, checkpoints, downloads, the cached classifier) goes through here.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_checked(path: str | os.PathLike, raw: bytes, sha256: str | None = None) -> Path:
    """:func:`write_atomic` with a SHA-256 check: a file at ``path`` is absent or complete and correct.

    When ``sha256`` is given the bytes are checked before writing, and the written file is
    re-read and checked before it is renamed into place (downloads, the cached classifier).

    Raises:
        ValueError: if the bytes (or the file read back) do not have the digest ``sha256``.
    """
    name = Path(path).name
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise ValueError(f"{name}: SHA-256 {hashlib.sha256(raw).hexdigest()} does not match the expected "
                         f"{sha256}; not saved")

    def verify(tmp: Path) -> None:
        if sha256 is not None and hashlib.sha256(tmp.read_bytes()).hexdigest() != sha256:
            raise ValueError(f"{name}: the written file does not read back with SHA-256 {sha256}")

    return write_atomic(path, raw, verify)


def save_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as JSON atomically (:func:`write_atomic`), then read it back and compare."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    except ValueError as err:  # NaN or inf: JSON has no such numbers, and a result should not hold them
        raise ValueError(f"obj must hold only finite numbers to be saved as JSON ({err})") from err
    path = write_atomic(path, text.encode())
    if json.loads(path.read_text()) != json.loads(text):
        raise OSError(f"{path}: written JSON does not read back identically")
    return path


def load_json(path: str | os.PathLike):
    """Read a results file; ``ValueError`` names the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
