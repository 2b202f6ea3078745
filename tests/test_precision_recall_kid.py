"""gan_lab.metrics.precision_recall and gan_lab.metrics.kid: brute-force oracles, closed cases,
exact expectations by enumeration, and the standard error against the spread of repeats."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from torch.testing import assert_close

from gan_lab.metrics import kid, precision_recall


def gen(seed):
    return torch.Generator().manual_seed(seed)


def normal(shape, seed, scale=1.0, shift=0.0):
    return shift + scale * torch.randn(shape, generator=gen(seed), dtype=torch.float64)


# ------------------------------------------------------------------ precision and recall


def pr_oracle(real, fake, k):
    """The definition, by loops over scipy's exact distances."""
    d_rr, d_ff, d_rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_real = np.array([np.sort(np.delete(d_rr[i], i))[k - 1] for i in range(len(real))])
    r_fake = np.array([np.sort(np.delete(d_ff[j], j))[k - 1] for j in range(len(fake))])
    fake_in = np.array([any(d_rf[i, j] <= r_real[i] for i in range(len(real))) for j in range(len(fake))])
    real_in = np.array([any(d_rf[i, j] <= r_fake[j] for j in range(len(fake))) for i in range(len(real))])
    return fake_in, real_in, r_real, r_fake


@pytest.mark.parametrize("n, m, d, k", [(40, 50, 3, 3), (30, 20, 2, 1), (25, 35, 8, 5)])
def test_precision_recall_match_brute_force(n, m, d, k):
    real = np.random.default_rng(n).normal(size=(n, d))
    fake = 1.0 + np.random.default_rng(m).normal(size=(m, d))  # shifted: partly outside
    fake[: m // 3] = real[: m // 3] + 0.05  # some fake points near real ones: a mixed case
    fake_in, real_in, r_real, r_fake = pr_oracle(real, fake, k)
    # control: the flags are mixed, so agreement is not that of two constant answers
    assert 0 < fake_in.mean() < 1 and 0 < real_in.mean() < 1
    out = precision_recall(real, fake, k=k)
    np.testing.assert_array_equal(out["fake_inside"], fake_in)
    np.testing.assert_array_equal(out["real_inside"], real_in)
    assert out["precision"] == fake_in.mean() and out["recall"] == real_in.mean()
    assert_close(out["real_radius"], r_real, rtol=1e-12, atol=1e-12)
    assert_close(out["fake_radius"], r_fake, rtol=1e-12, atol=1e-12)
    # precision and recall swap with the roles of the sets
    swapped = precision_recall(fake, real, k=k)
    assert (swapped["precision"], swapped["recall"]) == (out["recall"], out["precision"])


def test_precision_recall_chunks_seeds_and_broadcast_agree():
    real, fake = normal((3, 30, 4), 1), normal((3, 25, 4), 2, scale=1.5)
    batched = precision_recall(real, fake, k=2)
    assert batched["precision"].shape == (3,) and batched["fake_inside"].shape == (3, 25)
    for s in range(3):
        one = precision_recall(real[s], fake[s], k=2, chunk=7)  # several blocks per seed
        assert (one["precision"], one["recall"]) == (batched["precision"][s], batched["recall"][s])
        np.testing.assert_array_equal(one["fake_inside"], batched["fake_inside"][s])
        assert_close(one["real_radius"], batched["real_radius"][s], rtol=1e-12, atol=0)
    shared = precision_recall(real[0], fake, k=2)  # one real set against every seed
    np.testing.assert_array_equal(shared["precision"][0], batched["precision"][0])
    assert isinstance(precision_recall(real[0].float(), fake[0].numpy())["precision"], float)


def test_identical_sets_score_one_and_disjoint_sets_zero():
    x = normal((200, 10), 3)
    same = precision_recall(x, x.clone())
    assert (same["precision"], same["recall"]) == (1.0, 1.0)
    far = precision_recall(x, x + 100.0)
    assert (far["precision"], far["recall"]) == (0.0, 0.0)
    # control: a fresh sample of the same law is neither 1 nor 0
    fresh = precision_recall(x, normal((200, 10), 4))
    assert 0 < fresh["precision"] < 1 and 0 < fresh["recall"] < 1


def test_a_point_on_a_ball_boundary_is_inside():
    # 1-D integers (both means are integers too), k = 1: the distances are exact
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)  # balls of radius 1
    fake = torch.tensor([[4.0], [-2.0], [1.0]], dtype=torch.float64)  # balls of radius 3
    out = precision_recall(real, fake, k=1)
    np.testing.assert_array_equal(out["real_radius"], [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out["fake_radius"], [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(out["fake_inside"], [True, False, True])  # 4 is on the ball of 3
    np.testing.assert_array_equal(out["real_inside"], [True, True, True, True])  # the fake balls cover them
    swapped = precision_recall(fake, real, k=1)  # the same boundary, now on the recall side
    np.testing.assert_array_equal(swapped["real_inside"], [True, False, True])


CENTRES = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]], dtype=torch.float64)
STD = 0.05  # clusters far apart: a ball never reaches another cluster


