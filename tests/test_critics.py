"""gan_lab.critics: the Lipschitz constant on points, the certified W1 bound, the quadratic R^2."""

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab.critics import critic_w1_bound, lipschitz_on, quadratic_r2
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
