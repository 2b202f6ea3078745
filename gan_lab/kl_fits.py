r"""One Gaussian fitted to a one-dimensional mixture by forward or by reverse KL.

With data density :math:`p` (a mixture of Gaussians) and a single Gaussian
:math:`q = \mathcal N(\mu, s^2)`, the two directions of the Kullback--Leibler divergence
ask for different fits:

* the *forward* KL, :math:`\mathrm{KL}(p \,\|\, q) = \int p \log(p / q)`, is large
  wherever :math:`q` is small where :math:`p` has mass, so its minimiser spreads over
  every mode.
  Its optimum is moment matching: :math:`\mu` and :math:`s^2` are the mean and the
  variance of :math:`p` (:func:`mixture_moments` gives them in closed form);
* the *reverse* KL, :math:`\mathrm{KL}(q \,\|\, p) = \int q \log(q / p)`, is large
  wherever :math:`q` puts mass where :math:`p` has little, and its integrand vanishes
  where :math:`q` does: a missed mode costs only through the normalisation (a
  :math:`q` on one of two well-separated modes of equal weight scores about
  :math:`\log 2`), so its minimisers can sit on one mode each.

Both divergences are computed by SciPy's adaptive quadrature and minimised over
:math:`(\mu, \log s)` by Nelder--Mead, started from each component of the mixture;
:func:`fit_gaussian` returns the best local minimum found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize

from . import checks

DIRECTIONS = ("forward", "reverse")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SPAN = 12.0  # integrate over +-12 standard deviations of every Gaussian involved


@dataclass(frozen=True)
class GaussianFit:
    """The Gaussian :math:`\\mathcal N(\\text{mean}, \\text{std}^2)` that a fit reached.

    Attributes:
        direction: ``"forward"`` (:math:`\\mathrm{KL}(p \\| q)`) or ``"reverse"``
            (:math:`\\mathrm{KL}(q \\| p)`).
        mean: :math:`\\mu`.
        std: :math:`s > 0`.
        kl: the divergence at the fit, in nats.
    """

    direction: str
    mean: float
    std: float
    kl: float

    def pdf(self, x) -> np.ndarray:
        """The fitted Gaussian's density at ``x`` (array-like), as a float64 array."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return np.exp(-0.5 * z**2 - _HALF_LOG_2PI) / self.std


def _components(mixture) -> tuple[list[float], list[float], list[float]]:
    """``(means, stds, weights)`` of a one-dimensional mixture, as Python floats."""
    if not all(hasattr(mixture, a) for a in ("means", "stds", "weights")):
        raise TypeError("mixture must have means, stds and weights (a gan_lab.data."
                        f"GaussianMixture), got {type(mixture).__name__}")
    means = np.asarray(mixture.means, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] != 1:
        raise ValueError(f"mixture must be one-dimensional, got means of shape {means.shape}")
    stds = np.asarray(mixture.stds, dtype=np.float64).reshape(-1)
    weights = np.asarray(mixture.weights, dtype=np.float64).reshape(-1)
    return means[:, 0].tolist(), stds.tolist(), (weights / weights.sum()).tolist()


def _mixture_log_pdf(comps):
    """A scalar function ``x -> log p(x)``, stable far from every mode (log-sum-exp)."""
    terms = [(m, s, math.log(w) - math.log(s) - _HALF_LOG_2PI) for m, s, w in zip(*comps) if w > 0]

    def log_p(x: float) -> float:
        a = [c - 0.5 * ((x - m) / s) ** 2 for m, s, c in terms]
        top = max(a)
        return top + math.log(sum(math.exp(v - top) for v in a))

    return log_p


def _gauss_log_pdf(x: float, mean: float, std: float) -> float:
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - _HALF_LOG_2PI


def mixture_moments(mixture) -> tuple[float, float]:
    r"""Mean and standard deviation of a one-dimensional mixture, in closed form.

    :math:`\bar\mu = \sum_k w_k \mu_k` and
    :math:`\sigma^2 = \sum_k w_k (\sigma_k^2 + \mu_k^2) - \bar\mu^2`: the forward-KL fit.
    """
    means, stds, weights = _components(mixture)
    mean = sum(w * m for m, w in zip(means, weights))
    second = sum(w * (s**2 + m**2) for m, s, w in zip(means, stds, weights))
    return mean, math.sqrt(max(second - mean**2, 0.0))