def clusters(which, per, seed, seeds=20):
    """``per`` points of each listed cluster, for every seed: (seeds, per * len(which), 2)."""
    return torch.cat([CENTRES[c] + normal((seeds, per, 2), seed + 100 * c, STD) for c in which], 1)


def test_a_subset_of_the_real_points_has_precision_one_and_recall_its_share():
    sizes = (100, 60, 40, 50)
    real = torch.cat([CENTRES[c] + normal((size, 2), c, STD) for c, size in enumerate(sizes)])
    fake = real[:160]  # the points of the first two clusters: two modes dropped
    out = precision_recall(real, fake)
    assert out["precision"] == 1.0
    assert out["recall"] == 160 / 250
    assert out["real_inside"][:160].all() and not out["real_inside"][160:].any()


def mean_and_se(values):
    return values.mean(), values.std(ddof=1) / math.sqrt(len(values))


def test_dropping_modes_scales_recall_and_keeps_precision():
    # fresh samples: 20 seeds of 150 points per cluster; the drop model covers 3 of 4 clusters
    real, full, drop = clusters(range(4), 150, 0), clusters(range(4), 150, 1), clusters(range(3), 150, 2)
    a, b = precision_recall(real, full), precision_recall(real, drop)
    # by symmetry E[precision] is the same and E[recall] is 3/4 of the full model's;
    # tolerances: 4 standard errors of the paired differences over the seeds
    diff, se = mean_and_se(b["precision"] - a["precision"])
    assert abs(diff) <= 4 * se, (diff, se)
    diff, se = mean_and_se(b["recall"] - 0.75 * a["recall"])
    assert abs(diff) <= 4 * se, (diff, se)
    # control: recall does drop, far beyond the tolerance
    diff, se = mean_and_se(b["recall"] - a["recall"])
    assert diff < -20 * se
    assert a["precision"].mean() > 0.9 and a["recall"].mean() > 0.9  # the full model is good


def test_blur_lowers_precision_not_recall():
    real, fake = clusters(range(4), 150, 0), clusters(range(4), 150, 1)
    sharp = precision_recall(real, fake)
    blurred = precision_recall(real, fake + normal(fake.shape, 5, 2 * STD))
    drop, se = mean_and_se(sharp["precision"] - blurred["precision"])
    assert drop > 0.2 and drop > 10 * se, (drop, se)
    diff, se = mean_and_se(blurred["recall"] - sharp["recall"])
    assert diff > -4 * se  # the blurred points still cover the clusters
    # control: a blur of a tenth of the clusters' width leaves precision alone
    slight = precision_recall(real, fake + normal(fake.shape, 5, 0.1 * STD))
    diff, se = mean_and_se(sharp["precision"] - slight["precision"])
    assert abs(diff) <= 4 * se, (diff, se)


# ------------------------------------------------------------------ KID


def cubic(a, b):
    return (a @ b.T / a.shape[1] + 1) ** 3


def kid_oracle(x, y):
    """The unbiased MMD^2 with the cubic kernel by explicit double sums."""
    n, m, d = len(x), len(y), x.shape[1]
    k = lambda a, b: (sum(a[t] * b[t] for t in range(d)) / d + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_kid_matches_the_double_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), 0.5 + rng.normal(size=(9, 3))
    expected = kid_oracle(x, y)
    assert_close(kid(x, y, return_se=False), expected, rtol=1e-12, atol=0)
    assert_close(kid(x, y, chunk=2)["kid"], expected, rtol=1e-12, atol=0)
    # seeds: a batch equals the sets one at a time; one set broadcasts over the other's seeds
    xs, ys = normal((4, 7, 3), 1), normal((4, 9, 3), 2)
    batched = kid(xs, ys)
    for s in range(4):
        assert_close(batched["kid"][s], kid_oracle(xs[s].numpy(), ys[s].numpy()), rtol=1e-12, atol=0)
        assert_close(batched["variance"][s], kid(xs[s], ys[s], chunk=3)["variance"], rtol=1e-10, atol=0)
    assert_close(kid(xs[0], ys)["kid"][2], kid(xs[0], ys[2])["kid"], rtol=1e-12, atol=0)


