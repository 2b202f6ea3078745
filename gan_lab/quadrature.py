r"""Expectations under two densities: adaptive Gauss-Legendre quadrature in 1-D, Monte Carlo otherwise.

:func:`expectation` computes :math:`E_p f_p + E_q f_q` for integrand factors that are
functions of the two log densities, the form every divergence of :mod:`gan_lab.theory`
takes; in one dimension it integrates over the whole real line (:func:`expectation_1d`,
:func:`gauss_legendre`), with breakpoints at every component so that narrow ones are not
missed (:func:`breakpoints`), and otherwise averages over samples. Working on log
densities, nothing underflows. :func:`check_pair` validates the two distributions.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from . import checks

#: Quadrature breakpoints around each component mean, in component scales.
OFFSETS = np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0])
#: Gauss-Legendre nodes and weights of a low and a high rule; a piece is done when they agree.
NODES = [np.polynomial.legendre.leggauss(n) for n in (10, 20)]
#: Refinement stops past this many pieces (the error estimate then says so).
MAX_PIECES = 20_000

#: f(log p, log q) -> the integrand's factor; the expectation is E_p f_p + E_q f_q.
Factor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_density(name: str, dist) -> None:
    """``TypeError`` naming ``name`` unless ``dist`` has a ``log_prob`` method."""
    if not callable(getattr(dist, "log_prob", None)):
        raise TypeError(f"{name} must have a log_prob method, got {type(dist).__name__}")


def dimension(name: str, dist) -> int:
    """The event dimension: ``.dim``, else a torch ``event_shape``, else one sample's shape."""
    dim = getattr(dist, "dim", None)
    if isinstance(dim, int):
        return dim
    event_shape = getattr(dist, "event_shape", None)
    if event_shape is not None:
        return 1 if len(event_shape) == 0 else int(event_shape[-1])
    if callable(getattr(dist, "sample", None)):
        x = sample(dist, 1, None)
        return 1 if x.ndim == 1 else int(x.shape[-1])
    raise TypeError(f"{name} must expose .dim, .event_shape or .sample to tell its dimension")


def check_pair(p, q) -> int:
    """Check that ``p`` and ``q`` both have ``log_prob`` and the same dimension; return that dimension."""
    check_density("p", p)
    check_density("q", q)
    dp, dq = dimension("p", p), dimension("q", q)
    if dp != dq:
        raise ValueError(f"p and q must have the same dimension, got p.dim={dp} and q.dim={dq}")
    return dp


@checks.renamed(generator="rng")
def sample(dist, n: int, rng: torch.Generator | None) -> torch.Tensor:
    """``n`` samples as float64, shape ``(n, d)`` (or ``(n,)`` for scalar torch distributions)."""
    if isinstance(dist, torch.distributions.Distribution):
        # torch.distributions take no generator and draw on the CPU here: seed the global CPU
        # generator from ``rng`` (on any device), draw, then restore it. Only the CPU
        # generator is touched (torch.manual_seed would also reseed every CUDA generator).
        with torch.random.fork_rng(devices=[]):
            if rng is not None:
                seed = int(torch.randint(2**62, (1,), generator=rng, device=rng.device))
                torch.default_generator.manual_seed(seed)
            x = dist.sample((n,))
    else:
        x = dist.sample(n, rng)  # positional: a user's distribution may call it generator
    return x.to(torch.float64)


def breakpoints(name: str, dist) -> tuple[np.ndarray, float]:
    """Points that split the real line so that quadrature sees every component of ``dist``.

    Returns the points and the largest component scale (the tails' length scale).
    """
    if hasattr(dist, "means") and hasattr(dist, "stds"):
        centres = torch.as_tensor(dist.means).reshape(-1)
        scales = torch.as_tensor(dist.stds).reshape(-1)
    elif hasattr(dist, "mean") and hasattr(dist, "stddev"):  # torch.distributions
        centres, scales = dist.mean.reshape(-1), dist.stddev.reshape(-1)
    else:
        raise TypeError(
            f"{name}: one-dimensional quadrature needs means and stds (or mean and stddev) "
            "to place its breakpoints; pass method='mc' to use Monte Carlo instead"
        )
    c = centres.double().numpy()[:, None]  # (K, 1)
    s = scales.double().numpy()[:, None]
    if not (np.isfinite(c).all() and np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"{name}: quadrature needs finite means and positive finite scales")
    return np.concatenate([c - s * OFFSETS, c + s * OFFSETS]).ravel(), float(s.max())


