"""gan_lab.theory against independent oracles: scipy.stats densities, numpy grids, closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch.testing import assert_close

from gan_lab import theory
from gan_lab.data import GaussianMixture

LOG2, LOG4 = math.log(2), math.log(4)


def mixture_pdf_1d(x, means, stds, weights):
    """An oracle density written with scipy.stats, independent of GaussianMixture."""
    return sum(w * stats.norm.pdf(x, m, s) for m, s, w in zip(means, stds, weights))


def jsd_on_grid(p_pdf, q_pdf, x):
    """JSD by the trapezoid rule on the (possibly non-uniform) grid x, in numpy."""
    p, q = p_pdf(x), q_pdf(x)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 0.5 * np.where(p > 0, p * np.log(p / m), 0.0) + 0.5 * np.where(q > 0, q * np.log(q / m), 0.0)
    return integrate.trapezoid(f, x)


# --- the optimal discriminator ------------------------------------------------------------


def test_optimal_discriminator_matches_density_ratio_1d():
    p_args = ([-1.0, 2.0], [0.5, 1.0], [0.3, 0.7])
    p, q = GaussianMixture(p_args[0], p_args[1], p_args[2]), GaussianMixture([0.5], 2.0)
    x = np.linspace(-5, 5, 101)
    pp, qq = mixture_pdf_1d(x, *p_args), stats.norm.pdf(x, 0.5, 2.0)
    expected = torch.from_numpy(pp / (pp + qq))
    assert_close(theory.optimal_discriminator(p, q, torch.from_numpy(x)), expected, rtol=1e-12, atol=1e-14)


def test_optimal_discriminator_matches_density_ratio_2d_and_keeps_batch_shape():
    p = GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [0.5, 0.8])
    q = GaussianMixture([[1.0, 0.0]], 1.0)
    x = np.random.default_rng(0).normal(size=(3, 4, 2)) * 2
    pp = sum(0.5 * stats.multivariate_normal.pdf(x, m, s**2 * np.eye(2)) for m, s in [((0, 0), 0.5), ((1, 1), 0.8)])
    qq = stats.multivariate_normal.pdf(x, (1, 0), np.eye(2))
    d_star = theory.optimal_discriminator(p, q, torch.from_numpy(x))
    assert d_star.shape == (3, 4)
    assert_close(d_star, torch.from_numpy(pp / (pp + qq)), rtol=1e-12, atol=1e-14)


def test_optimal_discriminator_is_stable_where_both_densities_underflow():
    # p = N(0, 1), q = N(1, 1): log p - log q = 1/2 - x exactly
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.0], 1.0)
    x = np.array([40.0, 1e3, -1e3])
    with np.errstate(invalid="ignore"):
        naive = stats.norm.pdf(x) / (stats.norm.pdf(x) + stats.norm.pdf(x, 1.0))
    assert np.isnan(naive).all()  # 0 / 0: why the log-space form is needed
    d_star = theory.optimal_discriminator(p, q, torch.from_numpy(x))
    assert torch.isfinite(d_star).all() and ((d_star >= 0) & (d_star <= 1)).all()
    assert_close(d_star, torch.sigmoid(torch.from_numpy(0.5 - x)), rtol=1e-12, atol=0)
    assert d_star[0] > 0  # sigmoid(-39.5) ~ 7e-18 is resolved, not flushed to zero


def test_optimal_discriminator_tail_with_unequal_widths():
    # p = N(0, 1), q = N(0, 2^2): log p - log q = log 2 - 3 x^2 / 8
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([0.0], 2.0)
    x = torch.tensor([0.0, 3.0, 50.0], dtype=torch.float64)
    assert_close(theory.optimal_discriminator(p, q, x), torch.sigmoid(LOG2 - 3 * x**2 / 8), rtol=1e-12, atol=0)


def test_optimal_discriminator_accepts_torch_distributions():
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    p, q = torch.distributions.Normal(0.0, 1.0), torch.distributions.Normal(1.0, 1.0)
    assert_close(theory.optimal_discriminator(p, q, x), torch.sigmoid(0.5 - x), rtol=1e-6, atol=1e-7)


# --- Jensen-Shannon divergence -------------------------------------------------------------


def test_jsd_of_equal_distributions_is_zero():
    p = GaussianMixture([-1.0, 0.5, 3.0], [0.2, 1.0, 0.05], [0.2, 0.5, 0.3])
    twin = GaussianMixture([-1.0, 0.5, 3.0], [0.2, 1.0, 0.05], [0.2, 0.5, 0.3])
    assert_close(theory.jsd(p, twin), 0.0, atol=1e-8, rtol=0)
    ring2 = GaussianMixture([[1.0, 0.0], [0.0, 1.0]], 0.1)
    g = torch.Generator().manual_seed(0)
    assert_close(theory.jsd(ring2, ring2, n_samples=1000, generator=g), 0.0, atol=1e-8, rtol=0)


@pytest.mark.parametrize(
    "p, q",
    [
        (GaussianMixture([0.0], 0.01), GaussianMixture([10.0], 0.01)),
        # interleaved narrow components: disjoint supports, though the ranges overlap
        (GaussianMixture([0.0, 2.0, 4.0], 1e-3), GaussianMixture([1.0, 3.0, 5.0], [1e-3, 2e-3, 1e-2], [0.5, 0.3, 0.2])),
    ],
)
def test_jsd_of_disjoint_supports_is_log_2(p, q):
    value = theory.jsd(p, q)
    assert_close(value, LOG2, atol=1e-12, rtol=0)


@pytest.mark.parametrize("mu", [0.3, 1.0, 3.0])
def test_jsd_of_unit_gaussians_against_trapezoid_grid(mu):
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([mu], 1.0)
    x = np.linspace(-14.0, 14.0 + mu, 400_001)
    expected = jsd_on_grid(lambda t: stats.norm.pdf(t), lambda t: stats.norm.pdf(t, mu), x)
    assert_close(theory.jsd(p, q), expected, atol=1e-9, rtol=0)


def test_jsd_does_not_miss_a_narrow_component():
    # half of p's mass in a spike of width 1e-3 that q hardly sees
    p_args = ([0.3, 0.0], [1e-3, 1.0], [0.5, 0.5])
    p, q = GaussianMixture(*p_args), GaussianMixture([0.0], 1.0)
    x = np.unique(np.concatenate([np.linspace(-15, 15, 300_001), np.linspace(0.28, 0.32, 200_001)]))
    expected = jsd_on_grid(lambda t: mixture_pdf_1d(t, *p_args), lambda t: stats.norm.pdf(t), x)
    assert_close(theory.jsd(p, q), expected, atol=1e-8, rtol=0)
    assert 0.2 < expected < 0.25  # the spike matters: a quadrature that missed it would give ~0


def test_jsd_is_symmetric():
    p = GaussianMixture([-1.0, 2.0], [0.3, 1.0], [0.4, 0.6])
    q = GaussianMixture([0.0, 0.1], [2.0, 0.01])
    assert_close(theory.jsd(p, q), theory.jsd(q, p), rtol=1e-12, atol=1e-14)


def test_jsd_monte_carlo_2d_within_four_standard_errors_of_a_grid():
    p = GaussianMixture([[0.0, 0.0], [2.0, 2.0]], [0.6, 0.8])
    q = GaussianMixture([[1.0, 0.0]], 1.0)
    ticks = np.linspace(-8.0, 10.0, 601)
    xx, yy = np.meshgrid(ticks, ticks, indexing="ij")  # (601, 601) each

    def normal_pdf(mean, std):  # isotropic 2-D normal density, written out
        return np.exp(-((xx - mean[0]) ** 2 + (yy - mean[1]) ** 2) / (2 * std**2)) / (2 * np.pi * std**2)

    p_pdf = 0.5 * normal_pdf((0, 0), 0.6) + 0.5 * normal_pdf((2, 2), 0.8)
    q_pdf = normal_pdf((1, 0), 1.0)
    m = (p_pdf + q_pdf) / 2
    f = 0.5 * p_pdf * np.log(p_pdf / m) + 0.5 * q_pdf * np.log(q_pdf / m)
    expected = integrate.trapezoid(integrate.trapezoid(f, ticks, axis=1), ticks)
    estimate, se = theory.jsd(p, q, n_samples=50_000, generator=torch.Generator().manual_seed(1), return_se=True)
    assert 1e-4 < se < 3e-3
    assert abs(estimate - expected) <= 4 * se


def test_jsd_standard_error_matches_the_spread_over_seeds():
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.5], 0.7)
    runs = [theory.jsd(p, q, n_samples=2000, method="mc", return_se=True, generator=torch.Generator().manual_seed(s)) for s in range(40)]
    estimates, ses = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
    # the sample std of 40 draws is within ~25% of the truth with high probability
    assert_close(estimates.std(ddof=1), ses.mean(), rtol=0.3, atol=0)
    assert abs(estimates.mean() - theory.jsd(p, q)) <= 4 * ses.mean() / math.sqrt(40)


def test_jsd_monte_carlo_is_reproducible_with_a_generator():
    p, q = GaussianMixture([[0.0, 0.0]], 1.0), GaussianMixture([[1.0, 0.0]], 1.0)
    a = theory.jsd(p, q, n_samples=500, generator=torch.Generator().manual_seed(3))
    b = theory.jsd(p, q, n_samples=500, generator=torch.Generator().manual_seed(3))
    assert a == b


def test_jsd_accepts_torch_distributions():
    normal = torch.distributions.Normal
    expected = theory.jsd(GaussianMixture([0.0], 1.0), GaussianMixture([2.0], 0.5))
    assert_close(theory.jsd(normal(0.0, 1.0), normal(2.0, 0.5)), expected, rtol=1e-6, atol=1e-9)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    value, se = theory.jsd(mvn, mvn, n_samples=100, generator=torch.Generator().manual_seed(0), return_se=True)
    assert (value, se) == (0.0, 0.0)


# --- V(D*, G) and KL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, q",
    [
        (GaussianMixture([0.0], 1.0), GaussianMixture([2.0], 1.0)),
        (GaussianMixture([-1.0, 2.0], [0.3, 1.0], [0.4, 0.6]), GaussianMixture([0.0, 0.1], [2.0, 0.01])),
        (GaussianMixture([0.0], 0.01), GaussianMixture([5.0], 0.01)),
    ],
)
def test_value_at_optimum_is_minus_log_4_plus_twice_jsd(p, q):
    assert_close(theory.value_at_optimum(p, q), -LOG4 + 2 * theory.jsd(p, q), atol=1e-7, rtol=0)


def test_value_at_optimum_identity_holds_sample_by_sample_in_2d():
    p, q = GaussianMixture([[0.0, 0.0]], 1.0), GaussianMixture([[1.0, 1.0]], 0.5)
    v = theory.value_at_optimum(p, q, n_samples=1000, generator=torch.Generator().manual_seed(5))
    j = theory.jsd(p, q, n_samples=1000, generator=torch.Generator().manual_seed(5))
    assert_close(v, -LOG4 + 2 * j, atol=1e-12, rtol=0)


def test_value_at_optimum_is_minus_log_4_at_equality():
    p = GaussianMixture([0.0, 1.0], 0.5)
    assert_close(theory.value_at_optimum(p, p), -LOG4, atol=1e-12, rtol=0)


def kl_gaussians(mu1, s1, mu2, s2, d=1):
    """KL(N(mu1, s1^2 I) || N(mu2, s2^2 I)) in closed form."""
    sq = float(np.sum((np.asarray(mu1) - np.asarray(mu2)) ** 2))
    return d * math.log(s2 / s1) + (d * s1**2 + sq) / (2 * s2**2) - d / 2


def test_kl_1d_quadrature_against_closed_form():
    for mu1, s1, mu2, s2 in [(0.0, 1.0, 1.0, 1.0), (0.0, 0.1, 2.0, 3.0), (5.0, 2.0, 0.0, 0.5)]:
        value = theory.kl(GaussianMixture([mu1], s1), GaussianMixture([mu2], s2))
        assert_close(value, kl_gaussians(mu1, s1, mu2, s2), rtol=1e-10, atol=1e-12)


def test_kl_2d_monte_carlo_within_four_standard_errors_of_closed_form():
    p, q = GaussianMixture([[0.0, 0.0]], 0.7), GaussianMixture([[1.0, -0.5]], 1.2)
    value, se = theory.kl(p, q, n_samples=50_000, generator=torch.Generator().manual_seed(2), return_se=True)
    assert 0 < se < 0.01
    assert abs(value - kl_gaussians((0, 0), 0.7, (1, -0.5), 1.2, d=2)) <= 4 * se


# --- validation -----------------------------------------------------------------------------


def test_bad_inputs_raise_errors_naming_the_parameter():
    one, two = GaussianMixture([0.0], 1.0), GaussianMixture([[0.0, 0.0]], 1.0)
    with pytest.raises(TypeError, match="p must have a log_prob"):
        theory.jsd(object(), one)
    with pytest.raises(TypeError, match="q must have a log_prob"):
        theory.optimal_discriminator(one, "not a distribution", torch.zeros(3))
    with pytest.raises(ValueError, match=r"p\.dim=1 and q\.dim=2"):
        theory.jsd(one, two)
    with pytest.raises(ValueError, match=r"p\.dim=2 and q\.dim=1"):
        theory.optimal_discriminator(two, one, torch.zeros(3, 2))
    for bad in (1, 0, -5, 2.5, True):
        with pytest.raises(ValueError, match="n_samples"):
            theory.jsd(two, two, n_samples=bad)
    with pytest.raises(ValueError, match="method"):
        theory.jsd(one, one, method="simpson")
    with pytest.raises(ValueError, match="one-dimensional"):
        theory.kl(two, two, method="quad")


def test_one_dimensional_quadrature_needs_component_locations():
    class Bare:  # a density with no means/stds to place breakpoints
        dim = 1

        def log_prob(self, x):
            return torch.distributions.Normal(0.0, 1.0).log_prob(torch.as_tensor(x))

        def sample(self, n, generator=None):
            return torch.randn(n, generator=generator)

    with pytest.raises(TypeError, match="method='mc'"):
        theory.jsd(Bare(), GaussianMixture([0.0], 1.0))
    value = theory.jsd(Bare(), GaussianMixture([0.0], 1.0), method="mc", n_samples=200, generator=torch.Generator().manual_seed(0))
    assert_close(value, 0.0, atol=1e-6, rtol=0)  # the same density, up to float32 samples