def kl_to_gaussian(mixture, mean: float, std: float, direction: str = "forward") -> float:
    r"""KL divergence between ``mixture`` :math:`p` and :math:`q = \mathcal N(\text{mean}, \text{std}^2)`.

    Args:
        mixture: a one-dimensional :class:`gan_lab.data.GaussianMixture`.
        mean: the Gaussian's mean, a finite number.
        std: its standard deviation, > 0.
        direction: ``"forward"`` for :math:`\mathrm{KL}(p \| q)`, ``"reverse"`` for
            :math:`\mathrm{KL}(q \| p)`.

    Returns:
        The divergence in nats (a float >= 0 up to quadrature error), by
        :func:`scipy.integrate.quad` over :math:`\pm 12` standard deviations of every
        Gaussian involved, with the component means as break points.

    Raises:
        TypeError: for a mixture without ``means``, ``stds`` and ``weights``.
        ValueError: for a mixture that is not one-dimensional, a mean that is not
            finite, a std that is not > 0, or an unknown direction.
    """
    direction = checks.one_of("direction", direction, DIRECTIONS)
    if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not math.isfinite(mean):
        raise ValueError(f"mean must be a finite number, got {mean!r}")
    std = checks.positive_number("std", std)
    comps = _components(mixture)
    return _kl(comps, _mixture_log_pdf(comps), float(mean), std, direction)


def _kl(comps, log_p, mean: float, std: float, direction: str) -> float:
    means, stds, _ = comps
    lo = min([m - _SPAN * s for m, s in zip(means, stds)] + [mean - _SPAN * std])
    hi = max([m + _SPAN * s for m, s in zip(means, stds)] + [mean + _SPAN * std])
    points = sorted(set(means + [mean]))
    if direction == "forward":  # int p (log p - log q)
        def integrand(x):
            lp = log_p(x)
            return math.exp(lp) * (lp - _gauss_log_pdf(x, mean, std))
    else:  # int q (log q - log p)
        def integrand(x):
            lq = _gauss_log_pdf(x, mean, std)
            return math.exp(lq) * (lq - log_p(x))
    return integrate.quad(integrand, lo, hi, points=points, limit=200, epsabs=1e-10)[0]


def fit_gaussian(mixture, direction: str = "forward") -> GaussianFit:
    r"""The Gaussian :math:`q` that minimises the forward or the reverse KL to ``mixture``.

    Nelder--Mead over :math:`(\mu, \log s)`, started from each component
    :math:`(\mu_k, \sigma_k)`; the best of the local minima is returned (for a symmetric
    mixture with two equal reverse-KL minima, the one found first, from the first
    component). The forward KL has one minimum, the moment-matched Gaussian of
    :func:`mixture_moments`.

    Args:
        mixture: a one-dimensional :class:`gan_lab.data.GaussianMixture`.
        direction: ``"forward"`` (:math:`\mathrm{KL}(p \| q)`, mass-covering) or
            ``"reverse"`` (:math:`\mathrm{KL}(q \| p)`, mode-seeking).

    Returns:
        A :class:`GaussianFit`.

    Raises:
        TypeError: for a mixture without ``means``, ``stds`` and ``weights``.
        ValueError: for a mixture that is not one-dimensional or an unknown direction.
    """
    direction = checks.one_of("direction", direction, DIRECTIONS)
    comps = _components(mixture)
    log_p = _mixture_log_pdf(comps)
    starts = list(zip(comps[0], comps[1]))

    def objective(v):
        return _kl(comps, log_p, float(v[0]), math.exp(v[1]), direction)

    best = None
    for m, s in starts:
        res = optimize.minimize(objective, [m, math.log(s)], method="Nelder-Mead",
                                options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 2000})
        if best is None or res.fun < best.fun - 1e-12:
            best = res
    return GaussianFit(direction, float(best.x[0]), float(math.exp(best.x[1])), float(best.fun))
