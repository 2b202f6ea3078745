r"""Closed forms and exact numbers for the GAN objective at its optimum.

For a fixed generator with density :math:`q` and data density :math:`p`, the
discriminator that maximises :math:`V(D, G) = E_p \log D(x) + E_q \log(1 - D(x))` is

.. math:: D^*(x) = \frac{p(x)}{p(x) + q(x)} = \sigma\bigl(\log p(x) - \log q(x)\bigr),

and the value there is :math:`V(D^*, G) = -\log 4 + 2\,\mathrm{JSD}(p \,\|\, q)`
(Goodfellow et al., 2014). Here :math:`p` and :math:`q` are any objects with an exact
``log_prob`` (such as :class:`gan_lab.distributions.GaussianMixture` or a ``torch.distributions``
distribution). Expectations are computed by quadrature in one dimension and by Monte
Carlo otherwise (:mod:`gan_lab.quadrature`); both work on log densities, so nothing underflows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import checks, quadrature

LOG2 = math.log(2.0)


def optimal_discriminator_logit(p, q, x) -> torch.Tensor:
    r"""The optimal discriminator's log-odds, :math:`\log p(x) - \log q(x)`.

    Args:
        p: the data distribution (anything with ``log_prob``).
        q: the model distribution (anything with ``log_prob``).
        x: points of shape ``(..., d)`` (or ``(...)`` in one dimension).

    Returns:
        A tensor of the batch shape ``(...)``.
    """
    quadrature.check_pair(p, q)
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    return p.log_prob(x) - q.log_prob(x)


def optimal_discriminator(p, q, x) -> torch.Tensor:
    r""":math:`D^*(x) = p(x) / (p(x) + q(x))`, in log space.

    Computed as :math:`\sigma(\log p(x) - \log q(x))`, which stays correct
    far in the tails, where both densities underflow to zero and the ratio
    itself would be ``0/0``.

    Args:
        p: the data distribution (anything with ``log_prob``).
        q: the model distribution (anything with ``log_prob``).
        x: points of shape ``(..., d)`` (or ``(...)`` in one dimension).

    Returns:
        Values in :math:`[0, 1]`, a tensor of the batch shape ``(...)``.

    Raises:
        TypeError: if ``p`` or ``q`` has no ``log_prob``.
        ValueError: if ``p`` and ``q`` have different dimensions.
    """
    return torch.sigmoid(optimal_discriminator_logit(p, q, x))


def _jsd_p(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    # 1/2 log(2p / (p + q)) = 1/2 (log 2 - softplus(log q - log p))
    return 0.5 * (LOG2 - F.softplus(lq - lp))


def _jsd_q(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    return 0.5 * (LOG2 - F.softplus(lp - lq))


@checks.renamed(generator="rng")
def jsd(
    p,
    q,
    *,
    n_samples: int = 100_000,
    rng: torch.Generator | None = None,
    return_se: bool = False,
    method: str = "auto",
) -> float | tuple[float, float]:
    r"""The Jensen-Shannon divergence in nats, :math:`\mathrm{JSD}(p \,\|\, q) \in [0, \log 2]`.

    .. math:: \mathrm{JSD} = \tfrac12 E_p \log\frac{2p}{p + q} + \tfrac12 E_q \log\frac{2q}{p + q}.

    In one dimension the integral is computed by adaptive Gauss-Legendre quadrature over
    the whole real line, split at each component's mean and at 1 to 16 standard
    deviations on either side so that narrow components are not missed; each expectation
    is normalised by the integral of its density on the same nodes, so the result lies in
    :math:`[0, \log 2]` up to rounding (about :math:`10^{-16}`). Otherwise it is a Monte
    Carlo average over ``n_samples`` draws from each of ``p`` and ``q``. That estimate is
    unbiased and not clamped: when :math:`p \approx q` it can fall slightly below 0.

    Args:
        p: a distribution with ``log_prob`` (and ``sample`` for Monte Carlo); in one
            dimension, also ``means`` and ``stds`` (or ``mean`` and ``stddev``).
        q: the same for the other distribution.
        n_samples: Monte Carlo draws from each distribution, at least 2.
        rng: the random generator for Monte Carlo sampling (``generator=`` is accepted too).
        return_se: also return the estimate's error: the Monte Carlo standard error, or
            the quadrature's absolute error estimate.
        method: ``"auto"`` (quadrature in 1-D, Monte Carlo otherwise), ``"quad"`` or ``"mc"``.

    Returns:
        The divergence, or ``(divergence, error)`` when ``return_se`` is true.

    Raises:
        TypeError: if ``p`` or ``q`` lacks ``log_prob`` (or what the method needs).
        ValueError: if the dimensions differ, ``n_samples < 2`` or ``method`` is unknown.
    """
    value, err = quadrature.expectation(p, q, _jsd_p, _jsd_q, method, n_samples, rng)
    return (value, err) if return_se else value


@checks.renamed(generator="rng")
def value_at_optimum(
    p,
    q,
    *,
    n_samples: int = 100_000,
    rng: torch.Generator | None = None,
    return_se: bool = False,
    method: str = "auto",
) -> float | tuple[float, float]:
    r"""The GAN value with the optimal discriminator, :math:`V(D^*, G)`.

    .. math:: V(D^*, G) = E_p \log D^*(x) + E_q \log(1 - D^*(x))
              = -\log 4 + 2\,\mathrm{JSD}(p \,\|\, q).

    Computed directly from :math:`D^*` (not from :func:`jsd`), with the
    same integration strategy and arguments as :func:`jsd`, so that the
    identity can be checked numerically.

    Returns:
        The value, or ``(value, error)`` when ``return_se`` is true.
    """
    def log_d(lp, lq):  # log D* = -softplus(log q - log p)
        return -F.softplus(lq - lp)

    def log_1md(lp, lq):  # log(1 - D*) = -softplus(log p - log q)
        return -F.softplus(lp - lq)

    value, err = quadrature.expectation(
        p, q, log_d, log_1md, method, n_samples, rng
    )
    return (value, err) if return_se else value


@checks.renamed(generator="rng")
def kl(
    p,
    q,
    *,
    n_samples: int = 100_000,
    rng: torch.Generator | None = None,
    return_se: bool = False,
    method: str = "auto",
) -> float | tuple[float, float]:
    r"""The Kullback-Leibler divergence :math:`\mathrm{KL}(p \,\|\, q) = E_p[\log p - \log q]` in nats.

    Same integration strategy and arguments as :func:`jsd` (only ``p`` is sampled).

    Returns:
        The divergence, or ``(divergence, error)`` when ``return_se`` is true.
    """
    value, err = quadrature.expectation(p, q, lambda lp, lq: lp - lq, None, method, n_samples, rng)
    return (value, err) if return_se else value


@checks.renamed(generator="rng")
def value_gap(
    logits,
    p,
    q,
    *,
    n_samples: int = 100_000,
    rng: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    r"""How far a discriminator is from the optimum: :math:`V(D^*, G) - V(D, G)`, by Monte Carlo.

    With :math:`D = \sigma(\ell)` and :math:`\ell^* = \log p - \log q`,

    .. math:: V(D^*, G) - V(D, G) = E_p[\log\sigma(\ell^*) - \log\sigma(\ell)]
              + E_q[\log\sigma(-\ell^*) - \log\sigma(-\ell)] \ge 0,

    estimated on ``n_samples`` draws from each of ``p`` and ``q``, the same draws for both
    discriminators (a paired estimate, whose error is far smaller than that of two separate
    ones). Also returned, on the same draws: :math:`V(D^*, G) - V(\tfrac12, G) = 2\,\mathrm{JSD}`,
    what the optimum gains over a coin flip, the natural scale for the gap.

    Args:
        logits: a callable mapping points of shape ``(n, d)`` (float64) to the logits of one
            or several discriminators, of shape ``(..., n)``; for example ``run.logits`` of a
            :class:`gan_lab.train.CriticRun`, which gives one row per seed.
        p: the data distribution (``log_prob`` and ``sample``).
        q: the model distribution (``log_prob`` and ``sample``), same dimension.
        n_samples: draws from each distribution, at least 2.
        rng: the random generator for the draws (``generator=`` is accepted too).

    Returns:
        ``(gap, se, gain)``: the gap and its standard error, tensors of the batch shape
        ``(...)``, and the optimum's gain over a coin flip (a float).

    Raises:
        TypeError: if ``logits`` is not callable, or ``p`` or ``q`` has no ``log_prob``.
        ValueError: if the dimensions differ, ``n_samples < 2``, or ``logits`` returns a
            shape that does not end in ``n_samples``.
    """
    if not callable(logits):
        raise TypeError(f"logits must be a callable mapping points to logits, got {type(logits).__name__}")
    quadrature.check_pair(p, q)
    n = checks.positive_int("n_samples", n_samples)
    if n < 2:
        raise ValueError(f"n_samples must be at least 2, got {n}")
    diffs, gain = [], 0.0
    for dist, sign in ((p, 1.0), (q, -1.0)):
        x = quadrature.sample(dist, n, rng)  # (n, d)
        opt = F.logsigmoid(sign * (p.log_prob(x) - q.log_prob(x)).to(torch.float64))  # (n,)
        net = torch.as_tensor(logits(x)).detach().to(torch.float64)
        if net.ndim == 0 or net.shape[-1] != n:
            raise ValueError(f"logits must return a shape ending in n_samples={n}, got {tuple(net.shape)}")
        diffs.append(opt - F.logsigmoid(sign * net))  # (..., n)
        gain += float(opt.mean()) + LOG2
    gap = diffs[0].mean(-1) + diffs[1].mean(-1)
    se = ((diffs[0].var(-1) + diffs[1].var(-1)) / n).sqrt()
    return gap, se, gain


# --- other objectives: hinge (total variation) and least squares (Pearson chi^2) -----------


def optimal_hinge_critic(p, q, x) -> torch.Tensor:
    r"""The critic that minimises the hinge loss pointwise, :math:`f^*(x) = \operatorname{sign}(p(x) - q(x))`.

    The hinge loss :math:`L_D = E_p \max(0, 1 - f) + E_q \max(0, 1 + f)` is minimised, at
    each :math:`x`, by :math:`f = 1` where :math:`p > q` and :math:`f = -1` where
    :math:`p < q`; where :math:`p = q` every value in :math:`[-1, 1]` is optimal, and this
    function returns 0 there. The minimum is :math:`L_D^* = 2 - 2\,\mathrm{TV}(p, q)`
    (see :func:`total_variation`).

    Args:
        p: the data distribution (anything with ``log_prob``).
        q: the model distribution (anything with ``log_prob``).
        x: points of shape ``(..., d)`` (or ``(...)`` in one dimension).

    Returns:
        Values in :math:`\{-1, 0, 1\}`, a tensor of the batch shape ``(...)``.

    Raises:
        TypeError: if ``p`` or ``q`` has no ``log_prob``.
        ValueError: if ``p`` and ``q`` have different dimensions.
    """
    return torch.sign(optimal_discriminator_logit(p, q, x))


def optimal_lsgan_discriminator(p, q, x, a: float = 0.0, b: float = 1.0) -> torch.Tensor:
    r"""The least-squares discriminator's optimum, :math:`D^*(x) = (b\,p(x) + a\,q(x)) / (p(x) + q(x))`.

    With targets :math:`b` for data and :math:`a` for generated samples, the loss
    :math:`\tfrac12 E_p (D - b)^2 + \tfrac12 E_q (D - a)^2` is minimised pointwise at this
    weighted average of the targets (Mao et al., 2017). It is computed as
    :math:`a + (b - a)\,\sigma(\log p - \log q)`, which stays exact where both densities
    underflow. With the 0-1 coding of ``gan_lab``'s ``"lsgan"`` it equals
    :func:`optimal_discriminator`.

    Args:
        p: the data distribution (anything with ``log_prob``).
        q: the model distribution (anything with ``log_prob``).
        x: points of shape ``(..., d)`` (or ``(...)`` in one dimension).
        a: the target for generated samples.
        b: the target for data; must differ from ``a``.

    Returns:
        Values between ``a`` and ``b``, a tensor of the batch shape ``(...)``.

    Raises:
        TypeError: if ``p`` or ``q`` has no ``log_prob``.
        ValueError: if ``p`` and ``q`` have different dimensions, or ``a`` and ``b`` are
            not finite and distinct.
    """
    for name, val in (("a", a), ("b", b)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise ValueError(f"{name} must be a finite number, got {val!r}")
    if a == b:
        raise ValueError(f"a and b must differ (the targets for generated and real samples), got a = b = {a!r}")
    return a + (b - a) * optimal_discriminator(p, q, x)


def _tv_factor(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    # (1 - q/p)_+ = max(0, -expm1(log q - log p)), in [0, 1]: p (1 - q/p)_+ = (p - q)_+
    return torch.clamp(-torch.expm1(lq - lp), min=0.0)


@checks.renamed(generator="rng")
def total_variation(
    p,
    q,
    *,
    n_samples: int = 100_000,
    rng: torch.Generator | None = None,
    return_se: bool = False,
    method: str = "auto",
) -> float | tuple[float, float]:
    r"""The total variation distance :math:`\mathrm{TV}(p, q) = \tfrac12 \int |p - q| \in [0, 1]`.

    Computed as :math:`\tfrac12 E_p (1 - q/p)_+ + \tfrac12 E_q (1 - p/q)_+`, whose two
    integrands, :math:`\tfrac12 (p - q)_+` and :math:`\tfrac12 (q - p)_+`, add up to
    :math:`\tfrac12 |p - q|`. Both factors lie in :math:`[0, 1]`, so the Monte Carlo
    estimate has bounded variance. Same integration strategy and arguments as :func:`jsd`.

    Against the optimal hinge critic (:func:`optimal_hinge_critic`) the hinge loss is
    :math:`L_D^* = 2 - 2\,\mathrm{TV}(p, q)` (Lim and Ye, 2017).

    Returns:
        The distance, or ``(distance, error)`` when ``return_se`` is true.

    Raises:
        TypeError: if ``p`` or ``q`` lacks ``log_prob`` (or what the method needs).
        ValueError: if the dimensions differ, ``n_samples < 2`` or ``method`` is unknown.
    """
    value, err = quadrature.expectation(
        p, q, lambda lp, lq: 0.5 * _tv_factor(lp, lq), lambda lp, lq: 0.5 * _tv_factor(lq, lp),
        method, n_samples, rng
    )
    return (value, err) if return_se else value


class _Diverged(ArithmeticError):
    """Raised inside an integrand that overflows float64: the integral is infinite."""


@checks.renamed(generator="rng")
def pearson_chi2(
    p,
    q,
    *,
    n_samples: int = 100_000,
    rng: torch.Generator | None = None,
    return_se: bool = False,
    method: str = "auto",
) -> float | tuple[float, float]:
    r"""The Pearson :math:`\chi^2` divergence :math:`\chi^2(p \,\|\, q) = \int (p - q)^2 / q = E_q (p/q - 1)^2`.

    Computed as :math:`E_q[\operatorname{expm1}(\log p - \log q)^2]`, a non-negative
    integrand, with the same integration strategy and arguments as :func:`jsd` (only
    ``q`` is sampled). The divergence is infinite unless :math:`\int p^2 / q < \infty`,
    for instance for Gaussians :math:`p = N(\mu_p, s_p^2)`, :math:`q = N(\mu_q, s_q^2)`
    exactly when :math:`s_p^2 < 2 s_q^2`; quadrature then returns ``inf`` or a huge value
    with a huge error estimate, and the Monte Carlo estimate is unreliable (its variance is
    infinite already when :math:`\int p^4 / q^3 = \infty`).

    The least-squares GAN's generator objective against its optimal discriminator is a
    :math:`\chi^2` divergence from the mixture :math:`m = (p + q)/2` (Mao et al., 2017):
    :math:`\int (p - q)^2 / (p + q) = 2 \chi^2(q \,\|\, m)`.

    Returns:
        The divergence, or ``(divergence, error)`` when ``return_se`` is true.

    Raises:
        TypeError: if ``p`` or ``q`` lacks ``log_prob`` (or what the method needs).
        ValueError: if the dimensions differ, ``n_samples < 2`` or ``method`` is unknown.
    """
    quadrature.check_pair(p, q)  # validate in the caller's order, so errors name p and q correctly

    def factor(lq: torch.Tensor, lp: torch.Tensor) -> torch.Tensor:
        ratio_sq = torch.expm1(lp - lq) ** 2  # (p/q - 1)^2
        # the integrand q (p/q - 1)^2 ~ exp(2 log p - log q) itself overflows: chi^2 is infinite
        if (torch.isinf(ratio_sq) & (2 * lp - lq > 709.0)).any():
            raise _Diverged
        return ratio_sq

    try:
        # an expectation over q alone: swap the roles, E_q f(log q, log p)
        with np.errstate(invalid="ignore"):
            value, err = quadrature.expectation(q, p, factor, None, method, n_samples, rng)
    except _Diverged:
        value, err = math.inf, math.inf
    if not math.isfinite(value):
        value, err = math.inf, math.inf
    return (value, err) if return_se else value


@checks.renamed(generator="rng")
def f_divergence(
    p,
    q,
    divergence: str,
    *,
    n_samples: int = 100_000,
    rng: torch.Generator | None = None,
    return_se: bool = False,
    method: str = "auto",
) -> float | tuple[float, float]:
    r"""The f-divergence :math:`D_f(p \,\|\, q) = E_q f(p/q)` of a row of :data:`gan_lab.fdiv.DIVERGENCES`.

    Computed as :math:`E_p a(\ell) + E_q b(\ell)` with :math:`\ell = \log p - \log q` and the
    row's factors (``integrands`` of :class:`gan_lab.fdiv.FDivergence`), which stay finite where
    :math:`p/q` overflows; same integration strategy and arguments as :func:`jsd`: adaptive
    quadrature in one dimension, otherwise a Monte Carlo average over ``n_samples`` draws of
    each distribution a term needs, with its standard error. ``"pearson"`` is
    :func:`pearson_chi2` (``inf`` where the divergence is infinite). ``"kl"`` equals :func:`kl`.

    Args:
        p, q: distributions with ``log_prob`` (see :func:`jsd`).
        divergence: a name in :data:`gan_lab.fdiv.DIVERGENCES` (``"kl"``, ``"reverse_kl"``,
            ``"pearson"``, ``"hellinger"``, ``"jsd"``, ``"gan"``, ``"tv"``).
        n_samples, rng, return_se, method: as for :func:`jsd`.

    Returns:
        The divergence, or ``(divergence, error)`` when ``return_se`` is true.

    Raises:
        ValueError: for an unknown ``divergence`` (listing the valid names), or as :func:`jsd`.
    """
    from . import fdiv

    d = fdiv.get(divergence)
    if d.name == "pearson":
        return pearson_chi2(p, q, n_samples=n_samples, rng=rng, return_se=return_se, method=method)
    quadrature.check_pair(p, q)  # errors name p and q in the caller's order
    a, b = d.integrands()
    if a is None:  # an expectation over q alone: swap the roles, E_q b(log p - log q)
        value, err = quadrature.expectation(q, p, lambda lq, lp: b(lp - lq), None, method, n_samples, rng)
    else:
        value, err = quadrature.expectation(
            p, q, lambda lp, lq: a(lp - lq), None if b is None else (lambda lp, lq: b(lp - lq)),
            method, n_samples, rng,
        )
    return (value, err) if return_se else value


# The IPMs in closed form live in gan_lab.ipm_theory; re-exported here, their first home.
from .ipm_theory import mmd2_gaussians, wasserstein1_1d  # noqa: E402,F401