def enumerate_kid(p_points, p_probs, q_points, q_probs, n, m):
    """Exact E and Var of the estimate, and E of the variance estimate, over every pair of samples."""
    p_points, q_points = np.asarray(p_points), np.asarray(q_points)
    ix = np.array(list(itertools.product(range(len(p_points)), repeat=n)))  # (A, n)
    iy = np.array(list(itertools.product(range(len(q_points)), repeat=m)))  # (B, m)
    weight = np.outer(np.prod(p_probs[ix], 1), np.prod(q_probs[iy], 1)).ravel()  # (A * B,)
    x = np.repeat(p_points[ix], len(iy), 0)  # (A * B, n, d)
    y = np.tile(q_points[iy], (len(ix), 1, 1))
    out = kid(x, y)
    mean = weight @ out["kid"]
    return mean, weight @ out["kid"] ** 2 - mean**2, weight @ out["variance"], out


P_POINTS = np.array([[0.0, 0.0], [1.0, 0.5], [-0.5, 2.0]])
P_PROBS = np.array([0.5, 0.3, 0.2])
Q_POINTS = np.array([[0.2, 0.0], [1.0, 1.0], [-1.0, 1.0]])
Q_PROBS = np.array([0.2, 0.3, 0.5])


def test_kid_and_its_variance_are_unbiased_exactly():
    # discrete laws on 3 points each, n = 4 and m = 5: all 3^9 pairs of samples, weighted
    mmd2 = P_PROBS @ cubic(P_POINTS, P_POINTS) @ P_PROBS + Q_PROBS @ cubic(Q_POINTS, Q_POINTS) @ Q_PROBS \
        - 2 * P_PROBS @ cubic(P_POINTS, Q_POINTS) @ Q_PROBS
    mean, var, mean_var_hat, out = enumerate_kid(P_POINTS, P_PROBS, Q_POINTS, Q_PROBS, 4, 5)
    assert_close(mean, mmd2, rtol=1e-12, atol=0)
    assert_close(mean_var_hat, var, rtol=1e-10, atol=0)
    assert (out["variance"] < 0).any()  # unbiased, hence negative in some tiny samples; se clips
    np.testing.assert_array_equal(out["se"], np.sqrt(np.clip(out["variance"], 0, None)))
    # control: with n and m swapped the variance differs, and the estimate follows it
    _, var_s, mean_var_hat_s, _ = enumerate_kid(P_POINTS, P_PROBS, Q_POINTS, Q_PROBS, 5, 4)
    assert abs(var_s - var) > 0.1 * var
    assert_close(mean_var_hat_s, var_s, rtol=1e-10, atol=0)
    # P = Q: the statistic is degenerate (the first-order terms vanish); still exact
    mean0, var0, mean_var_hat0, _ = enumerate_kid(P_POINTS, P_PROBS, P_POINTS, P_PROBS, 4, 5)
    assert abs(mean0) < 1e-12 and var0 > 0
    assert_close(mean_var_hat0, var0, rtol=1e-10, atol=0)


def mmd2_isotropic_gaussians(mu_p, mu_q):
    """The cubic-kernel MMD^2 between N(mu_p, I) and N(mu_q, I) from their first three moments."""
    d, eye = len(mu_p), np.eye(len(mu_p))

    def cross(a, b):  # E k(X, Y) for X ~ N(a, I), Y ~ N(b, I) independent
        second = lambda mu: np.outer(mu, mu) + eye
        third = lambda mu: (np.einsum("i,j,k->ijk", mu, mu, mu) + np.einsum("i,jk->ijk", mu, eye)
                            + np.einsum("j,ik->ijk", mu, eye) + np.einsum("k,ij->ijk", mu, eye))
        return (1 + 3 * a @ b / d + 3 * (second(a) * second(b)).sum() / d**2
                + (third(a) * third(b)).sum() / d**3)

    return cross(mu_p, mu_p) + cross(mu_q, mu_q) - 2 * cross(mu_p, mu_q)


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_kid_se_matches_the_spread_of_repeats(shift):
    repeats, n, m, d = 1500, 100, 80, 5
    x, y = normal((repeats, n, d), 10), normal((repeats, m, d), 11, shift=shift)
    out = kid(x, y)
    est, variance = out["kid"], out["variance"]
    # the mean over repeats: the closed-form MMD^2, within 4 standard errors of the spread
    mmd2 = mmd2_isotropic_gaussians(np.zeros(d), np.full(d, shift))
    mean, se_mean = mean_and_se(est)
    assert abs(mean - mmd2) <= 4 * se_mean, (mean, mmd2, se_mean)
    # the variance estimate against the sample variance of the estimates: the relative SE of a
    # sample variance is sqrt((kurtosis - 1) / R), that of the mean of the estimates is added
    spread = est.var(ddof=1)
    kurtosis = ((est - est.mean()) ** 4).mean() / est.var() ** 2
    tol = 4 * math.sqrt(((kurtosis - 1) / repeats) + (variance.std(ddof=1) / variance.mean()) ** 2 / repeats)
    assert abs(variance.mean() / spread - 1) <= tol, (variance.mean(), spread, tol)
    # control: an SE off by a factor sqrt(2) (the delete-one jackknife at P = Q) would be caught
    assert abs(2 * variance.mean() / spread - 1) > tol and abs(0.5 * variance.mean() / spread - 1) > tol
    if shift == 0:
        assert (est < 0).mean() > 0.3  # unbiased: about half the draws are negative at P = Q


