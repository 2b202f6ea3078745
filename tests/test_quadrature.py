"""gan_lab.quadrature: the integrator against closed forms, its breakpoints, and the Monte Carlo branch."""

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab import quadrature
from gan_lab.distributions import GaussianMixture


def test_gauss_legendre_integrates_gaussian_moments_over_the_real_line():
    normal = torch.distributions.Normal(torch.tensor(0.5, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))

    def integrand(x):  # the density and its first two moments, one column each: (N, 3)
        p = normal.log_prob(x).exp()
        return torch.stack([p, x * p, x**2 * p], -1)

    res, err = quadrature.gauss_legendre(integrand, np.array([-1.5, 0.5, 2.5]), 2.0)
    assert_close(torch.from_numpy(res), torch.tensor([1.0, 0.5, 4.25], dtype=torch.float64), rtol=0, atol=1e-12)
    assert 0 <= err < 1e-10


def test_breakpoints_cover_every_component():
    p = GaussianMixture([-3.0, 5.0], [0.1, 2.0])
    edges, scale = quadrature.breakpoints("p", p)
    assert scale == 2.0 and len(edges) == 2 * 2 * len(quadrature.OFFSETS)
    for centre, s in ((-3.0, 0.1), (5.0, 2.0)):
        for k in quadrature.OFFSETS:
            assert np.isclose(edges, centre + s * k).any() and np.isclose(edges, centre - s * k).any()
    with pytest.raises(TypeError, match="method='mc'"):
        quadrature.breakpoints("p", object())


def test_expectation_1d_normalises_by_the_density_on_the_same_nodes():
    p, q = GaussianMixture([0.0], 1.0), GaussianMixture([1.0], 0.5)
    # E_p[log p - log q] = KL(N(0, 1) || N(1, 0.25)) in closed form
    value, err = quadrature.expectation_1d(p, q, lambda lp, lq: lp - lq, None)
    exact = math.log(0.5) + (1 + 1) / (2 * 0.25) - 0.5
    assert_close(value, exact, rtol=0, atol=1e-10)
    assert err < 1e-9
    one, _ = quadrature.expectation_1d(p, q, lambda lp, lq: torch.ones_like(lp), lambda lp, lq: torch.ones_like(lq))
    assert_close(one, 2.0, rtol=0, atol=1e-14)  # E_p 1 + E_q 1


def test_expectation_chooses_quadrature_in_1d_and_monte_carlo_otherwise():
    one, two = GaussianMixture([0.0], 1.0), GaussianMixture([[0.0, 0.0]], 1.0)
    f = lambda lp, lq: lp  # noqa: E731  E_p log p = -1/2 log(2 pi e) per dimension
    value, err = quadrature.expectation(one, one, f, None, "auto", 100, None)
    assert_close(value, -0.5 * math.log(2 * math.pi * math.e), rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(0)
    value, se = quadrature.expectation(two, two, f, None, "auto", 20_000, g)
    assert abs(value + math.log(2 * math.pi * math.e)) < 4 * se
    with pytest.raises(ValueError, match="method"):
        quadrature.expectation(one, one, f, None, "simpson", 100, None)
    with pytest.raises(ValueError, match="one-dimensional"):
        quadrature.expectation(two, two, f, None, "quad", 100, None)
    with pytest.raises(ValueError, match="n_samples"):
        quadrature.expectation(two, two, f, None, "mc", 1, None)


def test_check_pair_and_sample():
    one, two = GaussianMixture([0.0], 1.0), GaussianMixture([[0.0, 0.0]], 1.0)
    assert quadrature.check_pair(two, two) == 2
    with pytest.raises(ValueError, match=r"p\.dim=1 and q\.dim=2"):
        quadrature.check_pair(one, two)
    with pytest.raises(TypeError, match="q must have a log_prob"):
        quadrature.check_pair(one, object())
    normal = torch.distributions.Normal(0.0, 1.0)
    assert quadrature.dimension("p", normal) == 1
    state = torch.random.get_rng_state()
    a = quadrature.sample(normal, 5, torch.Generator().manual_seed(3))
    b = quadrature.sample(normal, 5, torch.Generator().manual_seed(3))
    assert a.dtype == torch.float64 and torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left as it was


def test_sample_still_accepts_the_old_keyword_generator():
    p = GaussianMixture([[0.0, 0.0]], 1.0)
    new = quadrature.sample(p, 5, rng=torch.Generator().manual_seed(1))
    assert torch.equal(quadrature.sample(p, 5, generator=torch.Generator().manual_seed(1)), new)
    assert torch.equal(quadrature.sample(p, 5, torch.Generator().manual_seed(1)), new)
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        quadrature.sample(p, 5, torch.Generator(), generator=torch.Generator())
