"""gan_lab.critics: the Lipschitz constant on points, the certified W1 bound, the quadratic R^2."""

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab.critics import (
    critic_w1_bound,
    lipschitz_on,
    penalised_shift_optimum,
    quadratic_r2,
)
from gan_lab.metrics import wasserstein1


def _brute_lipschitz(x, f):
    """Independent oracle: a plain double loop over pairs."""
    best = 0.0
    for i in range(len(x)):
        for j in range(len(x)):
            d = float(np.linalg.norm(x[i] - x[j]))
            if d > 0:
                best = max(best, abs(f[i] - f[j]) / d)
    return best


def test_lipschitz_on_matches_brute_force_pairs():
    g = np.random.default_rng(0)
    x = g.normal(size=(3, 40, 2))
    f = np.sin(2 * x[..., 0]) * x[..., 1] + g.normal(size=(3, 40)) * 0.1
    got = lipschitz_on(x, f)
    assert got.shape == (3,)
    for s in range(3):
        assert_close(got[s], _brute_lipschitz(x[s], f[s]), rtol=1e-12, atol=0)
    assert_close(lipschitz_on(x[1], f[1]), _brute_lipschitz(x[1], f[1]), rtol=1e-12, atol=0)


def test_lipschitz_on_of_a_line_is_its_slope():
    x = torch.linspace(-2, 3, 50, dtype=torch.float64)
    assert_close(lipschitz_on(x, -2.5 * x + 1), 2.5, rtol=1e-12, atol=0)


def test_lipschitz_on_repeated_points():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    assert_close(lipschitz_on(x, torch.tensor([1.0, 1.0, 6.0])), 1.0, rtol=1e-12, atol=0)
    assert lipschitz_on(x, torch.tensor([1.0, 2.0, 6.0])) == math.inf
    with pytest.raises(ValueError, match="two distinct points"):
        lipschitz_on(torch.zeros(4, 2), torch.zeros(4))


def test_critic_w1_bound_is_tight_for_a_shift():
    # 1-D: Q is P shifted by 0.7; the critic f(x) = -x attains W1 = 0.7 (sorted matching)
    x = torch.randn(300, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = x + 0.7
    assert_close(critic_w1_bound(x, y, -x, -y), 0.7, rtol=1e-12, atol=0)
    assert_close(wasserstein1(x, y), 0.7, rtol=1e-12, atol=0)


def test_critic_w1_bound_is_weak_duality_and_scale_free():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 60, 2, generator=g, dtype=torch.float64)
    y = torch.randn(4, 60, 2, generator=g, dtype=torch.float64) * 1.5 + 0.3
    w = torch.randn(4, 2, 16, generator=g, dtype=torch.float64)

    def critic(p):  # a random one-hidden-layer ReLU function per seed, (4, n)
        return torch.relu(p @ w).sum(-1) - p[..., 0]

    bound = critic_w1_bound(x, y, critic(x), critic(y))
    exact = wasserstein1(x, y)
    assert bound.shape == (4,) and np.all(bound <= exact + 1e-9)
    assert_close(critic_w1_bound(x, y, 1e-4 * critic(x), 1e-4 * critic(y)), bound, rtol=1e-9, atol=0)


def test_critic_w1_bound_bad_input():
    x = torch.zeros(5, 2)
    with pytest.raises(ValueError, match="constant"):
        critic_w1_bound(torch.randn(5, 2), torch.randn(5, 2), torch.ones(5), torch.ones(5))
    with pytest.raises(ValueError, match="real_values"):
        critic_w1_bound(x, x, torch.zeros(4), torch.zeros(5))
    with pytest.raises(ValueError, match="fake_values must be finite"):
        critic_w1_bound(torch.randn(5, 2), torch.randn(5, 2), torch.randn(5), torch.full((5,), math.nan))


def test_quadratic_r2_of_a_quadratic_is_one_and_affine_invariant():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    q = 1 + x[:, 0] - 2 * x[:, 1] ** 2 + 0.5 * x[:, 0] * x[:, 1]
    assert_close(quadratic_r2(x, q), 1.0, rtol=0, atol=1e-12)
    f = torch.abs(x.norm(dim=1) - 1)  # a V-shaped ridge: far from quadratic
    a = torch.tensor([[2.0, 1.0], [0.0, 0.5]], dtype=torch.float64)
    assert_close(quadratic_r2(x @ a + 3.0, f), quadratic_r2(x, f), rtol=1e-9, atol=0)


def test_quadratic_r2_matches_polyfit_and_sklearn():
    g = np.random.default_rng(4)
    t = g.uniform(-2, 2, size=300)
    f = np.cos(2 * t) + 0.1 * g.normal(size=300)
    resid = f - np.polyval(np.polyfit(t, f, 2), t)
    assert_close(quadratic_r2(t, f), 1 - (resid ** 2).sum() / ((f - f.mean()) ** 2).sum(), rtol=1e-9, atol=0)
    sk_pre = pytest.importorskip("sklearn.preprocessing")
    sk_lin = pytest.importorskip("sklearn.linear_model")
    x = g.normal(size=(2, 300, 2))
    v = np.sin(x[..., 0] * 2) + np.abs(x[..., 1])  # (2, 300)
    got = quadratic_r2(x, v)
    for s in range(2):
        design = sk_pre.PolynomialFeatures(2).fit_transform(x[s])
        expected = sk_lin.LinearRegression().fit(design, v[s]).score(design, v[s])
        assert_close(got[s], expected, rtol=1e-9, atol=1e-12)


