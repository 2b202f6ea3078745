"""2-D distributions: Gaussian mixtures (densities against scipy, sampling, CDF), point clouds, the Swiss roll."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.testing import assert_close

from gan_lab import distributions


def test_ring_and_grid_centres():
    r = distributions.ring(n_modes=8, radius=1.0, std=0.01)
    angles = torch.atan2(r.means[:, 1], r.means[:, 0])
    assert_close(r.means.norm(dim=1), torch.ones(8, dtype=torch.float64))
    diffs = torch.remainder(torch.diff(angles), 2 * math.pi)
    assert_close(diffs, torch.full((7,), 2 * math.pi / 8, dtype=torch.float64))
    g = distributions.grid()
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(p) for p in g.means.round().int().tolist()} == expected
    assert_close(g.stds, torch.full((25,), 0.05, dtype=torch.float64))
    assert_close(g.weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_log_prob_matches_scipy_2d():
    means = np.array([[0.0, 0.0], [2.0, -1.0], [-1.0, 3.0]])
    stds = np.array([0.5, 1.0, 2.0])
    weights = np.array([0.2, 0.5, 0.3])
    gm = distributions.GaussianMixture(means, stds, weights)
    x = np.random.default_rng(0).normal(size=(50, 2)) * 2
    oracle = sum(w * stats.multivariate_normal(m, s**2 * np.eye(2)).pdf(x) for m, s, w in zip(means, stds, weights))
    assert_close(gm.log_prob(torch.as_tensor(x)), torch.as_tensor(np.log(oracle)))


def test_log_prob_1d_accepts_plain_points_and_integrates_to_one():
    gm = distributions.GaussianMixture([-2.0, 1.0], [0.5, 1.5], [0.3, 0.7])
    x = torch.linspace(-15, 15, 30001, dtype=torch.float64)
    total = torch.trapezoid(gm.log_prob(x).exp(), x)
    assert_close(total, torch.tensor(1.0, dtype=torch.float64), atol=1e-8, rtol=0)
    assert gm.log_prob(x).shape == x.shape


def test_sample_moments_and_shapes():
    gm = distributions.GaussianMixture([[0.0, 0.0], [4.0, 0.0]], 0.5, [0.25, 0.75])
    g = torch.Generator().manual_seed(0)
    x = gm.sample(200_000, rng=g)
    assert x.shape == (200_000, 2) and x.dtype == torch.float32
    # mean = 0.75 * 4 = 3; var_x = 0.25 + 0.25*0.75*16 = 3.25
    assert_close(x.double().mean(0), torch.tensor([3.0, 0.0], dtype=torch.float64), atol=0.02, rtol=0)
    assert_close(x.double().var(0), torch.tensor([3.25, 0.25], dtype=torch.float64), atol=0.03, rtol=0)
    assert gm.sample((3, 7)).shape == (3, 7, 2)


def test_sample_is_reproducible_with_generator():
    gm = distributions.ring()
    a = gm.sample(100, rng=torch.Generator().manual_seed(5))
    b = gm.sample(100, rng=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_cdf_and_icdf_against_scipy():
    gm = distributions.GaussianMixture([-2.0, 1.0], [0.5, 1.5], [0.3, 0.7])
    x = np.linspace(-5, 6, 23)
    oracle = 0.3 * stats.norm(-2, 0.5).cdf(x) + 0.7 * stats.norm(1, 1.5).cdf(x)
    assert_close(gm.cdf(torch.as_tensor(x)), torch.as_tensor(oracle))
    u = torch.tensor([1e-6, 0.01, 0.3, 0.5, 0.9, 0.999999], dtype=torch.float64)
    assert_close(gm.cdf(gm.icdf(u)), u, atol=1e-9, rtol=0)


def test_icdf_against_scipy_root_finding_and_normal_quantiles():
    """Chapter 1's mixture: quantiles from Brent's method on SciPy's CDF; one component: norm.ppf."""
    from scipy.optimize import brentq

    gm = distributions.GaussianMixture([-2.0, 1.5], [0.5, 0.8], [0.3, 0.7])

    def cdf(x):
        return 0.3 * stats.norm(-2, 0.5).cdf(x) + 0.7 * stats.norm(1.5, 0.8).cdf(x)

    u = np.array([1e-8, 0.05, 0.25, 0.3, 0.5, 0.75, 0.95, 1 - 1e-8])
    oracle = [brentq(lambda x, p=p: cdf(x) - p, -30, 30, xtol=1e-13) for p in u]
    assert_close(gm.icdf(torch.as_tensor(u)), torch.as_tensor(oracle, dtype=torch.float64), atol=1e-8, rtol=0)
    one = distributions.GaussianMixture([0.7], 1.3)
    assert_close(one.icdf(torch.as_tensor(u)), torch.as_tensor(stats.norm(0.7, 1.3).ppf(u)), atol=1e-8, rtol=0)
    assert one.icdf(torch.tensor([[0.2, 0.6]])).shape == (1, 2)  # any shape in, the same shape out


def test_point_cloud_from_array_and_csv(tmp_path):
    pts = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    cloud = distributions.load_points(pts)
    s = cloud.sample((2, 1000), rng=torch.Generator().manual_seed(0))
    assert s.shape == (2, 1000, 2)
    # every sample is one of the points; all three appear
    assert {tuple(p) for p in s.reshape(-1, 2).tolist()} == {tuple(p) for p in pts.tolist()}
    path = tmp_path / "points.csv"
    path.write_text("x,y\n0,1\n2,3\n4,5\n")
    assert torch.equal(distributions.load_points(path).points, cloud.points)
    path2 = tmp_path / "noheader.csv"
    path2.write_text("0,1\n2,3\n")
    assert len(distributions.load_points(str(path2))) == 2


