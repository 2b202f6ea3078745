"""Integral probability metrics and gradient penalties against independent oracles.

gan_lab.losses (gradient_penalty, r1_penalty, gaussian_kernel, mmd2, median_heuristic,
mmd_witness), gan_lab.theory (mmd2_gaussians, wasserstein1_1d) and gan_lab.metrics
(wasserstein1, mmd_permutation_test) against finite differences, brute-force loops,
scipy (pdist, dblquad, quad, wasserstein_distance), closed forms and Monte Carlo.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.spatial.distance import pdist
from torch.testing import assert_close

from gan_lab import losses, metrics, theory
from gan_lab.data import GaussianMixture
from gan_lab.nets import MLPDiscriminator

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# --- gradient penalties ----------------------------------------------------------------------


def small_critic(x):
    """A fixed nonlinear float64 critic (S, B, d) -> (S, B) or (B, d) -> (B,)."""
    w = torch.tensor([[0.7, -1.3, 0.4], [0.2, 0.9, -0.8]], dtype=F64)  # (d=2, hidden=3)
    v = torch.tensor([1.1, -0.6, 0.9], dtype=F64)
    return torch.tanh(x @ w + 0.1) @ v + 0.05 * (x**2).sum(-1)


def fd_grad_norm(critic, x, h=1e-6):
    """||grad critic|| at every point of x (..., d), by central differences."""
    grad = torch.zeros_like(x)
    with torch.no_grad():
        for k in range(x.shape[-1]):
            e = torch.zeros(x.shape[-1], dtype=x.dtype)
            e[k] = h
            grad[..., k] = (critic(x + e) - critic(x - e)) / (2 * h)
    return grad.norm(dim=-1)


def linear_critic(w):
    """f_s(x) = w_s . x for seed-batched input, w of shape (S, d)."""
    return lambda x: (x * w[:, None, :]).sum(-1)


@pytest.mark.parametrize("target", [1.0, 0.0, 2.5])
def test_gradient_penalty_matches_finite_differences_at_the_same_interpolates(target):
    real, fake = randn(3, 16, 2, seed=1), randn(3, 16, 2, seed=2) + 1.0
    gp = losses.gradient_penalty(small_critic, real, fake, rng=torch.Generator().manual_seed(7), target=target)
    eps = torch.rand(3, 16, 1, generator=torch.Generator().manual_seed(7), dtype=F64)  # as documented
    x_hat = eps * real + (1 - eps) * fake
    expected = ((fd_grad_norm(small_critic, x_hat) - target) ** 2).mean(-1)  # (S,)
    assert gp.shape == (3,)
    assert_close(gp, expected, rtol=1e-7, atol=1e-9)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    w = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 0.5]], dtype=F64)  # norms 5, 1, 0.5
    real, fake = randn(3, 8, 2, seed=3), randn(3, 8, 2, seed=4)
    gp = losses.gradient_penalty(linear_critic(w), real, fake)
    assert_close(gp, torch.tensor([16.0, 0.0, 0.25], dtype=F64))
    assert_close(losses.gradient_penalty(linear_critic(w), real, fake, target=0.0), torch.tensor([25.0, 1.0, 0.25], dtype=F64))
    # plain (B, d) input and a (B, d) -> (B,) critic give a scalar
    single = losses.gradient_penalty(lambda x: x @ w[0], real[0], fake[0])
    assert single.shape == () and float(single) == pytest.approx(16.0, rel=1e-14)


def test_gradient_penalty_seed_batched_equals_per_seed():
    critic = MLPDiscriminator(x_dim=2, hidden=(16, 16), seeds=[0, 1, 2]).double()
    real = randn(3, 32, 2, seed=5)
    batched = losses.gradient_penalty(critic, real, real.clone())  # real == fake: x_hat = real
    r1_batched = losses.r1_penalty(critic, real)
    for s in range(3):
        alone = MLPDiscriminator(x_dim=2, hidden=(16, 16), seeds=[s]).double()  # the same slot, by seed
        per_seed = lambda x: alone(x[None])[0]  # (B, d) -> (B,)
        assert_close(batched[s], losses.gradient_penalty(per_seed, real[s], real[s].clone()))
        expected = ((fd_grad_norm(per_seed, real[s]) - 1) ** 2).mean()
        assert_close(batched[s], expected, rtol=1e-6, atol=1e-9)
        assert_close(r1_batched[s], losses.r1_penalty(per_seed, real[s]))


def test_gradient_penalty_backpropagates_to_critic_parameters():
    real, fake = randn(12, 2, seed=6), randn(12, 2, seed=7)

    def penalty(weight):  # the penalty as a function of the critic's parameters, same epsilon each call
        critic = lambda x: torch.tanh(x @ weight).sum(-1)
        return losses.gradient_penalty(critic, real, fake, rng=torch.Generator().manual_seed(0))

    weight = randn(2, 3, seed=8).requires_grad_(True)
    assert torch.autograd.gradcheck(penalty, (weight,))  # backward through create_graph vs finite differences
    critic = MLPDiscriminator(x_dim=2, hidden=(8,), seeds=2).double()
    losses.gradient_penalty(critic, randn(2, 12, 2), randn(2, 12, 2, seed=1)).sum().backward()
    # every weight matrix shapes the input gradient; the output bias does not (its grad stays None)
    weights = [layer.weight.grad for layer in critic.layers if hasattr(layer, "weight")]
    assert all(g is not None and torch.isfinite(g).all() and (g.reshape(2, -1).abs().sum(1) > 0).all() for g in weights)


def test_gradient_penalty_zero_gradient_critic_gives_finite_gradients_and_detaches_inputs():
    w = torch.zeros(1, 2, dtype=F64, requires_grad=True)
    fake = randn(1, 5, 2).requires_grad_(True)  # as if fresh from the generator
    gp = losses.gradient_penalty(linear_critic(w), randn(1, 5, 2, seed=1), fake)
    assert_close(gp, torch.ones(1, dtype=F64))
    gp.sum().backward()
    assert torch.isfinite(w.grad).all()
    assert fake.grad is None  # the penalty trains the critic only


def test_penalties_are_correct_under_no_grad():
    w = torch.tensor([[3.0, 4.0]], dtype=F64)
    with torch.no_grad():
        assert_close(losses.gradient_penalty(linear_critic(w), randn(1, 4, 2), randn(1, 4, 2, seed=1)), torch.tensor([16.0], dtype=F64))
        assert_close(losses.r1_penalty(linear_critic(w), randn(1, 4, 2)), torch.tensor([25.0], dtype=F64))


def test_r1_of_a_linear_critic_is_squared_weight_norm_and_matches_finite_differences():
    w = torch.tensor([[3.0, 4.0], [0.6, 0.8]], dtype=F64, requires_grad=True)
    r1 = losses.r1_penalty(linear_critic(w), randn(2, 10, 2))
    assert_close(r1, torch.tensor([25.0, 1.0], dtype=F64))
    r1.sum().backward()  # d||w||^2 / dw = 2w
    assert_close(w.grad, 2 * w.detach())
    real = randn(3, 10, 2, seed=9)
    assert_close(losses.r1_penalty(small_critic, real), (fd_grad_norm(small_critic, real) ** 2).mean(-1), rtol=1e-7, atol=1e-9)


def test_penalty_bad_inputs():
    w = torch.ones(2, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"real and fake must have the same shape.*\(2, 4, 2\).*\(2, 5, 2\)"):
        losses.gradient_penalty(linear_critic(w), randn(2, 4, 2), randn(2, 5, 2))
    with pytest.raises(ValueError, match="critic must map inputs of shape"):
        losses.gradient_penalty(lambda x: x.sum(), randn(2, 4, 2), randn(2, 4, 2))
    with pytest.raises(ValueError, match="target"):
        losses.gradient_penalty(linear_critic(w), randn(2, 4, 2), randn(2, 4, 2), target=-1.0)
    with pytest.raises(TypeError, match="critic must be callable"):
        losses.r1_penalty("critic", randn(2, 4, 2))
    with pytest.raises(ValueError, match="real must be a non-empty tensor"):
        losses.r1_penalty(linear_critic(w), randn(4))


# --- kernels and MMD ---------------------------------------------------------------------------


def brute_kernel(a, b, bandwidths):
    return sum(math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b)) / (2 * s**2)) for s in bandwidths)


def brute_mmd2(x, y, bandwidths, unbiased):
    """MMD^2 by explicit double loops over Python lists."""
    x, y = x.tolist(), y.tolist()
    n, m = len(x), len(y)
    pairs_xx = [(i, j) for i in range(n) for j in range(n) if i != j or not unbiased]
    pairs_yy = [(i, j) for i in range(m) for j in range(m) if i != j or not unbiased]
    kxx = sum(brute_kernel(x[i], x[j], bandwidths) for i, j in pairs_xx) / len(pairs_xx)
    kyy = sum(brute_kernel(y[i], y[j], bandwidths) for i, j in pairs_yy) / len(pairs_yy)
    kxy = sum(brute_kernel(a, b, bandwidths) for a in x for b in y) / (n * m)
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_against_brute_force_loops_batched(unbiased):
    x, y = randn(2, 5, 3, seed=1), randn(2, 7, 3, seed=2) * 1.5 + 0.3
    bandwidths = [0.5, 2.0]
    got = losses.mmd2(x, y, bandwidths, unbiased=unbiased)
    assert got.shape == (2,)
    expected = torch.tensor([brute_mmd2(x[b], y[b], bandwidths, unbiased) for b in range(2)], dtype=F64)
    assert_close(got, expected, rtol=1e-12, atol=1e-14)
    # unbatched: a scalar; symmetric in its two arguments
    assert_close(losses.mmd2(x[0], y[0], bandwidths, unbiased), expected[0], rtol=1e-12, atol=1e-14)
    assert_close(losses.mmd2(y, x, bandwidths, unbiased), got, rtol=1e-12, atol=1e-14)


def test_gaussian_kernel_bandwidth_sum_and_against_scipy():
    x, y = randn(2, 4, 3), randn(6, 3, seed=1)  # y broadcasts over x's batch
    k = losses.gaussian_kernel(x, y, (0.3, 1.0, 4.0))
    assert k.shape == (2, 4, 6)
    assert_close(k, sum(losses.gaussian_kernel(x, y, s) for s in (0.3, 1.0, 4.0)))
    sq = np.stack([stats_sqeuclidean(xb, y.numpy()) for xb in x.numpy()])
    assert_close(losses.gaussian_kernel(x, y, 0.7), torch.from_numpy(np.exp(-sq / (2 * 0.7**2))))
    # a per-batch bandwidth of shape (S, 1) applies to its batch index only
    per_batch = losses.gaussian_kernel(x, y, torch.tensor([[0.5], [2.0]], dtype=F64))
    assert_close(per_batch[1], losses.gaussian_kernel(x[1], y, 2.0))
    assert_close(torch.diagonal(losses.gaussian_kernel(x, x, [1.0, 2.0]), dim1=-2, dim2=-1), torch.full((2, 4), 2.0, dtype=F64))


def stats_sqeuclidean(a, b):
    from scipy.spatial.distance import cdist

    return cdist(a, b, "sqeuclidean")


def test_mmd2_is_differentiable():
    x, y = randn(2, 4, 2).requires_grad_(True), randn(2, 5, 2, seed=1)
    assert torch.autograd.gradcheck(lambda a: losses.mmd2(a, y, [0.5, 1.5]), (x,))
    assert torch.autograd.gradcheck(lambda a: losses.mmd2(a, y, 1.0, unbiased=False), (x,))


def test_unbiased_mmd2_averages_to_the_closed_form_and_biased_overshoots_when_p_equals_q():
    reps, n, m, bandwidth = 4000, 10, 12, [0.8, 2.0]
    shift = torch.tensor([0.6, 0.0], dtype=F64)
    x, y = randn(reps, n, 2, seed=11), randn(reps, m, 2, seed=12) * 1.3 + shift  # P = N(0, I), Q = N(shift, 1.69 I)
    est = losses.mmd2(x, y, bandwidth)
    exact = theory.mmd2_gaussians([0.0, 0.0], 1.0, shift, 1.3, bandwidth)
    se = float(est.std()) / math.sqrt(reps)
    assert abs(float(est.mean()) - exact) < 4 * se
    assert exact > 10 * se  # the check has power

    y_same = randn(reps, m, 2, seed=13)  # P = Q
    unbiased, biased = losses.mmd2(x, y_same, bandwidth), losses.mmd2(x, y_same, bandwidth, unbiased=False)
    assert abs(float(unbiased.mean())) < 4 * float(unbiased.std()) / math.sqrt(reps)
    assert (unbiased < 0).any()
    assert (biased > 0).all()
    # E[V-statistic] = (1/n + 1/m) (k(x, x) - E k(X, X')) when P = Q
    k_self = len(bandwidth)  # k(x, x) = 1 per bandwidth
    k_cross = sum((s**2 / (s**2 + 2)) ** (2 / 2) for s in bandwidth)
    bias = (1 / n + 1 / m) * (k_self - k_cross)
    assert abs(float(biased.mean()) - bias) < 4 * float(biased.std()) / math.sqrt(reps)


@pytest.mark.parametrize("n, m", [(5, 6), (5, 7)])  # 55 (odd) and 66 (even) pairwise distances
def test_median_heuristic_against_scipy_pdist(n, m):
    x, y = randn(3, n, 2), randn(3, m, 2, seed=1) + 2
    bw = losses.median_heuristic(x, y)
    assert bw.shape == (3, 1)
    expected = [np.median(pdist(np.vstack([x[b].numpy(), y[b].numpy()]))) for b in range(3)]
    assert_close(bw[:, 0], torch.tensor(expected, dtype=F64))
    single = losses.median_heuristic(x[0], y[0])
    assert single.shape == (1,) and float(single) == pytest.approx(expected[0], rel=1e-14)
    assert losses.mmd2(x, y, bw).shape == (3,)  # usable as bandwidths as it is


def test_mmd_witness_against_loops_and_its_mean_difference_is_the_biased_mmd2():
    x, y, t = randn(6, 2), randn(4, 2, seed=1) + 1, randn(5, 2, seed=2)
    bw = [0.5, 1.0]
    witness = losses.mmd_witness(x, y, bw, t)
    xl, yl = x.tolist(), y.tolist()
    expected = [
        sum(brute_kernel(a, p, bw) for a in xl) / len(xl) - sum(brute_kernel(b, p, bw) for b in yl) / len(yl) for p in t.tolist()
    ]
    assert_close(witness, torch.tensor(expected, dtype=F64))
    gap = losses.mmd_witness(x, y, bw, x).mean() - losses.mmd_witness(x, y, bw, y).mean()
    assert_close(gap, losses.mmd2(x, y, bw, unbiased=False))


def test_kernel_and_mmd_bad_inputs():
    x, y = randn(4, 2), randn(5, 2, seed=1)
    for bad in (0.0, -1.0, [1.0, 0.0], float("nan"), float("inf"), []):
        with pytest.raises(ValueError, match="bandwidths"):
            losses.mmd2(x, y, bad)
    with pytest.raises(ValueError, match="bandwidths"):
        losses.gaussian_kernel(x, y, -0.5)
    with pytest.raises(ValueError, match=r"same dimension.*\(4, 2\).*\(5, 3\)"):
        losses.mmd2(x, randn(5, 3), 1.0)
    with pytest.raises(ValueError, match=r"same dimension.*\(4, 2\).*\(5, 3\)"):
        losses.gaussian_kernel(x, randn(5, 3), 1.0)
    with pytest.raises(ValueError, match="at least 2 sample"):
        losses.mmd2(x, y[:1], 1.0)
    assert torch.isfinite(losses.mmd2(x[:1], y[:1], 1.0, unbiased=False))  # the V-statistic needs only one point
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        losses.mmd2(x.numpy(), y, 1.0)
    with pytest.raises(ValueError, match="bandwidths"):
        losses.mmd_witness(x, y, 0.0, x)
    with pytest.raises(ValueError, match="points and x"):
        losses.mmd_witness(x, y, 1.0, randn(3, 3))


# --- theory: MMD between Gaussians, W1 in one dimension ------------------------------------


def normal_pdf(x, mean, std):
    return math.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def expected_kernel_1d(a, s, b, t, sigma):
    """E k(X, Y), X ~ N(a, s^2), Y ~ N(b, t^2), by two-dimensional quadrature (scipy dblquad)."""
    f = lambda yv, xv: normal_pdf(xv, a, s) * normal_pdf(yv, b, t) * math.exp(-((xv - yv) ** 2) / (2 * sigma**2))
    value, _ = integrate.dblquad(f, a - 10 * s, a + 10 * s, b - 10 * t, b + 10 * t, epsabs=1e-11, epsrel=1e-9)
    return value


def test_mmd2_gaussians_1d_against_dblquad():
    a, s, b, t, sigma = 0.3, 0.7, -0.9, 1.4, 0.8
    expected = expected_kernel_1d(a, s, a, s, sigma) + expected_kernel_1d(b, t, b, t, sigma) - 2 * expected_kernel_1d(a, s, b, t, sigma)
    assert_close(theory.mmd2_gaussians(a, s, b, t, sigma), expected, rtol=1e-7, atol=1e-10)


def test_mmd2_gaussians_in_3d_against_monte_carlo():
    rng = np.random.default_rng(0)
    n, mu_p, mu_q, s_p, s_q, bw = 400_000, np.array([0.0, 0.5, -0.2]), np.array([0.4, 0.0, 0.3]), 0.8, 1.1, [0.6, 1.5]
    x, x2 = mu_p + s_p * rng.standard_normal((2, n, 3))
    y, y2 = mu_q + s_q * rng.standard_normal((2, n, 3))
    k = lambda a, b: sum(np.exp(-((a - b) ** 2).sum(-1) / (2 * s**2)) for s in bw)
    h = k(x, x2) + k(y, y2) - k(x, y2) - k(x2, y)  # an unbiased estimate of MMD^2 per row
    exact = theory.mmd2_gaussians(mu_p, s_p, mu_q, s_q, bw)
    assert abs(h.mean() - exact) < 4 * h.std() / math.sqrt(n)
    assert exact > 20 * h.std() / math.sqrt(n)


def test_mmd2_gaussians_zero_for_equal_and_additive_in_bandwidths():
    assert theory.mmd2_gaussians([1.0, -2.0], 0.5, [1.0, -2.0], 0.5, [0.3, 1.0]) == 0.0
    args = ([0.0, 0.0], 1.0, [1.0, 0.5], 0.7)
    assert_close(theory.mmd2_gaussians(*args, [0.5, 2.0]), theory.mmd2_gaussians(*args, 0.5) + theory.mmd2_gaussians(*args, 2.0))
    # two point masses: 2 - 2 exp(-|a - b|^2 / (2 sigma^2))
    assert_close(theory.mmd2_gaussians([0.0], 0.0, [2.0], 0.0, 1.0), 2 - 2 * math.exp(-2.0))
    with pytest.raises(ValueError, match="bandwidth"):
        theory.mmd2_gaussians(0.0, 1.0, 1.0, 1.0, [1.0, 0.0])
    with pytest.raises(ValueError, match="mean_p and mean_q"):
        theory.mmd2_gaussians([0.0, 0.0], 1.0, [1.0], 1.0, 1.0)
    with pytest.raises(ValueError, match="std_q"):
        theory.mmd2_gaussians(0.0, 1.0, 1.0, -1.0, 1.0)


def mixture_cdf(x, means, stds, weights):
    return sum(w * stats.norm.cdf(x, m, s) for m, s, w in zip(means, stds, weights))


def test_wasserstein1_1d_closed_form_for_shifted_gaussians():
    for mu_q, std in ((1.5, 1.0), (-0.2, 0.01), (40.0, 3.0)):
        p, q = GaussianMixture([0.3], std), GaussianMixture([mu_q], std)
        assert_close(theory.wasserstein1_1d(p, q), abs(mu_q - 0.3), rtol=1e-10, atol=1e-14)
    normal = torch.distributions.Normal
    assert_close(theory.wasserstein1_1d(normal(0.0, 2.0), normal(1.25, 2.0)), 1.25, rtol=1e-10, atol=0)
    p = GaussianMixture([-1.0, 2.0], [0.3, 0.5], weights=[0.1] * 2)
    assert theory.wasserstein1_1d(p, p) == 0.0


def test_wasserstein1_1d_against_scipy_quad_and_large_samples():
    means_p, stds_p, w_p = [-2.0, 0.5, 3.0], [0.3, 0.8, 0.1], [0.2, 0.5, 0.3]
    means_q, stds_q, w_q = [0.0, 4.0], [1.0, 0.5], [0.6, 0.4]
    p, q = GaussianMixture(means_p, stds_p, w_p), GaussianMixture(means_q, stds_q, w_q)
    w1, err = theory.wasserstein1_1d(p, q, return_se=True)
    assert err < 1e-10
    cdf_p = lambda x: mixture_cdf(x, means_p, stds_p, w_p)
    cdf_q = lambda x: mixture_cdf(x, means_q, stds_q, w_q)
    breaks = sorted(means_p + means_q)
    quad, _ = integrate.quad(lambda x: abs(cdf_p(x) - cdf_q(x)), -30, 30, points=breaks, limit=500, epsabs=1e-12)
    assert_close(w1, quad, rtol=1e-8, atol=0)
    # samples: E|W1(P_n, Q_n) - W1(P, Q)| <= (int sqrt(F_p (1 - F_p)) + sqrt(F_q (1 - F_q)) dx) / sqrt(n)
    n = 200_000
    gen = torch.Generator().manual_seed(0)
    xs, ys = p.sample(n, rng=gen, dtype=F64)[:, 0].numpy(), q.sample(n, rng=gen, dtype=F64)[:, 0].numpy()
    spread = sum(
        integrate.quad(lambda x, c=c: math.sqrt(c(x) * (1 - c(x))), -30, 30, points=breaks, limit=500)[0] for c in (cdf_p, cdf_q)
    )
    assert abs(stats.wasserstein_distance(xs, ys) - w1) < 5 * spread / math.sqrt(n)


def test_wasserstein1_1d_bad_inputs():
    with pytest.raises(TypeError, match="p must have a cdf"):
        theory.wasserstein1_1d(object(), GaussianMixture([0.0], 1.0))
    with pytest.raises(ValueError, match="q must be one-dimensional"):
        theory.wasserstein1_1d(GaussianMixture([0.0], 1.0), GaussianMixture([[0.0, 0.0]], 1.0))


# --- metrics: exact W1 between samples, MMD permutation test --------------------------------


def test_wasserstein1_1d_samples_equal_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(300), rng.gamma(2.0, size=300)
    expected = stats.wasserstein_distance(x, y)
    assert_close(metrics.wasserstein1(x, y), expected, rtol=1e-12, atol=0)
    assert_close(metrics.wasserstein1(torch.tensor(x)[:, None], torch.tensor(y)[:, None]), expected, rtol=1e-12, atol=0)


def test_wasserstein1_shift_is_the_shift_length():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert_close(metrics.wasserstein1(square, square + [3.0, 0.0]), 3.0, rtol=1e-14, atol=0)
    # any cloud against itself shifted by v: W1 >= |E X - E Y| = |v| (Jensen), and the shift achieves it
    cloud = np.random.default_rng(2).standard_normal((60, 3))
    shift = np.array([0.3, -0.4, 1.2])  # |v| = 1.3
    shuffled = (cloud + shift)[np.random.default_rng(3).permutation(60)]
    assert_close(metrics.wasserstein1(cloud, shuffled), 1.3, rtol=1e-12, atol=0)


def test_wasserstein1_against_all_matchings():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 2)) + [1.0, 0.0]
    cost = np.linalg.norm(x[:, None] - y[None], axis=-1)  # (6, 6)
    brute = min(cost[range(6), list(pi)].mean() for pi in itertools.permutations(range(6)))
    assert_close(metrics.wasserstein1(x, y), brute, rtol=1e-12, atol=0)
    assert_close(metrics.wasserstein1(y[::-1], x[[3, 1, 5, 0, 2, 4]]), brute, rtol=1e-12, atol=0)  # order-free


def test_wasserstein1_batched_equals_per_seed():
    x, y = randn(3, 40, 2), randn(3, 40, 2, seed=1) + 0.5
    batched = metrics.wasserstein1(x, y)
    assert isinstance(batched, np.ndarray) and batched.shape == (3,)
    assert_close(batched, np.array([metrics.wasserstein1(x[s], y[s]) for s in range(3)]), rtol=0, atol=0)
    # a single (n, d) set is compared with every seed
    assert_close(metrics.wasserstein1(x, y[0]), np.array([metrics.wasserstein1(x[s], y[0]) for s in range(3)]), rtol=0, atol=0)
    x1, y1 = randn(2, 30, 1, seed=2), randn(2, 30, 1, seed=3)
    assert_close(metrics.wasserstein1(x1, y1), np.array([stats.wasserstein_distance(x1[s, :, 0], y1[s, :, 0]) for s in range(2)]))


def test_wasserstein1_bad_inputs():
    with pytest.raises(ValueError, match=r"equal-size samples.*10 points in x and 12 points in y"):
        metrics.wasserstein1(np.zeros((10, 2)), np.zeros((12, 2)))
    with pytest.raises(ValueError, match=r"same dimension.*\(1, 10, 2\).*\(1, 10, 3\)"):
        metrics.wasserstein1(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="y must be finite"):
        metrics.wasserstein1(np.zeros((10, 2)), np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="x must not be empty"):
        metrics.wasserstein1(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="same number of seeds"):
        metrics.wasserstein1(np.zeros((2, 5, 2)), np.zeros((3, 5, 2)))


def test_mmd_permutation_test_statistic_and_determinism():
    x, y = randn(30, 2), randn(25, 2, seed=1) + 0.2
    result = metrics.mmd_permutation_test(x, y, [0.5, 1.0], rng=torch.Generator().manual_seed(0))
    assert_close(result["mmd2"], float(losses.mmd2(x, y, [0.5, 1.0])), rtol=1e-10, atol=1e-14)
    again = metrics.mmd_permutation_test(x, y, [0.5, 1.0], rng=torch.Generator().manual_seed(0))
    assert result == again
    assert 1 / 201 <= result["p_value"] <= 1
    # seed-batched: each seed as if tested alone with the same permutations
    xb, yb = randn(3, 20, 2, seed=2), randn(3, 20, 2, seed=3)
    batched = metrics.mmd_permutation_test(xb, yb, 1.0, n_permutations=50, rng=torch.Generator().manual_seed(1))
    for s in range(3):
        alone = metrics.mmd_permutation_test(xb[s], yb[s], 1.0, n_permutations=50, rng=torch.Generator().manual_seed(1))
        assert_close(batched["mmd2"][s], alone["mmd2"], rtol=1e-12, atol=1e-15)
        assert batched["p_value"][s] == alone["p_value"]


def test_mmd_permutation_test_still_accepts_the_old_keyword_generator():
    x, y = randn(12, 2), randn(10, 2, seed=1)
    new = metrics.mmd_permutation_test(x, y, 1.0, n_permutations=20, rng=torch.Generator().manual_seed(5))
    assert metrics.mmd_permutation_test(x, y, 1.0, n_permutations=20, generator=torch.Generator().manual_seed(5)) == new
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        metrics.mmd_permutation_test(x, y, 1.0, rng=torch.Generator(), generator=torch.Generator())


def test_mmd_permutation_test_takes_a_generator_on_the_compute_device():
    """CPU samples, a generator on the device under test (CUDA in the GPU check): the same
    statistic, and a valid p-value."""
    from gan_lab import profile

    x, y = randn(30, 2), randn(25, 2, seed=1) + 0.2
    result = metrics.mmd_permutation_test(x, y, 1.0, n_permutations=40,
                                          rng=torch.Generator(profile.device()).manual_seed(0))
    assert_close(result["mmd2"], float(losses.mmd2(x, y, [1.0])), rtol=1e-10, atol=1e-14)
    assert 1 / 41 <= result["p_value"] <= 1


def test_mmd_permutation_test_p_values_uniform_under_null_and_small_under_alternative():
    reps, n_perm = 100, 99
    gen = torch.Generator().manual_seed(5)
    p_values = np.array(
        [
            metrics.mmd_permutation_test(randn(20, 2, seed=2 * r + 100), randn(20, 2, seed=2 * r + 101), 1.0, n_perm, gen)["p_value"]
            for r in range(reps)
        ]
    )
    # P(p <= 0.05) = 5/100 under H0; the count of rejections is Binomial(100, 0.05)
    low, high = stats.binom.ppf([0.0005, 0.9995], reps, 0.05)
    assert low <= (p_values <= 0.05).sum() <= high
    assert abs(p_values.mean() - 0.5) < 4 * math.sqrt(1 / 12 / reps)  # the mean of a uniform p-value
    different = metrics.mmd_permutation_test(randn(50, 2, seed=1), randn(50, 2, seed=2) + 1.5, 1.0, 200, gen)
    assert different["p_value"] < 0.01


def test_mmd_permutation_test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 points"):
        metrics.mmd_permutation_test(randn(1, 2), randn(5, 2), 1.0)
    with pytest.raises(ValueError, match="n_permutations"):
        metrics.mmd_permutation_test(randn(5, 2), randn(5, 2), 1.0, n_permutations=0)
    with pytest.raises(ValueError, match="bandwidths"):
        metrics.mmd_permutation_test(randn(5, 2), randn(5, 2), -1.0)
    with pytest.raises(ValueError, match="same dimension"):
        metrics.mmd_permutation_test(randn(5, 2), randn(5, 3), 1.0)


# --- issue 14: the estimators' documented properties, the gradient's sign, the large-sigma limit --
def test_mmd2_docstring_v_statistic_bias_matches_monte_carlo():
    """The docstring's bias (k(x, x) - E k(X, X')) (1/n + 1/m) for N(0, 1), sigma = 1, n = m = 50
    is 2 (1 - 1/sqrt 3) / 50 = 0.0169; the formula without E k(X, X') (0.04) is rejected."""
    from gan_lab import mmd

    reps, n = 4000, 50
    doc = " ".join(mmd.mmd2.__doc__.split())
    assert r"2 (1 - 1 / \sqrt{3}) / 50 \approx 0.0169" in doc
    bias = 2 * (1 - 1 / math.sqrt(3)) / n  # E k(X, X') = (1 / (1 + 2))^(1/2)
    assert round(bias, 4) == 0.0169
    x, y = randn(reps, n, 1, seed=31), randn(reps, n, 1, seed=32)
    biased = mmd.mmd2(x, y, 1.0, unbiased=False)  # MMD^2 = 0: its mean is the bias
    se = float(biased.std()) / math.sqrt(reps)
    assert abs(float(biased.mean()) - bias) < 4 * se
    assert abs(float(biased.mean()) - 2 / n) > 20 * se  # the old formula fails


def test_unbiased_mmd2_under_the_null_is_right_skewed_and_mostly_negative():
    from gan_lab import mmd

    reps, n = 4000, 50
    u = mmd.mmd2(randn(reps, n, 1, seed=33), randn(reps, n, 1, seed=34), 1.0).numpy()
    assert abs(u.mean()) < 4 * u.std() / math.sqrt(reps)  # unbiased: mean zero
    share = (u < 0).mean()  # "negative about half the time" would give 0.5
    assert share - 0.5 > 4 * math.sqrt(0.25 / reps)
    skew = stats.skew(u)
    assert skew > 4 * math.sqrt(6 / reps)  # the SE of a sample skewness under normality


def test_witness_gradient_against_autograd_of_the_witness():
    from gan_lab import mmd

    x, y = randn(2, 7, 3, seed=35), randn(2, 5, 3, seed=36)
    t = randn(2, 4, 3, seed=37).requires_grad_(True)
    for bw in (0.7, [0.5, 2.0]):
        auto = torch.autograd.grad(mmd.mmd_witness(x, y, bw, t).sum(), t)[0]
        assert_close(mmd.witness_gradient(x, y, bw, t.detach()), auto)
    with pytest.raises(ValueError, match="same dimension"):
        mmd.witness_gradient(x, y, 1.0, randn(4, 2))


def test_mmd2_gradient_in_a_generated_point_is_minus_2_over_m_leave_one_out_witness():
    """d MMD^2_u / d y_j = -(2/m) grad f_{-j}(y_j): descent moves y_j UP the witness that
    leaves y_j out; the witness that keeps y_j (normalised by 1/m) does not give it."""
    from gan_lab import mmd

    n, m, bw = 9, 6, [0.4, 1.5]
    x, y = randn(n, 2, seed=38), randn(m, 2, seed=39) + 0.5
    y_req = y.clone().requires_grad_(True)
    auto = torch.autograd.grad(mmd.mmd2(x, y_req, bw), y_req)[0]  # (m, 2)
    leave_out = torch.cat([mmd.witness_gradient(x, y[torch.arange(m) != j], bw, y[j : j + 1])
                           for j in range(m)])  # (m, 2)
    assert_close(auto, -2 / m * leave_out)
    keep_in = mmd.witness_gradient(x, y, bw, y)  # all m points, 1/m
    assert not torch.allclose(auto, -2 / m * keep_in, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("d", [1, 2])
def test_mmd2_gaussians_large_bandwidth_limit_is_the_squared_mean_difference(d):
    """sigma^2 MMD^2 -> |mu_p - mu_q|^2 (error O(1/sigma^2)); equal means: sigma^4 MMD^2 ->
    d (d + 2) (s^2 - t^2)^2 / 4, so the spread enters only at order 1/sigma^4."""
    mu = np.array([0.6, -0.3][:d])
    for sigma in (30.0, 100.0, 300.0):
        ratio = sigma**2 * theory.mmd2_gaussians(np.zeros(d), 0.5, mu, 1.2, sigma) / (mu @ mu)
        assert abs(ratio - 1) < 10 / sigma**2
        spread = sigma**4 * theory.mmd2_gaussians(np.zeros(d), 0.5, np.zeros(d), 1.2, sigma)
        assert_close(spread, d * (d + 2) * (0.25 - 1.44) ** 2 / 4, rtol=20 / sigma**2, atol=0.0)


def test_mmd_permutation_test_median_bandwidth_is_the_pooled_median():
    """bandwidths="median" equals passing median_heuristic(x, y), which no relabelling changes."""
    from gan_lab import mmd

    x, y = randn(3, 15, 2, seed=40), randn(3, 12, 2, seed=41) + 0.4
    auto = metrics.mmd_permutation_test(x, y, "median", 30, torch.Generator().manual_seed(2))
    explicit = metrics.mmd_permutation_test(x, y, mmd.median_heuristic(x, y), 30,
                                            torch.Generator().manual_seed(2))
    assert_close(auto["mmd2"], explicit["mmd2"], rtol=0, atol=0)
    assert np.array_equal(auto["p_value"], explicit["p_value"])
    pool = torch.cat([x, y], dim=1)
    relabelled = pool[:, torch.randperm(27, generator=torch.Generator().manual_seed(3))]
    assert_close(mmd.median_heuristic(relabelled[:, :15], relabelled[:, 15:]), mmd.median_heuristic(x, y))
    with pytest.raises(ValueError, match='"median"'):
        metrics.mmd_permutation_test(x, y, "mean")