def test_quadratic_r2_bad_input():
    with pytest.raises(ValueError, match="constant"):
        quadratic_r2(torch.randn(20, 2), torch.ones(20))
    with pytest.raises(ValueError, match="at least 6 points"):
        quadratic_r2(torch.randn(5, 2), torch.randn(5))
    with pytest.raises(ValueError, match="values must have shape"):
        quadratic_r2(torch.randn(20, 2), torch.randn(19))


def _ridge_optimum_by_search(a, lam):
    """Independent oracle: rho by scipy quad in epsilon, then a numerical
    maximisation of the discretised penalised gap over the slopes g'(t)."""
    from scipy import integrate, optimize, stats

    t = np.linspace(-8.0, a + 8.0, 241)
    dt = t[1] - t[0]

    def rho_at(u):
        def integrand(e):
            s = math.hypot(e, 1 - e)
            return stats.norm.pdf(u, loc=(1 - e) * a, scale=s)

        return integrate.quad(integrand, 0.0, 1.0, epsabs=1e-14)[0]

    rho = np.array([rho_at(u) for u in t])
    w = stats.norm.cdf(t) - stats.norm.cdf(t - a)

    def neg(g):
        obj = np.sum(w * g - lam * rho * (g - 1) ** 2) * dt
        grad = (w - 2 * lam * rho * (g - 1)) * dt
        return -obj, -grad

    res = optimize.minimize(neg, np.ones_like(t), jac=True, method="L-BFGS-B",
                            options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12})
    return float(np.sum(w * res.x) * dt), float(-res.fun)


@pytest.mark.parametrize("a, lam", [(1.0, 10.0), (2.0, 10.0), (1.0, 3.0)])
def test_penalised_shift_optimum_matches_a_numerical_search(a, lam):
    got = penalised_shift_optimum(a, lam)
    gap, objective = _ridge_optimum_by_search(a, lam)
    assert_close(got["ridge"], gap, rtol=2e-4, atol=0)
    assert_close(got["ridge_objective"], objective, rtol=2e-4, atol=0)
    assert_close(got["linear_objective"], a + a * a / (4 * lam), rtol=1e-15, atol=0)
    assert got["ridge_objective"] > got["linear_objective"]
    assert_close(got["linear"], a * (1 + a / (2 * lam)), rtol=1e-15, atol=0)
    assert_close(got["linear_stuck"], -a * (1 - a / (2 * lam)), rtol=1e-15, atol=0)
    # Cauchy-Schwarz: the ridge critic beats the best linear one, by the same
    # amount for both signs
    assert got["ridge"] > got["linear"] and got["ridge_stuck"] > got["linear_stuck"]
    assert_close(got["ridge"] - a, got["ridge_stuck"] + a, rtol=1e-12, atol=0)


def test_penalised_shift_optimum_of_the_chapter():
    got = penalised_shift_optimum(1.0, 10.0)
    assert_close(got["ridge"], 1.0545, rtol=0, atol=5e-5)  # ch07's value
    fine = penalised_shift_optimum(1.0, 10.0, points=20001)["ridge"]
    assert_close(got["ridge"], fine, rtol=1e-9, atol=0)  # the t grid is fine enough


@pytest.mark.parametrize("kw, match", [
    ({"shift": 0.0}, "shift"), ({"shift": float("nan")}, "shift"),
    ({"shift": 1.0, "penalty_weight": -1.0}, "penalty_weight"),
    ({"shift": 1.0, "points": 10}, "points"),
])
def test_penalised_shift_optimum_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        penalised_shift_optimum(**kw)


def _bound_2d_by_quadrature(a, lam):
    """Independent oracle for the 2-D bound: rho(t, u) by scipy's adaptive quad_vec in
    epsilon on a grid, then the double integral by Simpson's rule."""
    from scipy import integrate, stats

    t, u = np.linspace(-7.0, a + 7.0, 141), np.linspace(-7.0, 7.0, 141)
    tt, uu = np.meshgrid(t, u, indexing="ij")

    def integrand(e):
        s = math.hypot(e, 1 - e)
        return stats.norm.pdf(tt, (1 - e) * a, s) * stats.norm.pdf(uu, 0.0, s)

    r = integrate.quad_vec(integrand, 0.0, 1.0, epsabs=1e-15, epsrel=1e-10)[0]
    w = stats.norm.cdf(t) - stats.norm.cdf(t - a)
    f = (w[:, None] * stats.norm.pdf(u)[None, :]) ** 2 / (4 * lam * r)
    return a + integrate.simpson(integrate.simpson(f, x=u, axis=1), x=t)


def test_penalised_shift_bound_2d():
    got = penalised_shift_optimum(1.0, 10.0)
    assert_close(got["objective_bound_2d"], _bound_2d_by_quadrature(1.0, 10.0), rtol=1e-5, atol=0)
    # the bound is above the ridge critic's objective (Cauchy-Schwarz in u)
    assert got["objective_bound_2d"] > got["ridge_objective"] > got["linear_objective"]
