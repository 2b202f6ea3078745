"""gan_lab.kl_fits against independent oracles: closed forms, a fine grid, SciPy's norm."""

import math

import numpy as np
import pytest
from scipy import stats

from gan_lab import data, kl_fits

MIXTURES = [
    data.GaussianMixture([-1.5, 1.5], std=0.5),
    data.GaussianMixture([-2.0, 0.5, 3.0], std=[0.3, 1.0, 0.6], weights=[0.2, 0.5, 0.3]),
    data.GaussianMixture([1.0, 4.0], std=[1.0, 0.4], weights=[0.8, 0.2]),
]


def grid_kl(mixture, mean, std, direction):
    """The divergence on a fine uniform grid (trapezoid rule), from SciPy's log-densities."""
    m = mixture.means[:, 0].numpy()
    s, w = mixture.stds.numpy(), mixture.weights.numpy()
    lo = min((m - 15 * s).min(), mean - 15 * std)
    hi = max((m + 15 * s).max(), mean + 15 * std)
    x = np.linspace(lo, hi, 100_001)
    log_p = np.logaddexp.reduce(stats.norm.logpdf(x[:, None], m, s) + np.log(w), axis=1)
    log_q = stats.norm.logpdf(x, mean, std)
    if direction == "forward":
        f = np.exp(log_p) * (log_p - log_q)
    else:
        f = np.exp(log_q) * (log_q - log_p)
    return np.trapezoid(f, x)


@pytest.mark.parametrize("direction", kl_fits.DIRECTIONS)
@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (1.2, 0.4), (-3.0, 2.5)])
def test_kl_against_a_fine_grid(direction, mean, std):
    for mixture in MIXTURES:
        got = kl_fits.kl_to_gaussian(mixture, mean, std, direction)
        assert got == pytest.approx(grid_kl(mixture, mean, std, direction), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("direction", kl_fits.DIRECTIONS)
def test_kl_is_zero_only_for_the_same_gaussian(direction):
    one = data.GaussianMixture([0.7], std=1.3)
    assert kl_fits.kl_to_gaussian(one, 0.7, 1.3, direction) == pytest.approx(0.0, abs=1e-9)
    # closed form KL(N(m1, s1^2) || N(m2, s2^2)) as a control that must be > 0
    s1, s2, dm = (1.3, 0.9, 0.5) if direction == "forward" else (0.9, 1.3, 0.5)
    expected = math.log(s2 / s1) + (s1**2 + dm**2) / (2 * s2**2) - 0.5
    got = kl_fits.kl_to_gaussian(one, 0.7 + dm, 0.9, direction)
    assert got == pytest.approx(expected, rel=1e-8)


def moments_oracle(mixture):
    """Mean and std of the mixture by the law of total variance (within + between)."""
    m = mixture.means[:, 0].numpy()
    s, w = mixture.stds.numpy(), mixture.weights.numpy()
    mean = np.dot(w, m)
    var = np.dot(w, s**2) + np.dot(w, (m - mean) ** 2)  # within + between
    return mean, math.sqrt(var)


@pytest.mark.parametrize("mixture", MIXTURES)
def test_forward_fit_is_moment_matching(mixture):
    mean, std = moments_oracle(mixture)
    assert kl_fits.mixture_moments(mixture) == pytest.approx((mean, std), rel=1e-12, abs=1e-12)
    fit = kl_fits.fit_gaussian(mixture, "forward")
    assert fit.direction == "forward"
    assert (fit.mean, fit.std) == pytest.approx((mean, std), abs=2e-5)
    assert fit.kl == pytest.approx(kl_fits.kl_to_gaussian(mixture, mean, std), abs=1e-9)


def test_reverse_fit_picks_one_well_separated_mode():
    # q = the heavier component: on its support p ~= w q, so KL(q || p) = -log w
    mixture = data.GaussianMixture([-10.0, 10.0], std=1.0, weights=[0.3, 0.7])
    fit = kl_fits.fit_gaussian(mixture, "reverse")
    assert (fit.mean, fit.std) == pytest.approx((10.0, 1.0), abs=1e-4)
    assert fit.kl == pytest.approx(-math.log(0.7), abs=1e-6)
    forward = kl_fits.fit_gaussian(mixture, "forward")
    assert forward.std > 9  # the control: forward KL spans both modes


def test_reverse_fit_of_a_symmetric_mixture_is_one_of_two_mirror_minima():
    p = MIXTURES[0]
    fit = kl_fits.fit_gaussian(p, "reverse")
    assert abs(abs(fit.mean) - 1.5) < 0.05 and abs(fit.std - 0.5) < 0.05
    mirror = kl_fits.fit_gaussian(data.GaussianMixture([1.5, -1.5], std=0.5), "reverse")
    assert (mirror.mean, mirror.std) == pytest.approx((-fit.mean, fit.std), abs=1e-4)
    # a local minimum: no nearby Gaussian does better, and the broad fit is worse
    for dm, ds in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert kl_fits.kl_to_gaussian(p, fit.mean + dm, fit.std + ds, "reverse") > fit.kl
    wide = kl_fits.mixture_moments(p)
    assert kl_fits.kl_to_gaussian(p, *wide, direction="reverse") > fit.kl


def test_fit_pdf_is_the_gaussian_density():
    fit = kl_fits.GaussianFit("forward", 0.3, 1.7, 0.0)
    x = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(fit.pdf(x), stats.norm.pdf(x, 0.3, 1.7), rtol=1e-12)


def test_bad_input():
    p = MIXTURES[0]
    with pytest.raises(ValueError, match="direction"):
        kl_fits.fit_gaussian(p, "sideways")
    with pytest.raises(ValueError, match="std"):
        kl_fits.kl_to_gaussian(p, 0.0, 0.0)
    with pytest.raises(ValueError, match="mean"):
        kl_fits.kl_to_gaussian(p, float("nan"), 1.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        kl_fits.fit_gaussian(data.GaussianMixture([[0.0, 0.0]], std=1.0))
    with pytest.raises(TypeError, match="mixture"):
        kl_fits.mixture_moments([0.0, 1.0])
