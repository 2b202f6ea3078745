"""The checkpoint file format: atomic, SHA-256-checked, versioned, and linear in I/O.

A checkpoint is two files:

- ``PATH``, the **state**: format version, device type, torch version, the config, the
  networks, optimisers, random stream and counters. It has a fixed size, and every save
  rewrites it atomically (temporary file, fsync, rename; :func:`gan_lab.results.write_atomic`)::

      GANLAB-CHECKPOINT-<version>\\n<SHA-256 of payload, hex>\\n<payload: torch.save of a dict>

- ``PATH.log``, the **log**: what grows with training (history rows, snapshots), written as
  chunks that are only ever appended, one per save, each with its own length and SHA-256::

      CHUNK <length, 16 digits> <SHA-256, hex>\\n<payload: torch.save of a dict>

The state records how many bytes of the log it covers. A save appends (and fsyncs) the new
chunk first, then renames the new state into place, so a crash leaves either the old state
(and a log with bytes past its end, cut off at the next save) or the new one; saving ``N``
times costs I/O proportional to the steps trained, not to their square. Loading reads with
``torch.load(..., weights_only=True)`` and checks every hash.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import torch

from .results import write_atomic

#: The version this gan_lab writes and reads. Version 3 came with the one loop for every fit
#: (networks and optimisers stored by name, the engine recorded); version 2 was the 2-D fit's own.
FORMAT_VERSION = 3
_MAGIC = b"GANLAB-CHECKPOINT-"
_CHUNK = re.compile(rb"CHUNK (\d{16}) ([0-9a-f]{64})\n")


def log_path(path: str | os.PathLike) -> Path:
    """The log file beside a checkpoint: ``PATH.log``."""
    path = Path(path)
    return path.with_name(path.name + ".log")


def _dumps(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _loads(raw: bytes):
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)


def _state_bytes(state: dict) -> bytes:
    payload = _dumps(state)
    digest = hashlib.sha256(payload).hexdigest().encode()
    return _MAGIC + str(FORMAT_VERSION).encode() + b"\n" + digest + b"\n" + payload


def _verified_state(path: Path) -> bytes:
    """The state's payload, after checking the header, the format version and the SHA-256."""
    raw = path.read_bytes()
    head, _, rest = raw.partition(b"\n")
    if not head.startswith(_MAGIC) or not head[len(_MAGIC):].isdigit():
        raise ValueError(f"checkpoint {path} is not a gan_lab checkpoint (bad header)")
    version = int(head[len(_MAGIC):])
    if version != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path} has format version {version}; this gan_lab reads version "
                         f"{FORMAT_VERSION}. Pass resume=False to start afresh (it will be overwritten).")
    digest, payload = rest[:64], rest[65:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise ValueError(f"checkpoint {path} is corrupt: its SHA-256 does not match the recorded one")
    return payload


def read_state(path: str | os.PathLike) -> dict:
    """The checkpoint's state (format, device type, torch version, config, networks, counters), verified."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    return _loads(_verified_state(path))


def write_state(path: str | os.PathLike, state: dict) -> Path:
    """Write the state file atomically (temporary file, verified, renamed); the log is left as it is."""
    state = {**state, "format": FORMAT_VERSION}
    return write_atomic(path, _state_bytes(state), verify=_verified_state)


def read_log(path: str | os.PathLike, length: int) -> list:
    """The first ``length`` bytes of the checkpoint's log as a list of chunks, each hash checked."""
    log = log_path(path)
    raw = log.read_bytes()[:length] if log.exists() else b""
    if len(raw) < length:
        raise ValueError(f"checkpoint log {log} is truncated: {len(raw)} bytes, the checkpoint covers {length}")
    chunks, pos = [], 0
    while pos < length:
        m = _CHUNK.match(raw, pos)
        if m is None:
            raise ValueError(f"checkpoint log {log} is corrupt: no chunk header at byte {pos}")
        size, start = int(m.group(1)), m.end()
        payload = raw[start:start + size]
        if len(payload) != size or hashlib.sha256(payload).hexdigest().encode() != m.group(2):
            raise ValueError(f"checkpoint log {log} is corrupt: the chunk at byte {pos} fails its SHA-256")
        chunks.append(_loads(payload))
        pos = start + size
    return chunks


def append_chunk(path: str | os.PathLike, at: int, chunk: dict) -> int:
    """Write ``chunk`` into the log at byte ``at`` (cutting off anything after it), fsync; return the new length."""
    payload = _dumps(chunk)
    record = f"CHUNK {len(payload):016d} {hashlib.sha256(payload).hexdigest()}\n".encode() + payload
    log = log_path(path)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "r+b" if log.exists() else "wb") as fh:
        fh.seek(at)
        fh.truncate()
        fh.write(record)
        fh.flush()
        os.fsync(fh.fileno())
    return at + len(record)


def save(path: str | os.PathLike, state: dict, chunk: dict, log_bytes: int) -> int:
    """Append ``chunk`` at ``log_bytes`` of the log, then atomically write ``state`` covering it.

    Returns the log's new length (pass it to the next save). ``log_bytes=0`` starts a new log.
    """
    new_length = append_chunk(path, log_bytes, chunk)
    write_state(path, {**state, "log_bytes": new_length})
    return new_length


def load(path: str | os.PathLike) -> tuple[dict, list]:
    """The verified state and its log's chunks (only the bytes the state covers)."""
    state = read_state(path)
    return state, read_log(path, int(state.get("log_bytes", 0)))


def remove(path: str | os.PathLike) -> None:
    """Delete a checkpoint's state and log, if present."""
    for p in (Path(path), log_path(path)):
        if p.exists():
            p.unlink()
