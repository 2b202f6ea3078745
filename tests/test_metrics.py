"""gan_lab.metrics.mode_stats on hand-built sample sets whose answers are known."""

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab.data import GaussianMixture, grid, ring
from gan_lab.metrics import mode_stats

RING = ring(n_modes=8, radius=1.0, std=0.01)


def at_modes(mixture, counts):
    """counts[k] copies of mode k's centre, shape (sum(counts), d)."""
    return torch.cat([mixture.means[k].expand(c, -1) for k, c in enumerate(counts)])


def test_samples_at_three_ring_modes():
    counts = [5, 0, 3, 0, 0, 2, 0, 0]
    stats = mode_stats(at_modes(RING, counts), RING)
    assert stats["modes"] == 3 and isinstance(stats["modes"], int)
    assert stats["high_quality"] == 1.0
    np.testing.assert_array_equal(stats["counts"], counts)
    # KL((0.5, 0.3, 0.2, 0, ...) || uniform over 8), by hand
    expected = 0.5 * math.log(8 * 0.5) + 0.3 * math.log(8 * 0.3) + 0.2 * math.log(8 * 0.2)
    assert_close(stats["reverse_kl"], expected, rtol=1e-12, atol=0)


def test_uniform_coverage_has_zero_reverse_kl_and_one_mode_has_log_k():
    stats = mode_stats(at_modes(RING, [4] * 8), RING)
    assert (stats["modes"], stats["high_quality"]) == (8, 1.0)
    assert_close(stats["reverse_kl"], 0.0, atol=1e-15, rtol=0)
    collapsed = mode_stats(at_modes(RING, [10, 0, 0, 0, 0, 0, 0, 0]), RING)
    assert collapsed["modes"] == 1
    assert_close(collapsed["reverse_kl"], math.log(8), rtol=1e-12, atol=0)


def test_far_away_samples_capture_nothing():
    stats = mode_stats(torch.full((50, 2), 10.0), RING)
    assert (stats["modes"], stats["high_quality"]) == (0, 0.0)
    np.testing.assert_array_equal(stats["counts"], np.zeros(8, dtype=np.int64))
    # documented convention: no high-quality sample -> log K, the worst a histogram can reach
    assert_close(stats["reverse_kl"], math.log(8), rtol=1e-12, atol=0)


def test_high_quality_fraction_counts_only_near_samples():
    near = at_modes(RING, [1, 1, 1, 0, 0, 0, 0, 0])
    x = torch.cat([near, torch.full((7, 2), 3.0)])  # 3 of 10 are high quality
    stats = mode_stats(x, RING)
    assert (stats["modes"], stats["high_quality"]) == (3, 0.3)
    assert_close(stats["reverse_kl"], math.log(8 / 3), rtol=1e-12, atol=0)


def test_threshold_boundary_is_strict():
    mixture = GaussianMixture([[0.0, 0.0], [10.0, 0.0]], 0.5)
    on_edge = torch.tensor([[1.5, 0.0]], dtype=torch.float64)  # exactly 3 standard deviations
    assert mode_stats(on_edge, mixture)["high_quality"] == 0.0
    assert mode_stats(on_edge, mixture, threshold=3.0001)["high_quality"] == 1.0
    inside = torch.tensor([[1.4999, 0.0]], dtype=torch.float64)
    assert mode_stats(inside, mixture)["modes"] == 1
    assert mode_stats(inside, mixture, threshold=2.0)["modes"] == 0


def test_distances_are_scaled_by_each_modes_std():
    # x = 0.4 is Euclidean-closer to the narrow mode at 0 (r = 4) than to the wide one at 1
    # (r = 0.6), but in standard deviations it belongs to the wide one.
    mixture = GaussianMixture([[0.0], [1.0]], [0.1, 1.0])
    stats = mode_stats(torch.tensor([[0.4]]), mixture)
    np.testing.assert_array_equal(stats["counts"], [0, 1])


def test_true_samples_are_high_quality_at_the_chi_square_rate():
    # for an isotropic 2-D Gaussian, P(|x - mu| < 3 sigma) = 1 - exp(-9/2)
    mixture = grid()
    n = 20_000
    stats = mode_stats(mixture.sample(n, generator=torch.Generator().manual_seed(0)), mixture)
    rate = 1 - math.exp(-4.5)
    assert abs(stats["high_quality"] - rate) <= 4 * math.sqrt(rate * (1 - rate) / n)
    assert stats["modes"] == 25
    assert 0.0 <= stats["reverse_kl"] <= 0.005  # sampling noise only: about (K - 1) / (2 n)


def test_batched_input_equals_per_seed_calls():
    g = torch.Generator().manual_seed(1)
    x = RING.sample((4, 300), generator=g) * (1 + 0.03 * torch.randn(4, 300, 1, generator=g))  # (4, 300, 2)
    x[2] = 5.0  # one seed with nothing near a mode
    batched = mode_stats(x, RING)
    assert batched["modes"].shape == batched["high_quality"].shape == batched["reverse_kl"].shape == (4,)
    assert batched["counts"].shape == (4, 8)
    for s in range(4):
        single = mode_stats(x[s], RING)
        assert batched["modes"][s] == single["modes"]
        assert batched["high_quality"][s] == single["high_quality"]
        assert batched["reverse_kl"][s] == single["reverse_kl"]
        np.testing.assert_array_equal(batched["counts"][s], single["counts"])


def test_invariant_to_permuting_samples_and_accepts_numpy():
    g = torch.Generator().manual_seed(2)
    x = RING.sample(500, generator=g) * 1.02
    stats = mode_stats(x, RING)
    shuffled = mode_stats(x[torch.randperm(500, generator=g)].numpy(), RING)
    assert (stats["modes"], stats["high_quality"]) == (shuffled["modes"], shuffled["high_quality"])
    assert_close(stats["reverse_kl"], shuffled["reverse_kl"], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(stats["counts"], shuffled["counts"])


def test_infinite_samples_are_never_high_quality():
    x = torch.tensor([[math.inf, 0.0], [1.0, 0.0], [-math.inf, math.inf]])
    stats = mode_stats(x, RING)
    assert stats["modes"] == 1
    assert_close(stats["high_quality"], 1 / 3, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(10, 3), r"samples must have shape \(n, 2\) or \(seeds, n, 2\)"),
        (torch.zeros(10), "samples must have shape"),
        (torch.zeros(2, 3, 4, 2), "samples must have shape"),
        (torch.zeros(0, 2), "samples must not be empty"),
        (torch.zeros(3, 0, 2), "samples must not be empty"),
        (torch.tensor([[0.0, math.nan]]), "samples must not contain NaN"),
    ],
)
def test_bad_samples_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        mode_stats(bad, RING)


@pytest.mark.parametrize("threshold", [0, -1.0, math.nan, "3"])
def test_bad_threshold_raises(threshold):
    with pytest.raises(ValueError, match="threshold"):
        mode_stats(torch.zeros(5, 2), RING, threshold=threshold)


def test_mixture_without_means_raises():
    with pytest.raises(TypeError, match="mixture"):
        mode_stats(torch.zeros(5, 2), object())


# --- critic measurements: lipschitz_on, critic_w1_bound, quadratic_r2 ---------------------

from gan_lab.metrics import critic_w1_bound, lipschitz_on, quadratic_r2, wasserstein1  # noqa: E402


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