def weighted(log_density: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``exp(log_density) * factor``, taking ``0 * anything = 0`` where the density is zero."""
    density = log_density.exp()
    return torch.where(density > 0, density * factor, torch.zeros_like(factor))


@checks.renamed(generator="rng")
def expectation(
    p, q, f_p: Factor, f_q: Factor | None, method: str, n_samples: int, rng: torch.Generator | None
) -> tuple[float, float]:
    r""":math:`E_p f_p + E_q f_q` and its error: the quadrature error estimate, or the Monte Carlo standard error."""
    dim = check_pair(p, q)
    checks.one_of("method", method, ("auto", "quad", "mc"))
    if method == "quad" and dim != 1:
        raise ValueError(f"method='quad' needs one-dimensional p and q, got dim={dim}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")
    if method == "quad" or (method == "auto" and dim == 1):
        return expectation_1d(p, q, f_p, f_q)
    for name, dist in (("p", p), ("q", q)):
        if not callable(getattr(dist, "sample", None)):
            raise TypeError(f"{name} must have a sample method for the Monte Carlo estimate")
    total, variance = 0.0, 0.0
    for dist, f in ((p, f_p), (q, f_q)):
        if f is None:
            continue
        x = sample(dist, n_samples, rng)  # (n, d) or (n,)
        if dim == 1:
            x = x.reshape(n_samples)  # plain points, which any 1-D log_prob maps to (n,)
        lp, lq = p.log_prob(x), q.log_prob(x)  # (n,)
        if lp.shape != (n_samples,) or lq.shape != (n_samples,):
            raise ValueError(
                f"log_prob must map {tuple(x.shape)} samples to shape ({n_samples},), "
                f"got {tuple(lp.shape)} for p and {tuple(lq.shape)} for q"
            )
        values = f(lp, lq)
        total += float(values.mean())
        variance += float(values.var()) / n_samples
    return total, math.sqrt(variance)


def gauss_legendre(
    integrand: Callable[[torch.Tensor], torch.Tensor], edges: np.ndarray, tail_scale: float, max_rounds: int = 30
) -> tuple[np.ndarray, float]:
    """Adaptive, vectorised Gauss-Legendre quadrature of a vector integrand over the real line.

    Each piece maps ``u`` in ``[lo, hi]`` (a part of ``[0, 1]``) to ``x = a + s g(u)``, with
    ``g(u) = u`` between two edges and ``g(u) = -u / (1 - u)`` or ``u / (1 - u)`` on the two
    tails. A piece is accepted when its 10- and 20-node rules agree; the others are halved.
    """
    kind = np.concatenate([[-1.0], np.zeros(len(edges) - 1), [1.0]])  # (P,) -1, 0, 1: left tail, finite, right tail
    a = np.concatenate([edges[:1], edges[:-1], edges[-1:]])
    s = np.concatenate([[tail_scale], np.diff(edges), [tail_scale]])
    lo, hi = np.zeros_like(a), np.ones_like(a)
    total, error = 0.0, 0.0
    for round_ in range(max_rounds):
        estimates = []
        for nodes, w in NODES:
            u = lo[:, None] + (hi - lo)[:, None] * (nodes + 1) / 2  # (P, n)
            tail = kind[:, None] != 0
            g = np.where(tail, kind[:, None] * u / (1 - u), u)
            dg = np.where(tail, 1 / (1 - u) ** 2, 1.0)
            x = a[:, None] + s[:, None] * g
            values = integrand(torch.from_numpy(x.ravel())).numpy().reshape(*x.shape, -1)  # (P, n, C)
            weights = w * (hi - lo)[:, None] / 2 * s[:, None] * dg  # (P, n)
            estimates.append((weights[..., None] * values).sum(1))  # (P, C)
        low, high = estimates
        piece_err = np.abs(high - low).max(1)  # (P,)
        last = round_ == max_rounds - 1 or len(a) > MAX_PIECES
        done = (piece_err <= 1e-15 + 1e-12 * np.abs(high).max(1)) | last
        total, error = total + high[done].sum(0), error + piece_err[done].sum()
        keep = ~done
        if not keep.any():
            break
        kind, a, s, lo, hi = (np.repeat(t[keep], 2) for t in (kind, a, s, lo, hi))
        mid = (lo + hi) / 2
        lo, hi = np.where(np.arange(len(lo)) % 2 == 0, lo, mid), np.where(np.arange(len(hi)) % 2 == 0, mid, hi)
    return total, float(error)


def expectation_1d(p, q, f_p: Factor, f_q: Factor | None) -> tuple[float, float]:
    r"""Integrate over the real line with breakpoints at every component of ``p`` and ``q``.

    :math:`E_p f_p` is computed as :math:`\int p f_p / \int p` on the same nodes, so the
    quadrature's error in normalising a narrow density cancels, and a bounded :math:`f_p`
    gives an average within the same bounds.
    """

    def integrand(x: torch.Tensor) -> torch.Tensor:
        lp, lq = p.log_prob(x).reshape(-1), q.log_prob(x).reshape(-1)  # (N,)
        out = [weighted(lp, f_p(lp, lq)), lp.exp()]
        if f_q is not None:
            out += [weighted(lq, f_q(lp, lq)), lq.exp()]
        return torch.stack(out, dim=-1)  # (N, C)

    (edges_p, scale_p), (edges_q, scale_q) = breakpoints("p", p), breakpoints("q", q)
    edges = np.unique(np.concatenate([edges_p, edges_q]))
    res, err = gauss_legendre(integrand, edges, max(scale_p, scale_q))
    value = res[0] / res[1] + (res[2] / res[3] if f_q is not None else 0.0)
    return float(value), err
