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
    stats = mode_stats(mixture.sample(n, rng=torch.Generator().manual_seed(0)), mixture)
    rate = 1 - math.exp(-4.5)
    assert abs(stats["high_quality"] - rate) <= 4 * math.sqrt(rate * (1 - rate) / n)
    assert stats["modes"] == 25
    assert 0.0 <= stats["reverse_kl"] <= 0.005  # sampling noise only: about (K - 1) / (2 n)


def test_batched_input_equals_per_seed_calls():
    g = torch.Generator().manual_seed(1)
    x = RING.sample((4, 300), rng=g) * (1 + 0.03 * torch.randn(4, 300, 1, generator=g))  # (4, 300, 2)
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
    x = RING.sample(500, rng=g) * 1.02
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
