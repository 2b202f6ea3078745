"""Latent-space tools: lerp and slerp against closed forms, truncated codes against scipy's truncnorm."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from gan_lab import latent


def test_lerp_endpoints_midpoint_and_shapes():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    t = torch.tensor([0.0, 0.25, 1.0])
    path = latent.lerp(z0, z1, t)
    assert path.shape == (3, 5, 3)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[2], z1)
    torch.testing.assert_close(path[1], 0.75 * z0 + 0.25 * z1)
    torch.testing.assert_close(latent.lerp(z0, z1, 0.5), (z0 + z1) / 2)
    assert latent.lerp(z0[0], z1, 0.5).shape == (5, 3)  # broadcasting endpoints


def test_lerp_midpoint_norm_of_independent_gaussians_concentrates_at_sqrt_half_d():
    # z0, z1 ~ N(0, I_d) independent: the midpoint is N(0, I_d / 2), so its norm is a scaled chi_d
    d, n = 256, 4000
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    ends = torch.linalg.vector_norm(z0, dim=1)
    mid = torch.linalg.vector_norm(latent.lerp(z0, z1, 0.5), dim=1)
    chi = scipy.stats.chi(d)
    # means within 5 standard errors of the chi distribution's exact mean; spread as predicted
    torch.testing.assert_close(ends.mean().item(), chi.mean(), rtol=0, atol=5 * chi.std() / math.sqrt(n))
    torch.testing.assert_close(mid.mean().item(), chi.mean() / math.sqrt(2), rtol=0,
                               atol=5 * chi.std() / math.sqrt(2 * n))
    torch.testing.assert_close(ends.std().item(), chi.std(), rtol=0.1, atol=0)
    # concentration: the two shells do not overlap
    assert mid.max() < ends.min()
    torch.testing.assert_close(mid.mean().item() / math.sqrt(d / 2), 1.0, rtol=0.01, atol=0)


def test_slerp_endpoints_and_constant_norm_for_equal_norm_endpoints():
    g = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(10, 7, generator=g, dtype=torch.float64), torch.randn(10, 7, generator=g, dtype=torch.float64)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)  # equal norms, pair by pair
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    path = latent.slerp(z0, z1, t)  # (9, 10, 7)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=-1), z0.norm(dim=1).expand(9, 10))


def test_slerp_matches_the_closed_form_angle():
    # in a plane: the angle from z0 grows linearly, t * omega, and the path is a rotation
    omega = 2.0
    z0 = torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)
    z1 = 3.0 * torch.tensor([math.cos(omega), math.sin(omega), 0.0], dtype=torch.float64)
    t = torch.linspace(-0.5, 1.5, 11, dtype=torch.float64)  # extrapolation too
    path = latent.slerp(z0, z1, t)
    expected = 3.0 * torch.stack([torch.cos(t * omega), torch.sin(t * omega), torch.zeros_like(t)], dim=1)
    torch.testing.assert_close(path, expected)
    # a random equal-norm pair in 50-d: the angle between slerp(t) and z0 is t * omega (arccos oracle)
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    b = b * a.norm() / b.norm()
    om = math.acos(float(a @ b / (a.norm() * b.norm())))
    for s in (0.1, 0.37, 0.8):
        p = latent.slerp(a, b, s)
        torch.testing.assert_close(math.acos(float(p @ a / (p.norm() * a.norm()))), s * om, rtol=1e-9, atol=1e-9)


def test_slerp_unequal_norms_orthogonal_closed_form():
    # omega = pi / 2: slerp(t) = cos(t pi / 2) z0 + sin(t pi / 2) z1
    z0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    z1 = torch.tensor([0.0, 5.0], dtype=torch.float64)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    expected = torch.cos(t * math.pi / 2)[:, None] * z0 + torch.sin(t * math.pi / 2)[:, None] * z1
    torch.testing.assert_close(latent.slerp(z0, z1, t), expected)


def test_slerp_near_parallel_and_parallel_vectors():
    z0 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    # exactly parallel: the limit of the formula is the straight line
    torch.testing.assert_close(latent.slerp(z0, 2 * z0, t), latent.lerp(z0, 2 * z0, t))
    torch.testing.assert_close(latent.slerp(z0, z0, 0.3), z0)
    # nearly parallel, just above eps: finite and close to the line, in float32 too
    for dtype in (torch.float64, torch.float32):
        a = z0.to(dtype)
        b = a + torch.tensor([1e-4, -1e-4, 0.0], dtype=dtype)
        path = latent.slerp(a, b, t.to(dtype))
        assert torch.isfinite(path).all()
        torch.testing.assert_close(path, latent.lerp(a, b, t.to(dtype)), rtol=1e-5, atol=1e-5)
    # antiparallel: documented fallback to the line through the origin
    torch.testing.assert_close(latent.slerp(z0, -z0, 0.5), torch.zeros(3, dtype=torch.float64))


def test_interpolate_includes_both_endpoints():
    z0, z1 = torch.randn(4, 6), torch.randn(4, 6)
    for method in ("lerp", "slerp"):
        path = latent.interpolate(z0, z1, 5, method)
        assert path.shape == (5, 4, 6)
        torch.testing.assert_close(path[0], z0)
        torch.testing.assert_close(path[-1], z1)


def test_truncated_normal_bounds_and_marginal_matches_scipy_truncnorm():
    g = torch.Generator().manual_seed(4)
    for threshold in (0.5, 1.0, 2.0):
        z = latent.truncated_normal(400, 10, threshold, rng=g)
        assert z.shape == (400, 10) and z.dtype == torch.float32
        assert z.abs().max() <= threshold
        ks = scipy.stats.kstest(z.flatten().numpy(), scipy.stats.truncnorm(-threshold, threshold).cdf)
        assert ks.pvalue > 1e-3, (threshold, ks)
        if threshold <= 1.0:  # and a plain normal is clearly rejected: the test has power
            assert scipy.stats.kstest(z.flatten().numpy(), "norm").pvalue < 1e-6
    # the variance of the truncated normal, closed form 1 - 2 c phi(c) / (2 Phi(c) - 1)
    c = 1.0
    z = latent.truncated_normal(20000, 5, c, rng=g).double()
    var = 1 - 2 * c * scipy.stats.norm.pdf(c) / (2 * scipy.stats.norm.cdf(c) - 1)
    torch.testing.assert_close(z.var().item(), var, rtol=0.02, atol=0)


def test_truncated_normal_is_reproducible_and_infinite_threshold_is_the_prior():
    a = latent.truncated_normal(50, 8, 0.7, rng=torch.Generator().manual_seed(5))
    b = latent.truncated_normal(50, 8, 0.7, rng=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    z = latent.truncated_normal(50, 8, math.inf, rng=torch.Generator().manual_seed(6))
    torch.testing.assert_close(z, torch.randn(50, 8, generator=torch.Generator().manual_seed(6)), rtol=0, atol=0)


def test_expected_norm_matches_scipy_chi():
    for d in (1, 2, 64, 1000, 100_000):
        torch.testing.assert_close(latent.expected_norm(d), scipy.stats.chi(d).mean(), rtol=1e-10, atol=0)
    torch.testing.assert_close(latent.expected_norm(64, scale=math.sqrt(0.5)),
                               scipy.stats.chi(64).mean() * math.sqrt(0.5), rtol=1e-12, atol=0)


class FixedLogits(torch.nn.Module):
    """A stand-in classifier whose logits are a fixed linear map of the mean pixel."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.linspace(-2, 2, 10))

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None] * self.scale * 5  # (N, 10)


