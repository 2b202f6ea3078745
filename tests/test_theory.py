"""gan_lab.theory against independent oracles: scipy.stats densities, numpy grids, closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats
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
    assert_close(theory.jsd(ring2, ring2, n_samples=1000, rng=g), 0.0, atol=1e-8, rtol=0)


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
    estimate, se = theory.jsd(p, q, n_samples=50_000, rng=torch.Generator().manual_seed(1), return_se=True)
    assert 1e-4 < se < 3e-3
    assert abs(estimate - expected) <= 4 * se


def test_jsd_standard_error_matches_the_spread_over_seeds():
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.5], 0.7)
    runs = [theory.jsd(p, q, n_samples=2000, method="mc", return_se=True, rng=torch.Generator().manual_seed(s)) for s in range(40)]
    estimates, ses = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
    # the sample std of 40 draws is within ~25% of the truth with high probability
    assert_close(estimates.std(ddof=1), ses.mean(), rtol=0.3, atol=0)
    assert abs(estimates.mean() - theory.jsd(p, q)) <= 4 * ses.mean() / math.sqrt(40)


def test_jsd_monte_carlo_is_reproducible_with_a_generator():
    p, q = GaussianMixture([[0.0, 0.0]], 1.0), GaussianMixture([[1.0, 0.0]], 1.0)
    a = theory.jsd(p, q, n_samples=500, rng=torch.Generator().manual_seed(3))
    b = theory.jsd(p, q, n_samples=500, rng=torch.Generator().manual_seed(3))
    assert a == b


def test_jsd_accepts_torch_distributions():
    normal = torch.distributions.Normal
    expected = theory.jsd(GaussianMixture([0.0], 1.0), GaussianMixture([2.0], 0.5))
    assert_close(theory.jsd(normal(0.0, 1.0), normal(2.0, 0.5)), expected, rtol=1e-6, atol=1e-9)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    value, se = theory.jsd(mvn, mvn, n_samples=100, rng=torch.Generator().manual_seed(0), return_se=True)
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
    v = theory.value_at_optimum(p, q, n_samples=1000, rng=torch.Generator().manual_seed(5))
    j = theory.jsd(p, q, n_samples=1000, rng=torch.Generator().manual_seed(5))
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
    value, se = theory.kl(p, q, n_samples=50_000, rng=torch.Generator().manual_seed(2), return_se=True)
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
    value = theory.jsd(Bare(), GaussianMixture([0.0], 1.0), method="mc", n_samples=200, rng=torch.Generator().manual_seed(0))
    assert_close(value, 0.0, atol=1e-6, rtol=0)  # the same density, up to float32 samples


# --- hinge critic and total variation, least-squares discriminator and Pearson chi^2 --------


def tv_by_quad(p_pdf, q_pdf, lo, hi, points=()):
    """TV = 1/2 int |p - q| by scipy.integrate.quad, split at the given points (the crossings)."""
    value, _ = integrate.quad(lambda t: 0.5 * abs(p_pdf(t) - q_pdf(t)), lo, hi, points=points, limit=500, epsabs=1e-13)
    return value


def chi2_gaussians(mu1, s1, mu2, s2):
    """chi^2(N(mu1, s1^2) || N(mu2, s2^2)) in closed form (finite for 2 s2^2 > s1^2)."""
    return s2**2 / (s1 * math.sqrt(2 * s2**2 - s1**2)) * math.exp((mu1 - mu2) ** 2 / (2 * s2**2 - s1**2)) - 1


@pytest.mark.parametrize("mu", [0.2, 1.0, 4.0])
def test_total_variation_of_equal_width_gaussians_in_closed_form(mu):
    # TV(N(0, s^2), N(mu, s^2)) = 2 Phi(mu / (2 s)) - 1
    p, q = GaussianMixture([0.0], 0.7), GaussianMixture([mu], 0.7)
    assert_close(theory.total_variation(p, q), 2 * stats.norm.cdf(mu / 1.4) - 1, rtol=1e-11, atol=1e-13)


def test_total_variation_of_mixtures_against_scipy_quad():
    p_args = ([-1.5, 1.5], [0.5, 0.5], [0.5, 0.5])
    p, q = GaussianMixture(*p_args), GaussianMixture([0.0], 1.0)
    def diff(t):
        return mixture_pdf_1d(t, *p_args) - stats.norm.pdf(t)

    grid = np.linspace(-8, 8, 16_001)  # bracket the crossings of p and q on a grid, then solve
    brackets = np.nonzero(np.sign(diff(grid[:-1])) != np.sign(diff(grid[1:])))[0]
    crossings = [optimize.brentq(diff, grid[i] - 1e-3, grid[i + 1] + 1e-3, xtol=1e-15) for i in brackets]
    assert len(crossings) == 4
    expected = tv_by_quad(lambda t: mixture_pdf_1d(t, *p_args), stats.norm.pdf, -15, 15, crossings)
    assert_close(theory.total_variation(p, q), expected, rtol=0, atol=1e-10)


def test_total_variation_bounds_and_symmetry():
    p = GaussianMixture([-1.0, 2.0], [0.3, 1.0], [0.4, 0.6])
    q = GaussianMixture([0.0, 0.1], [2.0, 0.01])
    assert_close(theory.total_variation(p, q), theory.total_variation(q, p), rtol=1e-12, atol=1e-14)
    assert_close(theory.total_variation(p, p), 0.0, rtol=0, atol=1e-12)
    far = GaussianMixture([0.0, 2.0], 1e-3), GaussianMixture([1.0, 3.0], [1e-3, 2e-3])
    assert_close(theory.total_variation(*far), 1.0, rtol=0, atol=1e-12)  # disjoint supports
    tv, jsd, kl = theory.total_variation(p, q), theory.jsd(p, q), theory.kl(p, q)
    assert 0 < tv < 1 and tv <= math.sqrt(kl / 2)  # Pinsker's inequality
    assert jsd <= tv * LOG2 + 1e-12  # JSD <= TV log 2


def test_total_variation_monte_carlo_2d_within_four_standard_errors():
    p, q = GaussianMixture([[0.0, 0.0]], 1.0), GaussianMixture([[1.0, -1.0]], 1.0)
    expected = 2 * stats.norm.cdf(math.sqrt(2) / 2) - 1  # |mu_p - mu_q| / (2 s) along the line of centres
    value, se = theory.total_variation(p, q, n_samples=40_000, rng=torch.Generator().manual_seed(0), return_se=True)
    assert 0 < se < 5e-3
    assert abs(value - expected) <= 4 * se


def test_optimal_hinge_critic_is_the_sign_of_p_minus_q_and_minimises_the_hinge_loss():
    p_args = ([-1.5, 1.5], [0.5, 0.5], [0.5, 0.5])
    p, q = GaussianMixture(*p_args), GaussianMixture([0.0], 1.0)
    x = np.linspace(-4, 4, 80)  # avoids the crossings at +-1 and +-3, where p = q up to rounding
    pp, qq = mixture_pdf_1d(x, *p_args), stats.norm.pdf(x)
    critic = theory.optimal_hinge_critic(p, q, torch.from_numpy(x))
    assert_close(critic, torch.from_numpy(np.sign(pp - qq)), rtol=0, atol=0)
    # brute force: the pointwise hinge loss p max(0, 1 - t) + q max(0, 1 + t) over a grid of t
    t = np.linspace(-3, 3, 601)[:, None]
    pointwise = pp * np.maximum(0, 1 - t) + qq * np.maximum(0, 1 + t)  # (601, 80)
    assert_close(torch.from_numpy(pointwise.min(0)), torch.from_numpy(pp + qq - np.abs(pp - qq)), rtol=1e-12, atol=1e-15)
    at_critic = pp * np.maximum(0, 1 - critic.numpy()) + qq * np.maximum(0, 1 + critic.numpy())
    assert_close(torch.from_numpy(at_critic), torch.from_numpy(pointwise.min(0)), rtol=1e-12, atol=1e-15)
    assert (theory.optimal_hinge_critic(p, p, torch.from_numpy(x)) == 0).all()  # p = q: 0 lies in [-1, 1]


def test_hinge_loss_at_the_optimal_critic_is_two_minus_twice_tv():
    p, q = GaussianMixture([-0.5], 0.8), GaussianMixture([1.0, 2.5], [0.6, 0.3], [0.7, 0.3])

    def integrand(t):  # p max(0, 1 - f*) + q max(0, 1 + f*), densities from scipy
        pt, qt = stats.norm.pdf(t, -0.5, 0.8), mixture_pdf_1d(t, [1.0, 2.5], [0.6, 0.3], [0.7, 0.3])
        f = theory.optimal_hinge_critic(p, q, torch.tensor([t], dtype=torch.float64)).item()
        return pt * max(0.0, 1 - f) + qt * max(0.0, 1 + f)

    loss, _ = integrate.quad(integrand, -12, 12, limit=500, points=np.linspace(-1, 3, 41))
    assert_close(loss, 2 - 2 * theory.total_variation(p, q), rtol=0, atol=1e-7)


def test_optimal_lsgan_discriminator_against_densities_and_brute_force():
    p_args = ([-1.0, 2.0], [0.5, 1.0], [0.3, 0.7])
    p, q = GaussianMixture(*p_args), GaussianMixture([0.5], 2.0)
    x = np.linspace(-5, 5, 101)
    pp, qq = mixture_pdf_1d(x, *p_args), stats.norm.pdf(x, 0.5, 2.0)
    for a, b in [(0.0, 1.0), (-1.0, 1.0), (0.3, -2.0)]:
        d_star = theory.optimal_lsgan_discriminator(p, q, torch.from_numpy(x), a=a, b=b)
        assert_close(d_star, torch.from_numpy((b * pp + a * qq) / (pp + qq)), rtol=1e-12, atol=1e-14)
        t = np.linspace(-3, 3, 60_001)[:, None]  # brute force: minimise p (t - b)^2 + q (t - a)^2
        best = t[np.argmin(pp * (t - b) ** 2 + qq * (t - a) ** 2, axis=0), 0]
        assert_close(torch.from_numpy(best), d_star, rtol=0, atol=1e-4)
    default = theory.optimal_lsgan_discriminator(p, q, torch.from_numpy(x))
    assert_close(default, theory.optimal_discriminator(p, q, torch.from_numpy(x)), rtol=0, atol=0)


def test_optimal_lsgan_discriminator_is_stable_where_both_densities_underflow():
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.0], 1.0)
    x = torch.tensor([40.0, 1e3, -1e3], dtype=torch.float64)
    d_star = theory.optimal_lsgan_discriminator(p, q, x, a=-1.0, b=1.0)
    assert_close(d_star, -1 + 2 * torch.sigmoid(0.5 - x), rtol=1e-12, atol=0)


@pytest.mark.parametrize("args", [(0.0, 1.0, 1.0, 1.0), (0.5, 0.8, -0.3, 1.3), (1.0, 1.2, 0.0, 1.0), (0.0, 1.0, 0.0, 0.75)])
def test_pearson_chi2_of_gaussians_in_closed_form(args):
    mu1, s1, mu2, s2 = args
    value = theory.pearson_chi2(GaussianMixture([mu1], s1), GaussianMixture([mu2], s2))
    assert_close(value, chi2_gaussians(*args), rtol=1e-10, atol=1e-12)


def test_pearson_chi2_of_mixtures_against_scipy_quad_and_equality():
    p_args, q_args = ([-1.0, 2.0], [0.5, 1.0], [0.3, 0.7]), ([0.0, 1.5], [1.5, 1.0], [0.6, 0.4])
    p, q = GaussianMixture(*p_args), GaussianMixture(*q_args)

    def integrand(t):
        pt, qt = mixture_pdf_1d(t, *p_args), mixture_pdf_1d(t, *q_args)
        return (pt - qt) ** 2 / qt

    expected, _ = integrate.quad(integrand, -20, 20, limit=500, epsabs=1e-13)
    assert_close(theory.pearson_chi2(p, q), expected, rtol=1e-9, atol=0)
    assert_close(theory.pearson_chi2(p, p), 0.0, rtol=0, atol=1e-14)


def test_pearson_chi2_is_infinite_when_q_has_too_light_tails():
    # int p^2 / q diverges for N(0, 1) against N(0, 0.7^2): 2 * 0.49 < 1
    value, err = theory.pearson_chi2(GaussianMixture([0.0], 1.0), GaussianMixture([0.0], 0.7), return_se=True)
    assert value == math.inf and err == math.inf


def test_lsgan_generator_objective_at_the_optimum_is_a_chi2_from_the_mixture():
    # 1/2 E_p (D* - c)^2 + 1/2 E_q (D* - c)^2 with (a, b, c) = (-1, 1, 0)
    #   = 1/2 int (p - q)^2 / (p + q) = chi^2(q || m),  m = (p + q) / 2
    p_args, q_args = ([-1.0], [0.8], [1.0]), ([0.5, 2.0], [1.0, 0.5], [0.6, 0.4])
    p, q = GaussianMixture(*p_args), GaussianMixture(*q_args)
    m = GaussianMixture([-1.0, 0.5, 2.0], [0.8, 1.0, 0.5], [0.5, 0.3, 0.2])

    def objective(t):
        pt, qt = mixture_pdf_1d(t, *p_args), mixture_pdf_1d(t, *q_args)
        d = theory.optimal_lsgan_discriminator(p, q, torch.tensor([t], dtype=torch.float64), a=-1.0, b=1.0).item()
        return 0.5 * (pt + qt) * d**2  # c = 0

    value, _ = integrate.quad(objective, -15, 15, limit=500, epsabs=1e-13)
    direct, _ = integrate.quad(lambda t: 0.5 * (mixture_pdf_1d(t, *p_args) - mixture_pdf_1d(t, *q_args)) ** 2
                               / (mixture_pdf_1d(t, *p_args) + mixture_pdf_1d(t, *q_args)), -15, 15, limit=500, epsabs=1e-13)
    assert_close(value, direct, rtol=1e-9, atol=0)
    assert_close(theory.pearson_chi2(q, m), value, rtol=1e-9, atol=0)
    assert_close(theory.pearson_chi2(p, m), value, rtol=1e-9, atol=0)  # symmetric in p and q


def test_pearson_chi2_monte_carlo_2d_within_four_standard_errors():
    p, q = GaussianMixture([[0.0, 0.0]], 1.0), GaussianMixture([[0.5, 0.0]], 1.0)
    expected = math.expm1(0.25)  # chi^2 of unit Gaussians = exp(|mu_p - mu_q|^2) - 1
    value, se = theory.pearson_chi2(p, q, n_samples=50_000, rng=torch.Generator().manual_seed(0), return_se=True)
    assert 0 < se < 0.01
    assert abs(value - expected) <= 4 * se


def test_new_functions_validate_their_inputs():
    one, two = GaussianMixture([0.0], 1.0), GaussianMixture([[0.0, 0.0]], 1.0)
    for f in (theory.total_variation, theory.pearson_chi2):
        with pytest.raises(TypeError, match="p must have a log_prob"):
            f(object(), one)
        with pytest.raises(TypeError, match="q must have a log_prob"):
            f(one, object())
        with pytest.raises(ValueError, match=r"p\.dim=1 and q\.dim=2"):
            f(one, two)
        with pytest.raises(ValueError, match="method"):
            f(one, one, method="simpson")
    with pytest.raises(TypeError, match="q must have a log_prob"):
        theory.optimal_hinge_critic(one, None, torch.zeros(3))
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="a and b must differ"):
        theory.optimal_lsgan_discriminator(one, one, x, a=1.0, b=1.0)
    for bad in (float("nan"), math.inf, "1", True):
        with pytest.raises(ValueError, match="finite number"):
            theory.optimal_lsgan_discriminator(one, one, x, a=bad)


def test_monte_carlo_accepts_a_generator_on_the_compute_device():
    """The generator decides where samples are drawn: on the device under test (CUDA in the GPU
    check, the CPU here), for gan_lab mixtures and for torch.distributions alike; the global CPU
    stream is left as it was (no hidden reseeding)."""
    from gan_lab import profile

    dev = profile.device()
    p2 = GaussianMixture([[0.0, 0.0]], 1.0)
    q2 = GaussianMixture([[1.0, 0.0]], 1.0)
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    est, se = theory.jsd(p2, q2, n_samples=20_000, rng=torch.Generator(dev).manual_seed(0), return_se=True)
    normal_p = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    normal_q = torch.distributions.MultivariateNormal(torch.tensor([1.0, 0.0]), torch.eye(2))
    est_t, se_t = theory.jsd(normal_p, normal_q, n_samples=20_000, rng=torch.Generator(dev).manual_seed(1),
                             method="mc", return_se=True)
    assert torch.equal(torch.random.get_rng_state(), before)
    # oracle: the 1-D quadrature of the same pair (the JSD of two isotropic Gaussians lives on their axis)
    exact = theory.jsd(GaussianMixture([0.0], 1.0), GaussianMixture([1.0], 1.0))
    assert abs(est - exact) < 4 * se and abs(est_t - exact) < 4 * se_t


@pytest.mark.parametrize("fn", [theory.jsd, theory.value_at_optimum, theory.kl, theory.total_variation,
                                theory.pearson_chi2], ids=lambda f: f.__name__)
def test_monte_carlo_divergences_still_accept_the_old_keyword_generator(fn):
    p, q = GaussianMixture([[0.0, 0.0]], 1.0), GaussianMixture([[0.5, 0.0]], 1.2)
    new = fn(p, q, n_samples=200, rng=torch.Generator().manual_seed(9))
    assert fn(p, q, n_samples=200, generator=torch.Generator().manual_seed(9)) == new
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        fn(p, q, n_samples=200, rng=torch.Generator(), generator=torch.Generator())


# --- value_gap: V(D*, G) - V(D, G) on paired samples ----------------------------------------


def value_on_grid_1d(logit, p, q):
    """V(D, G) for D = sigmoid(logit(x)) by the trapezoid rule on a wide grid: the oracle."""
    x = torch.linspace(-15.0, 15.0, 300_001, dtype=torch.float64)
    lp, lq, ell = p.log_prob(x), q.log_prob(x), logit(x)
    f = lp.exp() * torch.nn.functional.logsigmoid(ell) + lq.exp() * torch.nn.functional.logsigmoid(-ell)
    return float(torch.trapezoid(f, x))


def test_value_gap_is_zero_for_the_optimal_discriminator_and_gain_is_twice_jsd():
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.5], 0.7)
    optimal = lambda x: theory.optimal_discriminator_logit(p, q, x)[None]  # (1, n)
    gap, se, gain = theory.value_gap(optimal, p, q, n_samples=50_000, rng=torch.Generator().manual_seed(0))
    assert gap.shape == se.shape == (1,)
    assert float(gap.abs()) < 1e-12 and float(se) < 1e-12  # paired: identical logits, no noise
    # the gain V(D*) - V(1/2) estimates 2 JSD from as many draws as jsd's Monte Carlo estimate,
    # so its standard error is about 2 se_j: four of those
    j = theory.jsd(p, q)
    _, se_j = theory.jsd(p, q, n_samples=50_000, method="mc", rng=torch.Generator().manual_seed(1), return_se=True)
    assert abs(gain - 2 * j) < 8 * se_j


@pytest.mark.parametrize("shift", [0.5, -1.0, 2.0])
def test_value_gap_of_shifted_logits_against_quadrature(shift):
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.5], 0.7)
    star = lambda x: theory.optimal_discriminator_logit(p, q, x)
    both = lambda x: torch.stack([star(x), 0.5 * star(x) + shift])  # (2, n): two discriminators
    gap, se, _ = theory.value_gap(both, p, q, n_samples=200_000, rng=torch.Generator().manual_seed(2))
    v_star = theory.value_at_optimum(p, q)
    exact = v_star - value_on_grid_1d(lambda x: 0.5 * star(x) + shift, p, q)
    assert exact > 0 and float(gap[0]) == 0.0
    assert abs(float(gap[1]) - exact) < 4 * float(se[1])  # two-sided, from the paired standard error
    assert float(se[1]) < 0.05 * exact  # and the estimate is informative


def test_value_gap_of_a_coin_flip_is_the_gain_and_never_negative_beyond_noise_in_2d():
    p = GaussianMixture([[1.0, 0.0], [-1.0, 0.0]], std=0.3)
    q = GaussianMixture([[0.0, 1.0]], std=0.5)
    coin = lambda x: torch.zeros(3, x.shape[0], dtype=torch.float64)  # three identical coin flips
    gap, se, gain = theory.value_gap(coin, p, q, n_samples=20_000, rng=torch.Generator().manual_seed(3))
    assert_close(gap, torch.full((3,), gain, dtype=torch.float64))
    assert gain > 0 and (se > 0).all()


def test_value_gap_bad_inputs_name_the_parameter():
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.0], 1.0)
    with pytest.raises(TypeError, match="logits"):
        theory.value_gap(None, p, q)
    with pytest.raises(ValueError, match="n_samples"):
        theory.value_gap(lambda x: x[:, 0], p, q, n_samples=1)
    with pytest.raises(ValueError, match="logits must return"):
        theory.value_gap(lambda x: x[:5, 0], p, q, n_samples=10)
    with pytest.raises(ValueError, match="same dimension"):
        theory.value_gap(lambda x: x[:, 0], p, GaussianMixture([[0.0, 0.0]], 1.0))
