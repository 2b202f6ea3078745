"""2-D (and n-D) distributions: Gaussian mixtures with exact densities, and point clouds.

A *distribution* here is any object with ``.sample(shape, rng=None)`` returning a tensor
of shape ``(*shape, d)``. The package passes the ``torch.Generator`` positionally, so an
object whose second parameter is called ``generator`` works too (and the samplers here
still accept ``generator=``, the name used before ``rng``). :class:`GaussianMixture` has an
exact ``.log_prob``; :class:`PointCloud` (an empirical distribution, sampled with
replacement) does not, since a finite sample has no density. :func:`ring` and
:func:`grid` are the PacGAN benchmarks; :func:`swiss_roll` and :class:`Noisy` serve
the WGAN-GP figures. The names are also importable from :mod:`gan_lab.data`.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import torch

from . import checks, profile

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


def _target(rng: torch.Generator | None, device: str | torch.device | None) -> torch.device:
    """Where samples go: ``rng``'s device if one is given, else ``device``, else CPU."""
    if rng is not None:
        if device is not None and not profile.same_device(device, rng.device):
            raise ValueError(f"device {device!r} differs from the device of rng, {rng.device}")
        return rng.device
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

    @checks.renamed(generator="rng")
    def sample(
        self,
        n: Shape,
        rng: torch.Generator | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw samples of shape ``(*n, d)``.

        Args:
            n: the number of samples, or a shape.
            rng: the random generator (a ``torch.Generator``); the samples go to its device.
                ``None`` draws from torch's global generator. ``generator=`` is accepted too.
            device: where the samples go when no ``rng`` is given (default CPU).
            dtype: the samples' dtype.
        """
        shape = _as_shape(n)
        dev = _target(rng, device)
        means, stds, weights = self._params(dev, dtype)
        count = math.prod(shape)
        idx = torch.multinomial(weights, count, replacement=True, generator=rng)  # (count,)
        noise = torch.randn(count, self.dim, generator=rng, device=dev, dtype=dtype)
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

    def icdf(self, u, tol: float = 1e-10,
             max_iter: int = 200) -> torch.Tensor:
        """The inverse CDF (quantile function) of a 1-D mixture, by
        bisection.

        Args:
            u: probabilities strictly inside (0, 1), any shape.
            tol: bracket width at which bisection stops.
            max_iter: bisection steps at most.
        """
        if self.dim != 1:
            raise ValueError("icdf is defined here for 1-D mixtures only, "
                             f"this one has dim={self.dim}")
        u = torch.as_tensor(u, dtype=torch.float64)
        if not ((u > 0) & (u < 1)).all():
            raise ValueError("u must lie strictly between 0 and 1")
        # a bracket 40 standard deviations beyond every component
        spread = 40 * self.stds[:, None]
        lo = torch.full_like(u, float((self.means - spread).min()))
        hi = torch.full_like(u, float((self.means + spread).max()))
        for _ in range(max_iter):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < u
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
            if float((hi - lo).max()) < tol:
                break
        return 0.5 * (lo + hi)


def ring(n_modes: int = 8, radius: float = 1.0,
         std: float = 0.01) -> GaussianMixture:
    """The PacGAN 2D-ring: ``n_modes`` equal Gaussians evenly spaced on a
    circle of ``radius``, each with standard deviation ``std``."""
    n_modes = checks.positive_int("n_modes", n_modes)
    radius = checks.positive_number("radius", radius)
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    means = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (K, 2)
    return GaussianMixture(radius * means, std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """The PacGAN 2D-grid: ``side**2`` equal Gaussians on a square lattice centred at 0.

    With the defaults the centres are ``{-4, -2, 0, 2, 4}^2``.
    """
    side, spacing = checks.positive_int("side", side), checks.positive_number("spacing", spacing)
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

    @checks.renamed(generator="rng")
    def sample(
        self,
        n: Shape,
        rng: torch.Generator | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw ``(*n, d)`` points uniformly with replacement, on ``rng``'s device when one is given.

        ``rng`` is the random generator (``generator=`` is accepted too).
        """
        shape = _as_shape(n)
        dev = _target(rng, device)
        key = (dev, dtype)
        if key not in self._cache:
            self._cache[key] = self.points.to(device=dev, dtype=dtype)
        pts = self._cache[key]
        idx = torch.randint(len(self), shape, generator=rng, device=dev)
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
    n_points = checks.positive_int("n_points", n_points)
    noise = checks.positive_number("noise", noise, allow_zero=True)
    scale = checks.positive_number("scale", scale)
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
        self.base, self.std = base, checks.positive_number("std", std)

    @property
    def dim(self) -> int:
        return self.base.dim

    def __repr__(self) -> str:
        return f"Noisy({self.base!r}, std={self.std})"

    @checks.renamed(generator="rng")
    def sample(self, n: Shape, rng: torch.Generator | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Draw ``(*n, d)`` noisy points; ``rng`` is the random generator (``generator=`` works too)."""
        x = self.base.sample(n, rng, device=device, dtype=dtype)
        return x + self.std * torch.randn(x.shape, generator=rng, device=x.device, dtype=dtype)


# --- point sets as the metrics take them ---------------------------------------------------


def as_point_sets(name: str, samples) -> tuple[torch.Tensor, bool]:
    """Points as a float64 CPU tensor of shape ``(seeds, n, d)``, and whether they came batched.

    ``samples`` is an array or tensor ``(n,)`` (n points in 1-D), ``(n, d)`` or ``(seeds, n, d)``;
    ``ValueError`` names ``name`` for another shape, no points, or NaN/Inf.
    """
    if isinstance(samples, torch.Tensor):
        x = samples.detach().to("cpu", torch.float64)
    else:
        x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float64))  # also reversed views
    if x.ndim == 1:
        x = x[:, None]  # plain 1-D points
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (n,), (n, d) or (seeds, n, d), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    return (x, True) if x.ndim == 3 else (x[None], False)


def as_point_pair(x, y) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Both samples as ``(S, n, d)`` and ``(S, m, d)``, a single ``(n, d)`` set broadcast over seeds."""
    (xs, x_batched), (ys, y_batched) = as_point_sets("x", x), as_point_sets("y", y)  # (Sx, n, d), (Sy, m, d)
    if xs.shape[-1] != ys.shape[-1]:
        raise ValueError(
            f"x and y must have the same dimension d (last axis), got shapes {tuple(xs.shape)} and {tuple(ys.shape)}"
        )
    if xs.shape[0] != ys.shape[0] and 1 not in (xs.shape[0], ys.shape[0]):
        raise ValueError(f"x and y must have the same number of seeds, got {xs.shape[0]} and {ys.shape[0]}")
    seeds = max(xs.shape[0], ys.shape[0])
    return xs.expand(seeds, -1, -1), ys.expand(seeds, -1, -1), x_batched or y_batched