def test_classifier_confidence_is_the_max_softmax_probability():
    net = FixedLogits()
    x = torch.rand(7, 1, 28, 28) * 2 - 1
    got = latent.classifier_confidence(x, net, batch_size=3)
    logits = (x.mean(dim=(1, 2, 3))[:, None] * torch.linspace(-2, 2, 10) * 5).double().numpy()
    expected = scipy.special.softmax(logits, axis=1).max(axis=1)
    torch.testing.assert_close(got.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-6)
    # uint8 images are rescaled first: 0 -> -1 and 255 -> 1
    u8 = torch.zeros(2, 28, 28, dtype=torch.uint8)
    torch.testing.assert_close(latent.classifier_confidence(u8, net), latent.classifier_confidence(-torch.ones(2, 1, 28, 28), net))


def test_bad_input_raises():
    z = torch.randn(3, 4)
    with pytest.raises(TypeError, match="z0"):
        latent.lerp(np.zeros((3, 4)), z, 0.5)
    with pytest.raises(TypeError, match="z1"):
        latent.slerp(z, torch.zeros(3, 4, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match="last dimension"):
        latent.lerp(z, torch.randn(3, 5), 0.5)
    with pytest.raises(ValueError, match="t must be"):
        latent.lerp(z, z, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="finite"):
        latent.slerp(z, z, float("nan"))
    with pytest.raises(TypeError, match="t must be"):
        latent.lerp(z, z, "half")
    with pytest.raises(ValueError, match="non-zero"):
        latent.slerp(torch.zeros(4), torch.ones(4), 0.5)
    with pytest.raises(ValueError, match="eps"):
        latent.slerp(z, z, 0.5, eps=0.0)
    with pytest.raises(ValueError, match="steps"):
        latent.interpolate(z, z, 1)
    with pytest.raises(ValueError, match="method"):
        latent.interpolate(z, z, 3, method="cubic")
    with pytest.raises(ValueError, match="threshold"):
        latent.truncated_normal(3, 4, 0.0)
    with pytest.raises(ValueError, match="threshold"):
        latent.truncated_normal(3, 4, float("nan"))
    with pytest.raises(ValueError, match="dim"):
        latent.truncated_normal(3, 0, 1.0)
    with pytest.raises(TypeError, match="rng must be a torch.Generator"):
        latent.truncated_normal(3, 4, 1.0, rng=0)
    with pytest.raises(ValueError, match="dim"):
        latent.expected_norm(0)
    with pytest.raises(ValueError, match="scale"):
        latent.expected_norm(3, scale=-1.0)
    with pytest.raises(TypeError, match="classifier"):
        latent.classifier_confidence(torch.zeros(2, 28, 28), lambda x: x)
    with pytest.raises(ValueError, match="shape"):
        latent.classifier_confidence(torch.zeros(2, 27, 28), FixedLogits())


def test_truncated_normal_still_accepts_the_old_keyword_generator():
    new = latent.truncated_normal(20, 3, 1.0, rng=torch.Generator().manual_seed(8))
    assert torch.equal(latent.truncated_normal(20, 3, 1.0, generator=torch.Generator().manual_seed(8)), new)
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        latent.truncated_normal(20, 3, 1.0, torch.Generator(), generator=torch.Generator())
