"""Dirac-GAN dynamics against closed forms, finite differences and quadrature."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate

from gan_lab import dynamics as dy

A = 0.5  # f'(0)


def _sorted(lam):
    lam = np.asarray(lam, dtype=complex)
    return lam[np.lexsort((lam.real, lam.imag))]


def test_f_and_derivatives_against_finite_differences():
    t = np.linspace(-30, 30, 121)
    assert_allclose(dy.f(t), -np.log1p(np.exp(-t)), rtol=1e-12, atol=1e-12)
    e = 1e-5
    assert_allclose(dy.f_prime(t), (dy.f(t + e) - dy.f(t - e)) / (2 * e), rtol=1e-6, atol=1e-9)
    assert_allclose(dy.f_second(t), (dy.f_prime(t + e) - dy.f_prime(t - e)) / (2 * e), rtol=1e-6, atol=1e-9)
    assert dy.f_prime(0.0) == 0.5 and dy.f_second(0.0) == -0.25


def test_gan_field_is_gradient_descent_ascent_on_L():
    """v = (-dL/dtheta, dL/dpsi) for L = f(psi theta) + f(0), by finite differences."""
    rng = np.random.default_rng(0)
    theta, psi = rng.normal(size=20), rng.normal(size=20)
    loss = lambda th, ps: dy.f(ps * th) + dy.f(0.0)  # noqa: E731
    e = 1e-6
    d_theta = (loss(theta + e, psi) - loss(theta - e, psi)) / (2 * e)
    d_psi = (loss(theta, psi + e) - loss(theta, psi - e)) / (2 * e)
    v_theta, v_psi = dy.vector_field("gan", theta, psi)
    assert_allclose(v_theta, -d_theta, atol=1e-8)
    assert_allclose(v_psi, d_psi, atol=1e-8)
    # non-saturating: the generator ascends f(-psi theta)
    ns_theta = (dy.f(-psi * (theta + e)) - dy.f(-psi * (theta - e))) / (2 * e)
    assert_allclose(dy.vector_field("nsgan", theta, psi)[0], ns_theta, atol=1e-8)


def test_consensus_gradient_against_finite_differences():
    rng = np.random.default_rng(1)
    theta, psi = rng.normal(size=10), rng.normal(size=10)
    half_sq = lambda th, ps: 0.5 * sum(v**2 for v in dy.vector_field("gan", th, ps))  # noqa: E731
    e = 1e-6
    g_theta = (half_sq(theta + e, psi) - half_sq(theta - e, psi)) / (2 * e)
    g_psi = (half_sq(theta, psi + e) - half_sq(theta, psi - e)) / (2 * e)
    assert_allclose(np.stack(dy.consensus_gradient(theta, psi)), np.stack([g_theta, g_psi]), atol=1e-8)


def test_instance_noise_field_against_scipy_quadrature():
    sigma, theta, psi = 0.8, 0.7, -1.3
    pdf = lambda e: math.exp(-0.5 * (e / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
    fp = lambda t: 1 / (1 + math.exp(t))  # noqa: E731
    ev = lambda g: integrate.quad(lambda e: g(e) * pdf(e), -12 * sigma, 12 * sigma)[0]  # noqa: E731
    v_theta = ev(lambda e: -psi * fp(psi * (theta + e)))
    v_psi = ev(lambda e: (theta + e) * fp(psi * (theta + e)) - e * fp(-psi * e))
    assert_allclose(dy.vector_field("instance_noise", theta, psi, sigma=sigma), (v_theta, v_psi), rtol=1e-9)
    # sigma = 0 is the plain GAN
    assert_allclose(dy.vector_field("instance_noise", theta, psi, sigma=0.0), dy.vector_field("gan", theta, psi))


@pytest.mark.parametrize("method,params", [
    ("gan", {}), ("nsgan", {}), ("wgan", {}), ("wgan_gp", {"gamma": 0.7, "g0": 0.0}),
    ("instance_noise", {"sigma": 0.9}), ("gradient_penalty", {"gamma": 0.4}), ("consensus", {"gamma": 2.0}),
])
def test_jacobian_matches_finite_differences(method, params):
    assert_allclose(dy.numerical_jacobian(method, **params), dy.jacobian(method, **params), atol=1e-7)
    v = dy.vector_field(method, 0.0, 0.0, **params)  # (0, 0) is an equilibrium
    assert_allclose(np.array(v, dtype=float), [0.0, 0.0], atol=1e-12)


def test_gan_eigenvalues_are_imaginary():
    assert_allclose(dy.eigenvalues("gan"), [-0.5j, 0.5j], atol=1e-12)
    assert_allclose(dy.eigenvalues("nsgan"), [-0.5j, 0.5j], atol=1e-12)
    assert_allclose(dy.eigenvalues("wgan"), [-1j, 1j], atol=1e-12)


@pytest.mark.parametrize("h", [0.01, 0.1, 0.2, 0.5, 1.0, 3.0])
def test_simultaneous_update_spirals_out(h):
    lam = np.linalg.eigvals(dy.update_matrix("gan", h=h))
    assert_allclose(_sorted(lam), [1 - 1j * h * A, 1 + 1j * h * A], atol=1e-12)
    assert np.all(np.abs(lam) > 1)
    assert_allclose(np.abs(lam), math.sqrt(1 + h**2 * A**2), rtol=1e-12)


@pytest.mark.parametrize("n_g,n_d", [(1, 1), (1, 5), (3, 2), (4, 4)])
@pytest.mark.parametrize("h", [0.05, 0.2, 0.6, 1.0, 2.5])
def test_alternating_update_eigenvalues(n_g, n_d, h):
    alpha = math.sqrt(n_g * n_d) * h * A
    lam = np.linalg.eigvals(dy.update_matrix("gan", h=h, update="alternating", n_g=n_g, n_d=n_d))
    # closed form: lambda = 1 - alpha^2/2 +- sqrt((1 - alpha^2/2)^2 - 1)
    c = 1 - alpha**2 / 2
    assert_allclose(_sorted(lam), _sorted([c + np.sqrt(complex(c**2 - 1)), c - np.sqrt(complex(c**2 - 1))]), atol=1e-6)
    if alpha <= 2:  # at alpha = 2 the eigenvalue -1 is double: eigvals is accurate to ~sqrt(eps) there
        assert_allclose(np.abs(lam), [1.0, 1.0], atol=1e-6)
    else:
        assert np.abs(lam).max() > 1 + 1e-3


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.99, 1.01, 2.0, 5.0])
def test_gradient_penalty_eigenvalues(gamma):
    disc = gamma**2 / 4 - A**2
    expected = [-gamma / 2 + np.sqrt(complex(disc)), -gamma / 2 - np.sqrt(complex(disc))]
    lam = dy.eigenvalues("gradient_penalty", gamma=gamma)
    assert_allclose(lam, _sorted(expected), atol=1e-9)
    assert np.all(lam.real < 0)
    if gamma < 1:
        assert np.all(np.abs(lam.imag) > 0)
    else:
        assert_allclose(lam.imag, [0.0, 0.0], atol=1e-12)


def test_instance_noise_and_consensus_eigenvalues():
    sigma, gamma = 0.7, 0.3
    b = -0.25  # f''(0)
    disc = complex((b * sigma**2) ** 2 - A**2)
    assert_allclose(dy.eigenvalues("instance_noise", sigma=sigma),
                    _sorted([b * sigma**2 + np.sqrt(disc), b * sigma**2 - np.sqrt(disc)]), atol=1e-9)
    assert_allclose(dy.eigenvalues("consensus", gamma=gamma), [-gamma * A**2 - 0.5j, -gamma * A**2 + 0.5j], atol=1e-9)


def test_update_matrix_is_the_jacobian_of_one_iteration():
    """update_matrix against finite differences of simulate(steps=1) around (0, 0)."""
    e = 1e-6
    for method, kw in [("gan", {}), ("gradient_penalty", {"gamma": 0.5}), ("consensus", {"gamma": 1.0})]:
        for upd, n_g, n_d in [("simultaneous", 1, 1), ("alternating", 2, 3)]:
            step = lambda th, ps: dy.simulate(method, 1, 0.3, th, ps, upd, n_g, n_d, **kw)[1]  # noqa: E731
            fd = np.stack([(step(e, 0.0) - step(-e, 0.0)) / (2 * e), (step(0.0, e) - step(0.0, -e)) / (2 * e)], 1)
            assert_allclose(fd, dy.update_matrix(method, 0.3, upd, n_g, n_d, **kw), atol=1e-7)


def test_trajectories():
    assert dy.simulate("gan").shape == (501, 2)
    assert dy.classify(dy.simulate("gan")) == "diverging"
    alt = dy.simulate("gan", update="alternating")
    assert dy.classify(alt) == "cycling"
    r = np.hypot(alt[:, 0], alt[:, 1])
    assert r.max() < 1.05 * r[0] and r[-100:].min() > 0.9 * r[0]  # bounded, and not approaching 0
    for method in ("gradient_penalty", "instance_noise", "consensus"):
        for update in ("simultaneous", "alternating"):
            assert dy.classify(dy.simulate(method, update=update)) == "converging", (method, update)
    for update in ("simultaneous", "alternating"):
        path = dy.simulate("wgan", update=update, clip=0.3)
        assert np.abs(path[:, 1]).max() <= 0.3 and dy.classify(path) != "converging"
        assert dy.classify(dy.simulate("wgan_gp", update=update)) != "converging"


def test_classify_on_synthetic_paths():
    t = np.arange(200)
    circle = np.stack([np.cos(0.1 * t), np.sin(0.1 * t)], 1)
    assert dy.classify(circle) == "cycling"
    assert dy.classify(circle * 1.02 ** t[:, None]) == "diverging"
    assert dy.classify(circle * 0.95 ** t[:, None]) == "converging"
    assert dy.classify(np.vstack([circle[:10], np.full((5, 2), np.inf)])) == "diverging"


def test_bad_input():
    with pytest.raises(ValueError, match="method"):
        dy.simulate("lsgan")
    with pytest.raises(ValueError, match="update"):
        dy.simulate("gan", update="sequential")
    with pytest.raises(ValueError, match="unknown parameter"):
        dy.simulate("gan", gamma=1.0)
    with pytest.raises(ValueError, match="gamma"):
        dy.vector_field("gradient_penalty", 0.0, 0.0, gamma=-1.0)
    with pytest.raises(ValueError, match="clip"):
        dy.simulate("wgan", clip=0.0)
    with pytest.raises(TypeError, match="sigma"):
        dy.simulate("instance_noise", sigma="big")
    with pytest.raises(ValueError, match="steps"):
        dy.simulate("gan", steps=0)
    with pytest.raises(TypeError, match="steps"):
        dy.simulate("gan", steps=2.5)
    with pytest.raises(ValueError, match="h"):
        dy.simulate("gan", h=-0.1)
    with pytest.raises(ValueError, match="theta0"):
        dy.simulate("gan", theta0=float("nan"))
    with pytest.raises(ValueError, match="n_g"):
        dy.simulate("gan", update="alternating", n_g=0)
    with pytest.raises(ValueError, match="n_g and n_d"):
        dy.simulate("gan", n_d=5)
    with pytest.raises(ValueError, match="discontinuous"):
        dy.jacobian("wgan_gp", g0=0.3)
    with pytest.raises(ValueError, match="trajectory"):
        dy.classify(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="equilibrium"):
        dy.classify(np.zeros((10, 2)))


@pytest.mark.parametrize("n_d", [1, 2, 5])
def test_more_discriminator_steps_scale_the_damping(n_d):
    """det M = (1 - h gamma)^n_d: each R1 discriminator step contracts areas by
    1 - h gamma, each generator step keeps them; with complex eigenvalues both
    have modulus (1 - h gamma)^(n_d / 2). Without the penalty det M = 1."""
    h, gamma = 0.2, 0.3
    m = dy.update_matrix("gradient_penalty", h, "alternating", 1, n_d, gamma=gamma)
    lam = np.linalg.eigvals(m)
    assert abs(lam[0].imag) > 0
    assert_allclose(np.abs(lam), (1 - h * gamma) ** (n_d / 2), rtol=1e-12)
    plain = dy.update_matrix("gan", h, "alternating", 1, n_d)
    assert_allclose(np.linalg.det(plain), 1.0, rtol=1e-12)


def test_alternating_at_alpha_2_is_a_jordan_block():
    """At alpha = h f'(0) = 2 (h = 4), M + I is nilpotent but not zero, so the
    iterates of the linearised map grow linearly: M^k = (-1)^k (I - k N)."""
    m = dy.update_matrix("gan", 4.0, "alternating")
    n = m + np.eye(2)
    assert_allclose(n @ n, 0.0, atol=1e-12)
    assert np.abs(n).max() > 1
    k = 50
    assert_allclose(np.linalg.matrix_power(m, k), (-1) ** k * (np.eye(2) - k * n), atol=1e-9)


@pytest.mark.parametrize("method,update,kw", [
    ("gradient_penalty", "simultaneous", {}), ("gradient_penalty", "alternating", {"n_d": 3}),
    ("instance_noise", "alternating", {}), ("consensus", "simultaneous", {}), ("gan", "alternating", {}),
])
def test_rotation_coordinates(method, update, kw):
    """C M C^{-1} = rho R with R orthogonal (det 1), so s(M x) = rho s(x); rho is the
    eigenvalues' modulus, and the Euclidean norm ratio stays within cond(C) of the s ratio."""
    m = dy.update_matrix(method, 0.2, update, **kw)
    rho, c = dy.rotation_coordinates(m)
    assert_allclose(rho, np.abs(np.linalg.eigvals(m)), rtol=1e-12)
    r = c @ m @ np.linalg.inv(c) / rho
    assert_allclose(r.T @ r, np.eye(2), atol=1e-12)
    assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    x = np.random.default_rng(2).normal(size=(50, 2))
    s = lambda y: np.linalg.norm(y @ c.T, axis=1)  # noqa: E731
    assert_allclose(s(x @ m.T), rho * s(x), rtol=1e-12)
    y = x @ np.linalg.matrix_power(m, 40).T
    q = (np.linalg.norm(y, axis=1) / np.linalg.norm(x, axis=1)) / (s(y) / s(x))
    kappa = np.linalg.cond(c)
    assert np.all((1 / kappa - 1e-12 <= q) & (q <= kappa + 1e-12))


def test_rotation_coordinates_bad_input():
    with pytest.raises(ValueError, match="complex-conjugate"):
        dy.rotation_coordinates(np.diag([0.5, 0.9]))
    with pytest.raises(ValueError, match="complex-conjugate"):
        dy.rotation_coordinates(dy.update_matrix("gradient_penalty", 0.2, gamma=2.0))
    for bad in (np.eye(3), [[1, np.nan], [0, 1]], np.eye(2) * 1j, "M"):
        with pytest.raises(ValueError, match="matrix"):
            dy.rotation_coordinates(bad)
