r"""How much of :math:`W_1` a critic certifies, and how simple it is.

Measurements of a trained critic from its values at finite sets of points (chapter 7):
:func:`lipschitz_on`, the exact Lipschitz constant on the points; :func:`critic_w1_bound`,
the lower bound on the empirical :math:`W_1` that the critic proves by weak duality (to
compare with the exact :func:`gan_lab.metrics.wasserstein1`); and :func:`quadratic_r2`,
how much of the critic a quadratic polynomial explains. Every such function takes one set
of points ``(n, d)`` or one per seed ``(seeds, n, d)``; these three names are also
importable from :mod:`gan_lab.metrics`. :func:`penalised_shift_optimum` gives what a
WGAN-GP critic reports at its optimum for a Gaussian shifted by ``a``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .distributions import as_point_pair, as_point_sets


def _points_and_values(points, values):
    """Points ``(n, d)`` or ``(S, n, d)`` and critic values ``(n,)`` or ``(S, n)``, broadcast over seeds.

    Returns the points ``(S, n, d)``, the values ``(S, n)`` and whether the input was batched.
    """
    x, batched = as_point_sets("points", points)  # (S, n, d)
    if isinstance(values, (torch.Tensor, np.ndarray)) and np.ndim(values) == 2:
        seeds, batched = max(x.shape[0], values.shape[0]), True
    else:
        seeds = x.shape[0]
    x = x.expand(seeds, -1, -1)
    return x, _critic_values("values", values, seeds, x.shape[1]), batched


def _critic_values(name: str, values, seeds: int, n: int) -> torch.Tensor:
    """Critic values as a float64 CPU tensor of shape ``(seeds, n)``."""
    v = values.detach().to("cpu", torch.float64) if isinstance(values, torch.Tensor) else torch.as_tensor(
        np.asarray(values, dtype=np.float64))
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2 or v.shape[1] != n or v.shape[0] not in (1, seeds):
        raise ValueError(f"{name} must have shape ({n},) or ({seeds}, {n}) to match the points, got {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    return v.expand(seeds, n)


def lipschitz_on(points, values):
    r"""The Lipschitz constant of a function restricted to a finite set of points.

    .. math:: \mathrm{Lip}_X(f) = \max_{i \ne j,\ x_i \ne x_j} \frac{\lvert f(x_i) - f(x_j) \rvert}{\lVert x_i - x_j \rVert_2}

    over all pairs, computed exactly (in blocks of rows, float64). It is at most the
    Lipschitz constant of ``f`` on the whole space and, by McShane's extension, the
    smallest constant of any function that agrees with ``f`` on the points. Repeated
    points are skipped when their values agree; if they differ the result is ``inf``.

    Args:
        points: shape ``(n, d)`` or ``(seeds, n, d)`` (``(n,)`` is n points in 1-D), ``n >= 2``.
        values: the function at the points, shape ``(n,)`` or ``(seeds, n)``.

    Returns:
        A ``float``, or an array of shape ``(seeds,)`` when either input has a seed axis.

    Raises:
        ValueError: for fewer than two distinct points, or values whose shape does not
            match the points or that are not finite.
    """
    x, f, batched = _points_and_values(points, values)  # (S, n, d), (S, n)
    seeds, n = x.shape[:2]
    best = torch.zeros(seeds, dtype=torch.float64)
    any_pair = torch.zeros(seeds, dtype=torch.bool)
    rows = max(1, (1 << 22) // (n * seeds))  # bounds the (S, rows, n) blocks at 4M entries
    for start in range(0, n, rows):
        xi, fi = x[:, start:start + rows], f[:, start:start + rows]  # (S, r, d), (S, r)
        dist = torch.cdist(xi, x, compute_mode="donot_use_mm_for_euclid_dist")  # (S, r, n)
        diff = (fi[:, :, None] - f[:, None, :]).abs()  # (S, r, n)
        same = dist == 0
        ratio = torch.where(same, torch.zeros_like(dist), diff / torch.where(same, torch.ones_like(dist), dist))
        ratio = torch.where(same & (diff > 0), torch.full_like(dist, math.inf), ratio)
        best = torch.maximum(best, ratio.flatten(1).max(1).values)
        any_pair |= (~same).flatten(1).any(1)
    if not bool(any_pair.all()):
        raise ValueError("points must contain at least two distinct points")
    out = best.numpy()
    return out if batched else float(out[0])


def critic_w1_bound(real, fake, real_values, fake_values):
    r"""The lower bound on the empirical :math:`W_1` that a critic certifies (weak duality).

    For any function :math:`f` with Lipschitz constant :math:`L` on the pooled points,
    :math:`f / L` is 1-Lipschitz there, so by the Kantorovich-Rubinstein duality

    .. math:: \frac{\frac1n \sum_i f(x_i) - \frac1m \sum_j f(y_j)}{\mathrm{Lip}_{X \cup Y}(f)} \le W_1(\hat P, \hat Q),

    with equality exactly when :math:`f` restricted to the points is an optimal critic.
    The Lipschitz constant is :func:`lipschitz_on` of the pooled points,
    so the bound holds for *any* critic values, including a weight-clipped critic whose
    scale is arbitrary. Divided by :func:`gan_lab.metrics.wasserstein1` of the same two
    samples it gives the fraction of the distance that the critic's shape captures.

    Args:
        real: points of :math:`\hat P`, shape ``(n, d)`` or ``(seeds, n, d)``.
        fake: points of :math:`\hat Q`, shape ``(m, d)`` or ``(seeds, m, d)``.
        real_values: the critic at ``real``, shape ``(n,)`` or ``(seeds, n)``.
        fake_values: the critic at ``fake``, shape ``(m,)`` or ``(seeds, m)``.

    Returns:
        A ``float``, or an array of shape ``(seeds,)`` when any input has a seed axis.

    Raises:
        ValueError: for mismatched shapes, non-finite inputs, or a critic that is constant
            on the points (the bound is then 0/0).
    """
    xs, ys, batched = as_point_pair(real, fake)  # (S, n, d), (S, m, d)
    n, m = xs.shape[1], ys.shape[1]
    fr = real_values if isinstance(real_values, torch.Tensor) else torch.as_tensor(np.asarray(real_values, dtype=np.float64))
    ff = fake_values if isinstance(fake_values, torch.Tensor) else torch.as_tensor(np.asarray(fake_values, dtype=np.float64))
    batched = batched or fr.ndim == 2 or ff.ndim == 2
    seeds = max(xs.shape[0], fr.shape[0] if fr.ndim == 2 else 1, ff.shape[0] if ff.ndim == 2 else 1)
    if xs.shape[0] not in (1, seeds):
        raise ValueError(f"points have {xs.shape[0]} seeds but values have {seeds}")
    fr, ff = _critic_values("real_values", fr, seeds, n), _critic_values("fake_values", ff, seeds, m)  # (S, n), (S, m)
    pooled = torch.cat([xs.expand(seeds, -1, -1), ys.expand(seeds, -1, -1)], 1)  # (S, n + m, d)
    lip = np.asarray(lipschitz_on(pooled, torch.cat([fr, ff], 1)))  # (S,)
    if np.any(lip == 0):
        raise ValueError("the critic is constant on the points: its W1 bound is undefined")
    out = (fr.mean(1) - ff.mean(1)).numpy() / lip
    return out if batched else float(out[0])


def quadratic_r2(points, values):
    r"""The fraction of a function's variance explained by the best quadratic polynomial.

    Fits :math:`f(x) \approx c + b^\top x + x^\top A x` (all monomials of total degree at
    most 2 in the coordinates) by least squares over the points and returns
    :math:`R^2 = 1 - \sum_i r_i^2 / \sum_i (f_i - \bar f)^2`. A critic with :math:`R^2 \approx 1`
    is, on these points, a quadratic: its :math:`E_P f - E_Q f` depends on the two
    distributions only through their means and second moments. :math:`R^2` is invariant
    under invertible affine maps of the points.

    Args:
        points: shape ``(n, d)`` or ``(seeds, n, d)`` (``(n,)`` is n points in 1-D).
        values: the function at the points, shape ``(n,)`` or ``(seeds, n)``.

    Returns:
        A ``float``, or an array of shape ``(seeds,)`` when either input has a seed axis.

    Raises:
        ValueError: for mismatched shapes, non-finite inputs, constant values, or fewer
            points than monomials.
    """
    x, f, batched = _points_and_values(points, values)  # (S, n, d), (S, n)
    n, d = x.shape[1], x.shape[2]
    iu = torch.triu_indices(d, d)
    # centre and scale first: the fit is affine-invariant, and the design is better conditioned
    z = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-300)
    design = torch.cat([torch.ones_like(z[..., :1]), z, (z[..., :, None] * z[..., None, :])[..., iu[0], iu[1]]], -1)
    if n < design.shape[-1]:
        raise ValueError(f"need at least {design.shape[-1]} points for a quadratic fit in {d} dimensions, got {n}")
    centred = f - f.mean(1, keepdim=True)  # (S, n)
    total = (centred ** 2).sum(1)
    if bool((total == 0).any()):
        raise ValueError("values are constant: R^2 is undefined")
    coef = torch.linalg.lstsq(design, f[..., None], driver="gelsd").solution  # (S, k, 1)
    resid = f - (design @ coef)[..., 0]
    out = (1 - (resid ** 2).sum(1) / total).numpy()
    return out if batched else float(out[0])


def penalised_shift_optimum(shift: float, penalty_weight: float = 10.0, *, points: int = 4001):
    r"""What a WGAN-GP critic reports at its optimum for :math:`N(0, I)` against :math:`N(a, I)`.

    The critic maximises :math:`E_P f - E_Q f - \lambda E_{\hat x}(\lVert \nabla f(\hat x) \rVert - 1)^2`
    with :math:`\hat x = \epsilon x + (1 - \epsilon) y`, :math:`\epsilon \sim U[0, 1]`, for
    independent :math:`x \sim P`, :math:`y \sim Q`. Two candidates, both functions of
    :math:`t = \langle a, x \rangle / \lVert a \rVert` only:

    * the best *linear* critic, slope :math:`s = 1 + \lVert a \rVert / (2\lambda)`, reports
      :math:`E_P f - E_Q f = \lVert a \rVert (1 + \lVert a \rVert / (2 \lambda))`;
    * the best *ridge* critic :math:`f = g(t)`: writing the gap as
      :math:`-\int g'(t)\, w(t)\, dt` with :math:`w = F_P - F_Q \ge 0` (integration by parts)
      and the penalty as
      :math:`\lambda \int \rho(t) (\lvert g'(t) \rvert - 1)^2 dt`, with :math:`\rho` the density of
      :math:`\hat t`, the objective is maximised point by point at slope
      :math:`g' = -(1 + w(t) / (2 \lambda \rho(t)))`, and the critic reports
      :math:`\lVert a \rVert + \int w^2 / (2 \lambda \rho)\, dt`. By Cauchy-Schwarz this is at least
      the linear value. A critic stuck with the wrong sign (slope
      :math:`g' = 1 - w / (2 \lambda \rho)`, a local optimum) reports
      :math:`-\lVert a \rVert + \int w^2 / (2 \lambda \rho)\, dt` (where :math:`w < 2 \lambda \rho`,
      which fails only in the far tails, where the mass is negligible).

    :math:`\rho(t)` is a mixture over :math:`\epsilon` of the normal densities with mean
    :math:`(1 - \epsilon) \lVert a \rVert` and variance :math:`\epsilon^2 + (1 - \epsilon)^2`,
    integrated by 64-point Gauss-Legendre in :math:`\epsilon`;
    the integral over :math:`t` is the trapezoidal rule on ``points`` points of
    :math:`[-10, \lVert a \rVert + 10]`.

    Args:
        shift: :math:`\lVert a \rVert > 0`.
        penalty_weight: :math:`\lambda > 0`.
        points: grid size in :math:`t` (>= 101).

    The penalised objective of the ridge critic is
    :math:`\lVert a \rVert + \int w^2 / (4 \lambda \rho)\, dt`, against
    :math:`\lVert a \rVert + \lVert a \rVert^2 / (4 \lambda)` for the linear one. In one
    dimension the ridge critic is the global optimum. In two it is not: given :math:`t`, the
    spread of the interpolates across the shift (coordinate :math:`u`) depends on
    :math:`\epsilon`, so a critic gains by bending in :math:`u` too. An upper bound for every
    critic in two dimensions follows from :math:`(\lVert \nabla f \rVert - 1)^2 \ge
    ((\lvert \partial_t f \rvert - 1)_+)^2` and a pointwise maximisation in
    :math:`h = -\partial_t f(t, u)`: the objective is at most
    :math:`\lVert a \rVert + \iint w(t)^2 \varphi(u)^2 / (4 \lambda \rho(t, u))\, dt\, du`,
    with :math:`\rho(t, u)` the joint density of the interpolates and :math:`\varphi` the
    standard normal density (trapezoidal rule on 321 points of :math:`[-8, 8]` in :math:`u`).

    Returns:
        A dict of floats: ``linear`` and ``ridge`` (what the critic reports, :math:`E_P f - E_Q f`,
        without the penalty), ``ridge_stuck`` (the wrong-sign ridge critic),
        ``linear_stuck`` (:math:`-\lVert a \rVert (1 - \lVert a \rVert / (2\lambda))`), and
        ``linear_objective`` and ``ridge_objective`` (the gap minus the penalty), and
        ``objective_bound_2d`` (no critic's penalised objective exceeds it in two dimensions).

    Raises:
        ValueError: for a shift or penalty weight that is not a finite number > 0, or too
            few points.
    """
    for name, v in (("shift", shift), ("penalty_weight", penalty_weight)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if isinstance(points, bool) or not isinstance(points, int) or points < 101:
        raise ValueError(f"points must be an integer >= 101, got {points!r}")
    a, lam = float(shift), float(penalty_weight)
    t = np.linspace(-10.0, a + 10.0, points)  # (T,)
    nodes, wts = np.polynomial.legendre.leggauss(64)
    eps, wts = (nodes + 1) / 2, wts / 2  # on [0, 1]
    mean, sd = (1 - eps) * a, np.sqrt(eps ** 2 + (1 - eps) ** 2)  # (E,)
    z = (t[:, None] - mean) / sd  # (T, E)
    rho = (np.exp(-z ** 2 / 2) / (sd * math.sqrt(2 * math.pi))) @ wts  # (T,)
    phi_cdf = np.vectorize(lambda u: 0.5 * math.erfc(-u / math.sqrt(2)))
    w = phi_cdf(t) - phi_cdf(t - a)  # F_P - F_Q >= 0
    extra = float(np.trapezoid(w ** 2 / (2 * lam * rho), t))
    # 2-D bound: u across the shift, rho(t, u) the joint density of the interpolates
    u = np.linspace(-8.0, 8.0, 321)  # (U,)
    nt = np.exp(-z ** 2 / 2) / (sd * math.sqrt(2 * math.pi))  # (T, E)
    nu = np.exp(-(u[:, None] / sd) ** 2 / 2) / (sd * math.sqrt(2 * math.pi))  # (U, E)
    rho_tu = (nt * wts) @ nu.T  # (T, U)
    phi_u = np.exp(-u ** 2 / 2) / math.sqrt(2 * math.pi)  # (U,)
    inner = np.trapezoid((w[:, None] * phi_u) ** 2 / (4 * lam * rho_tu), u, axis=1)
    bound = a + float(np.trapezoid(inner, t))
    return {"linear": a * (1 + a / (2 * lam)), "ridge": a + extra,
            "linear_stuck": -a * (1 - a / (2 * lam)), "ridge_stuck": -a + extra,
            "linear_objective": a + a * a / (4 * lam), "ridge_objective": a + extra / 2,
            "objective_bound_2d": bound}