def test_as_distribution_passes_mixtures_through():
    r = distributions.ring()
    assert distributions.as_distribution(r) is r
    assert isinstance(distributions.as_distribution(np.zeros((4, 2))), distributions.PointCloud)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(means=[[0.0, 0.0]], std=0.0), "std"),
        (dict(means=[[0.0, 0.0]], std=-1.0), "std"),
        (dict(means=[[0.0, 0.0], [1.0, 1.0]], std=[1.0, 2.0, 3.0]), "std"),
        (dict(means=[[0.0, 0.0]], std=1.0, weights=[1.0, 2.0]), "weights"),
        (dict(means=[[0.0, 0.0], [1.0, 1.0]], std=1.0, weights=[-1.0, 2.0]), "weights"),
        (dict(means=[[[0.0]]], std=1.0), "means"),
        (dict(means=[[np.nan, 0.0]], std=1.0), "means"),
    ],
)
def test_mixture_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distributions.GaussianMixture(**kwargs)


def test_bad_input_elsewhere(tmp_path):
    with pytest.raises(ValueError, match="n must be"):
        distributions.ring().sample(0)
    with pytest.raises(ValueError, match="shape"):
        distributions.ring().log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="1-D"):
        distributions.ring().cdf(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="u must"):
        distributions.GaussianMixture([0.0], 1.0).icdf(torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="n_modes"):
        distributions.ring(n_modes=0)
    with pytest.raises(ValueError, match="spacing"):
        distributions.grid(spacing=-1)
    with pytest.raises(ValueError, match="2 columns"):
        distributions.load_points(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="points must have shape"):
        distributions.load_points(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="finite"):
        distributions.load_points(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="no such CSV"):
        distributions.load_points(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,a\n")
    with pytest.raises(ValueError, match="CSV"):
        distributions.load_points(bad)


def test_swiss_roll_and_noisy():
    roll = distributions.swiss_roll(n_points=1000)
    assert len(roll) == 1000 and roll.dim == 2
    r = roll.points.norm(dim=1)
    # radius t/scale with t in [1.5 pi, 4.5 pi], up to the noise
    assert r.min() > 1.5 * math.pi / 7.5 - 0.2 and r.max() < 4.5 * math.pi / 7.5 + 0.2
    base = distributions.GaussianMixture([[0.0, 0.0]], 0.1)
    noisy = distributions.Noisy(base, 0.2)
    x = noisy.sample(100_000, rng=torch.Generator().manual_seed(0)).double()
    # variance adds: 0.1^2 + 0.2^2 = 0.05 per axis
    assert_close(x.var(0), torch.tensor([0.05, 0.05], dtype=torch.float64), atol=1.5e-3, rtol=0)
    with pytest.raises(ValueError, match="std"):
        distributions.Noisy(base, 0.0)
    with pytest.raises(TypeError, match="base"):
        distributions.Noisy([1, 2], 0.1)
    with pytest.raises(ValueError, match="n_points"):
        distributions.swiss_roll(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (runs in python -m gan_lab.gpu_check)")
def test_sampling_on_cuda_accepts_either_name_of_the_device():
    """'cuda' and the generator's 'cuda:0' name one device: no spurious mismatch error."""
    rng = torch.Generator("cuda").manual_seed(0)
    x = distributions.ring().sample(5, rng=rng, device="cuda")
    assert x.device.type == "cuda" and x.shape == (5, 2)
    with pytest.raises(ValueError, match="differs from the device of rng"):
        distributions.ring().sample(5, rng=rng, device="cpu")


def test_point_sets_as_the_metrics_take_them():
    x, batched = distributions.as_point_sets("x", np.arange(3.0))
    assert x.shape == (1, 3, 1) and x.dtype == torch.float64 and not batched
    x, batched = distributions.as_point_sets("x", torch.zeros(2, 5, 3))
    assert x.shape == (2, 5, 3) and batched
    xs, ys, batched = distributions.as_point_pair(torch.zeros(4, 2), torch.ones(3, 6, 2))
    assert xs.shape == (3, 4, 2) and ys.shape == (3, 6, 2) and batched
    with pytest.raises(ValueError, match="x must be finite"):
        distributions.as_point_sets("x", [math.nan, 1.0])
    with pytest.raises(ValueError, match="same dimension"):
        distributions.as_point_pair(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="same number of seeds"):
        distributions.as_point_pair(torch.zeros(2, 4, 2), torch.zeros(3, 4, 2))


class _OldStyle:
    """A user's distribution whose sampler still calls its generator ``generator``."""

    dim = 2

    def sample(self, n, generator=None, device=None, dtype=torch.float32):
        return distributions.ring().sample(n, generator, device=device, dtype=dtype)


@pytest.mark.parametrize("dist", [distributions.ring(), distributions.PointCloud(np.eye(2)),
                                  distributions.Noisy(distributions.ring(), 0.1)], ids=repr)
def test_sample_still_accepts_the_old_keyword_generator(dist):
    """``generator=`` (the name before ``rng``) gives the same draw; passing both is refused."""
    new = dist.sample(8, rng=torch.Generator().manual_seed(3))
    assert torch.equal(dist.sample(8, generator=torch.Generator().manual_seed(3)), new)
    assert torch.equal(dist.sample(8, torch.Generator().manual_seed(3)), new)
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        dist.sample(8, rng=torch.Generator(), generator=torch.Generator())
    # the package passes the generator positionally, so an old-style base works under Noisy
    noisy = distributions.Noisy(_OldStyle(), 0.1).sample(4, rng=torch.Generator().manual_seed(3))
    assert noisy.shape == (4, 2)