def test_kid_grows_with_the_shift():
    x, shifts = normal((2000, 8), 20), (0.0, 0.2, 0.4, 0.8)
    values = [kid(x, normal((2000, 8), 21, shift=s)) for s in shifts]
    for shift, value in zip(shifts, values):  # one sample each: within 4 of its own SEs
        mmd2 = mmd2_isotropic_gaussians(np.zeros(8), np.full(8, shift))
        assert abs(value["kid"] - mmd2) <= 4 * value["se"], (shift, value, mmd2)
    for smaller, larger in itertools.pairwise(values):
        assert larger["kid"] - smaller["kid"] > 4 * math.hypot(larger["se"], smaller["se"])


# ------------------------------------------------------------------ bad input

X = normal((10, 3), 0)
BAD = [
    (lambda: precision_recall(X, X, k=0), ValueError, "k must be a positive int"),
    (lambda: precision_recall(X, X, k=2.0), ValueError, "k must be a positive int"),
    (lambda: precision_recall(X, X[:5], k=5), ValueError, "k must be smaller than the number of points"),
    (lambda: precision_recall(X, X, k=10), ValueError, "k must be smaller"),
    (lambda: precision_recall(X, X[:, :2]), ValueError, "real and fake must have the same feature dimension"),
    (lambda: precision_recall(X[:0], X), ValueError, "real must not be empty"),
    (lambda: precision_recall(X, torch.ones(10, 3, dtype=torch.int64)), TypeError, "fake must hold floating-point"),
    (lambda: precision_recall(X.numpy().astype(int), X), TypeError, "real must hold floating-point"),
    (lambda: precision_recall(X, X.clone().fill_(math.nan)), ValueError, "fake must be finite"),
    (lambda: precision_recall(X, X.clone().fill_(math.inf)), ValueError, "fake must be finite"),
    (lambda: precision_recall(X[0], X), ValueError, r"real must have shape \(n, d\) or \(seeds, n, d\)"),
    (lambda: precision_recall(X[None, None], X), ValueError, "real must have shape"),
    (lambda: precision_recall(X.expand(2, -1, -1), X.expand(3, -1, -1)), ValueError, "same number of seeds"),
    (lambda: precision_recall(X, X, chunk=0), ValueError, "chunk must be a positive int"),
    (lambda: kid(X, X[:, :2]), ValueError, "x and y must have the same feature dimension"),
    (lambda: kid(X, X[:3]), ValueError, "at least 4 points each"),
    (lambda: kid(X, X[:1], return_se=False), ValueError, "at least 2 points each"),
    (lambda: kid(X[:0], X), ValueError, "x must not be empty"),
    (lambda: kid(X, [["a", "b", "c"]] * 5), TypeError, "y must hold floating-point"),
    (lambda: kid(X, X.clone().fill_(math.nan)), ValueError, "y must be finite"),
    (lambda: kid(X[0], X), ValueError, "x must have shape"),
    (lambda: kid(X, X, return_se=1), ValueError, "return_se must be True or False"),
    (lambda: kid(X, X, chunk=-1), ValueError, "chunk must be a positive int"),
]


@pytest.mark.parametrize("call, error, match", BAD)
def test_bad_input_is_refused_with_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_smallest_valid_inputs_are_accepted():
    # control for the size checks: k = n - 1 and 4 points (2 without the SE) are enough
    assert precision_recall(X[:4], X[4:8], k=3)["precision"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert math.isfinite(kid(X[:4], X[4:8])["se"])
    assert math.isfinite(kid(X[:2], X[2:4], return_se=False))
