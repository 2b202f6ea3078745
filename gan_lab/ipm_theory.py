r"""Integral probability metrics in closed form: the MMD between Gaussians, W1 in one dimension.

:func:`mmd2_gaussians` is the population :math:`\mathrm{MMD}^2` of a Gaussian kernel between
two isotropic Gaussians, in closed form; :func:`wasserstein1_1d` is :math:`W_1` between two
one-dimensional distributions, :math:`\int |F_p - F_q|`, by quadrature. They are the oracles
of the IPM and Wasserstein chapters; :mod:`gan_lab.theory` re-exports them.
"""

from __future__ import annotations


import numpy as np
import torch

from . import quadrature

def _positive_numbers(name: str, value, allow_zero: bool = False) -> np.ndarray:
    """``value`` (a number or a sequence) as a 1-D float64 array, checked finite and > 0 (or >= 0)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got bool")
    try:
        arr = np.asarray(torch.as_tensor(value).detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {value!r}") from err
    arr = arr.reshape(-1)
    ok = (arr >= 0) if allow_zero else (arr > 0)
    if arr.size == 0 or not (np.isfinite(arr).all() and ok.all()):
        raise ValueError(f"{name} must be finite and {'>= 0' if allow_zero else '> 0'}, got {arr.tolist()}")
    return arr


def _mean_vector(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {value!r}") from err
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be a finite number or a finite vector of shape (d,), got {value!r}")
    return arr


def _gaussian_kernel_mean(a: np.ndarray, s: float, b: np.ndarray, t: float, sigma: np.ndarray) -> float:
    r""":math:`E\,k(X, Y)` for :math:`X \sim N(a, s^2 I)`, :math:`Y \sim N(b, t^2 I)` independent, summed over ``sigma``."""
    d = a.size
    var = sigma**2 + s**2 + t**2  # (k,): X - Y ~ N(a - b, (s^2 + t^2) I), convolved with the kernel
    log_terms = 0.5 * d * np.log(sigma**2 / var) - np.sum((a - b) ** 2) / (2 * var)
    return float(np.exp(log_terms).sum())


def mmd2_gaussians(mean_p, std_p: float, mean_q, std_q: float, bandwidth) -> float:
    r"""The population :math:`\mathrm{MMD}^2` between two isotropic Gaussians under the Gaussian kernel.

    For :math:`P = N(\mu_p, s_p^2 I)` and :math:`Q = N(\mu_q, s_q^2 I)` in :math:`d`
    dimensions and :math:`k(x, y) = \exp(-\lVert x - y \rVert^2 / (2\sigma^2))`, the
    difference of two independent draws :math:`X \sim N(a, s^2 I)`,
    :math:`Y \sim N(b, t^2 I)` is :math:`N(a - b, (s^2 + t^2) I)`, and a Gaussian integral gives

    .. math:: E\,k(X, Y) = \Bigl(\frac{\sigma^2}{\sigma^2 + s^2 + t^2}\Bigr)^{d/2}
              \exp\Bigl(-\frac{\lVert a - b \rVert^2}{2(\sigma^2 + s^2 + t^2)}\Bigr),

    so that :math:`\mathrm{MMD}^2 = E\,k(X, X') + E\,k(Y, Y') - 2 E\,k(X, Y)`. With several
    bandwidths the kernel is their sum (as in :func:`gan_lab.mmd.gaussian_kernel`) and so
    is the result. This is the value :func:`gan_lab.mmd.mmd2`'s unbiased estimator
    averages to. Rounding below zero is clipped to 0.

    Args:
        mean_p: :math:`\mu_p`, a number (:math:`d = 1`) or a vector of shape ``(d,)``.
        std_p: :math:`s_p \ge 0` (0 gives a point mass).
        mean_q: :math:`\mu_q`, the same shape as ``mean_p``.
        std_q: :math:`s_q \ge 0`.
        bandwidth: :math:`\sigma > 0`, or a sequence of bandwidths whose kernels are summed.

    Returns:
        :math:`\mathrm{MMD}^2(P, Q) \ge 0`.

    Raises:
        TypeError: if an argument is not a number (or sequence of numbers).
        ValueError: if the means differ in shape or are not finite, a standard deviation is
            negative or not finite, or a bandwidth is not finite and > 0.
    """
    a, b = _mean_vector("mean_p", mean_p), _mean_vector("mean_q", mean_q)
    if a.shape != b.shape:
        raise ValueError(f"mean_p and mean_q must have the same shape, got {a.shape} and {b.shape}")
    stds = []
    for name, val in (("std_p", std_p), ("std_q", std_q)):
        arr = _positive_numbers(name, val, allow_zero=True)
        if arr.size != 1:
            raise ValueError(f"{name} must be a single number (isotropic Gaussians), got {arr.tolist()}")
        stds.append(float(arr[0]))
    s, t = stds
    sigma = _positive_numbers("bandwidth", bandwidth)  # (k,)
    value = _gaussian_kernel_mean(a, s, a, s, sigma) + _gaussian_kernel_mean(b, t, b, t, sigma)
    value -= 2 * _gaussian_kernel_mean(a, s, b, t, sigma)
    return max(value, 0.0)


def wasserstein1_1d(p, q, *, return_se: bool = False) -> float | tuple[float, float]:
    r"""The Wasserstein-1 distance between two one-dimensional distributions, :math:`\int |F_p - F_q|\,dx`.

    In one dimension the optimal transport cost with :math:`|x - y|` is the area between
    the two cumulative distribution functions,

    .. math:: W_1(p, q) = \int_{-\infty}^{\infty} \lvert F_p(x) - F_q(x) \rvert \, dx,

    computed with the adaptive Gauss-Legendre quadrature of :func:`gan_lab.theory.jsd`, split at each
    component's mean and at 1 to 16 standard deviations on either side. Each CDF is divided
    by its value far to the right of every component: mixture weights need not sum to
    exactly 1 in floating point, and a difference of :math:`10^{-16}` between the two limits
    would otherwise be integrated over an infinite tail.

    Args:
        p: a one-dimensional distribution with ``cdf`` and with ``means`` and ``stds``
            (or ``mean`` and ``stddev``), such as a 1-D
            :class:`gan_lab.distributions.GaussianMixture` or a ``torch.distributions.Normal``.
        q: the same for the other distribution.
        return_se: also return the quadrature's absolute error estimate.

    Returns:
        The distance, or ``(distance, error)`` when ``return_se`` is true.

    Raises:
        TypeError: if ``p`` or ``q`` lacks ``cdf`` or the means and scales.
        ValueError: if ``p`` or ``q`` is not one-dimensional, or its ``cdf`` does not
            tend to 1.
    """
    for name, dist in (("p", p), ("q", q)):
        if not callable(getattr(dist, "cdf", None)):
            raise TypeError(f"{name} must have a cdf method, got {type(dist).__name__}")
        dim = getattr(dist, "dim", None)
        event_shape = getattr(dist, "event_shape", None)
        if (isinstance(dim, int) and dim != 1) or (event_shape is not None and tuple(event_shape) not in ((), (1,))):
            raise ValueError(f"{name} must be one-dimensional, got dim={dim if dim is not None else tuple(event_shape)}")

    (edges_p, scale_p), (edges_q, scale_q) = quadrature.breakpoints("p", p), quadrature.breakpoints("q", q)
    edges = np.unique(np.concatenate([edges_p, edges_q]))
    far = torch.tensor([edges[-1] + 100 * max(scale_p, scale_q)], dtype=torch.float64)  # (1,)
    limit_p, limit_q = float(p.cdf(far).reshape(-1)[0]), float(q.cdf(far).reshape(-1)[0])  # 1 up to rounding
    for name, limit in (("p", limit_p), ("q", limit_q)):
        if not abs(limit - 1) < 1e-6:
            raise ValueError(f"{name}.cdf must tend to 1, got {limit!r} far to the right of every component")

    def integrand(x: torch.Tensor) -> torch.Tensor:
        f_p, f_q = p.cdf(x).reshape(-1) / limit_p, q.cdf(x).reshape(-1) / limit_q  # (N,)
        return (f_p - f_q).abs()[:, None]  # (N, 1)

    res, err = quadrature.gauss_legendre(integrand, edges, max(scale_p, scale_q))
    value = float(res[0])
    return (value, err) if return_se else value
