"""Conditional GANs: networks, the training loop, per-class metrics and the conditional D*."""

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
import torch.nn.functional as F

from gan_lab import conditional as cg
from gan_lab import profile
from gan_lab.classifier import MNISTClassifier, accuracy
from gan_lab.distributions import GaussianMixture


@pytest.fixture(scope="module")
def digits():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3  # three classes, 20 images each
    images = torch.randint(0, 256, (60, 28, 28), generator=g, dtype=torch.uint8)
    return images, labels


def tiny(images, labels, **kw):
    base = {"n_classes": 3, "steps": 3, "batch_size": 8, "z_dim": 4, "width": 2, "progress": False}
    return cg.fit_conditional(images, labels, **{**base, **kw})


# --- labels at the boundary ----------------------------------------------------------------


@pytest.mark.parametrize("labels, match", [
    (torch.tensor([0, 1, -1]), r"labels must be classes in \[0, 3\)"),
    (torch.tensor([0, 3, 1]), r"labels must be classes in \[0, 3\)"),
    (torch.tensor([[0, 1, 2]]), r"labels must have shape \(3,\)"),
    (torch.tensor([0, 1]), r"labels must have shape \(3,\)"),
    (torch.tensor([0.0, 1.0, 2.0]), "labels must hold integer class labels"),
    (torch.tensor([True, False, True]), "labels must hold integer class labels"),
    (np.array([0.0, 1.0, 2.0]), "labels must hold integer class labels"),
    (["a", "b", "c"], "labels must hold integer class labels"),
])
def test_check_labels_refuses(labels, match):
    with pytest.raises(ValueError, match=match):
        cg.check_labels("labels", labels, 3, 3)


def test_check_labels_accepts_integer_arrays():
    out = cg.check_labels("labels", np.array([2, 0, 1], dtype=np.int32), 3, 3)
    assert out.dtype == torch.int64 and out.tolist() == [2, 0, 1]


@pytest.mark.parametrize("bad", [1, 0, -2, 2.0, True, None])
def test_n_classes_below_two_refused(bad):
    for build in (lambda: cg.ConditionalGenerator(n_classes=bad), lambda: cg.ConditionalDiscriminator(n_classes=bad),
                  lambda: cg.ConditionalConfig(n_classes=bad).validate()):
        with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
            build()


# --- networks ------------------------------------------------------------------------------


def test_generator_shapes_seed_and_label_dependence():
    G = cg.ConditionalGenerator(n_classes=3, z_dim=4, width=2, seed=5).eval()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    x0, x1 = G(z, torch.zeros(6, dtype=torch.long)), G(z, torch.ones(6, dtype=torch.long))
    assert x0.shape == (6, 1, 28, 28) and x0.abs().max() <= 1
    assert not torch.allclose(x0, x1)  # the label changes the image
    twin = cg.ConditionalGenerator(n_classes=3, z_dim=4, width=2, seed=5).eval()
    torch.testing.assert_close(twin(z, torch.zeros(6, dtype=torch.long)), x0, rtol=0, atol=0)
    # the label enters as its embedding, concatenated with z
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    torch.testing.assert_close(G(z, y), G.net(torch.cat([z, G.embed.weight[y]], 1)))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 4\)"):
        G(torch.randn(6, 5), y)


def test_projection_logit_is_psi_plus_inner_product():
    D = cg.ConditionalDiscriminator(n_classes=3, mode="projection", width=2, seed=1).eval()
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 2, 1, 1, 0])
    phi = D.features(x)
    expected = F.linear(phi, D.logit.weight, D.logit.bias)[:, 0] + (D.embed.weight[y] * phi).sum(1)
    torch.testing.assert_close(D(x, y), expected)
    with torch.no_grad():
        D.embed.weight.zero_()  # no class term: the logit no longer depends on y
    torch.testing.assert_close(D(x, y), D(x, torch.zeros(5, dtype=torch.long)))


def test_concat_discriminator_sees_one_hot_maps():
    D = cg.ConditionalDiscriminator(n_classes=3, mode="concat", width=2, seed=1).eval()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    y = torch.tensor([2, 0, 1, 2])
    conv = D.features[0]
    assert conv.in_channels == 4
    maps = torch.zeros(4, 3, 28, 28)
    maps[torch.arange(4), y] = 1.0
    h = F.conv2d(torch.cat([x, maps], 1), conv.weight, conv.bias, stride=2, padding=1)
    torch.testing.assert_close(D.features[1:](h), D.features(torch.cat([x, maps], 1)))
    expected = F.linear(D.features[1:](h), D.logit.weight, D.logit.bias)[:, 0]
    torch.testing.assert_close(D(x, y), expected)
    assert not torch.allclose(D(x, y), D(x, (y + 1) % 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        cg.ConditionalDiscriminator(mode="acgan")


# --- training ------------------------------------------------------------------------------


def test_fit_conditional_cpu_tensors_history_and_sampling(digits):
    images, labels = digits
    run = tiny(images, labels)
    assert set(run.history) == set(cg.HISTORY) and all(np.isfinite(v).all() and v.shape == (3,)
                                                       for v in run.history.values())
    np.testing.assert_array_equal(run.label_probs, np.full(3, 1 / 3))
    x = run.sample_per_class(4, torch.Generator().manual_seed(0))
    assert x.shape == (3, 4, 1, 28, 28) and x.device.type == "cpu" and x.abs().max() <= 1
    z = run.latent(5, torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1])
    torch.testing.assert_close(run.generate(z, y), run.generate(z, y))
    assert run.generate(z, y, ema=True).shape == (5, 1, 28, 28)
    assert run.logits(images[:5], y).shape == (5,)
    # sample_per_class(n) is generate() on the codes drawn in order, labels 0..0, 1..1, ...
    z6 = run.latent(6, torch.Generator().manual_seed(3))
    torch.testing.assert_close(run.sample_per_class(2, torch.Generator().manual_seed(3)).reshape(6, 1, 28, 28),
                               run.generate(z6, torch.arange(3).repeat_interleave(2)))


def test_fit_conditional_is_deterministic_and_follows_the_base_seed(digits, monkeypatch):
    images, labels = digits
    a, b = tiny(images, labels, seed=4), tiny(images, labels, seed=4)
    np.testing.assert_array_equal(a.history["d_loss"], b.history["d_loss"])
    monkeypatch.setenv("GAN_LAB_SEED", "1")
    shifted = tiny(images, labels, seed=4)
    assert shifted.first_seed == 4 + profile.SEED_STRIDE and shifted.config.seed == 4
    monkeypatch.setenv("GAN_LAB_SEED", "0")
    direct = tiny(images, labels, seed=4 + profile.SEED_STRIDE)
    np.testing.assert_array_equal(shifted.history["d_loss"], direct.history["d_loss"])
    assert not np.array_equal(shifted.history["d_loss"], a.history["d_loss"])


def test_fit_conditional_refuses_bad_input(digits):
    images, labels = digits
    with pytest.raises(ValueError, match=r"labels must have shape \(60,\)"):
        tiny(images, labels[:59])
    with pytest.raises(ValueError, match=r"labels must be classes in \[0, 3\)"):
        tiny(images, labels + 1)
    with pytest.raises(ValueError, match="labels must hold integer class labels"):
        tiny(images, labels.float())
    with pytest.raises(ValueError, match="labels must be given"):
        tiny(images, None)
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        tiny(images, labels * 0, n_classes=1)
    with pytest.raises(ValueError, match="discriminator must be one of"):
        tiny(images, labels, discriminator="acgan")
    with pytest.raises(TypeError, match="unknown ConditionalConfig"):
        tiny(images, labels, penalty="r1")
    run = tiny(images, labels, ema=None)
    z = run.latent(3)
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        run.generate(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must be classes in \[0, 3\)"):
        run.generate(z, torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="labels must hold integer"):
        run.sample(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="kept no EMA"):
        run.generate(z, torch.tensor([0, 1, 2]), ema=True)
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        run.logits(images[:2], torch.tensor([0, 1, 2]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_conditional_on_cuda_returns_cpu_tensors(digits):
    images, labels = digits
    run = tiny(images, labels, device="cuda")
    assert run.device.type == "cuda"
    x = run.sample_per_class(2, torch.Generator().manual_seed(0))
    assert x.device.type == "cpu" and torch.isfinite(x).all()
    assert run.logits(images[:3], torch.tensor([0, 1, 2])).device.type == "cpu"


# --- per-class metrics ---------------------------------------------------------------------


class PixelClassifier(torch.nn.Module):
    """Predicts class ``round(4.5 * (x[0, 0] + 1))``: a classifier whose answers we know."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        c = torch.round(4.5 * (x[:, 0, 0, 0] + 1)).long().clamp(0, 9)
        return F.one_hot(c, 10).float() + 0 * self.dummy


def coded_images(codes):
    x = torch.zeros(len(codes), 1, 28, 28)
    x[:, 0, 0, 0] = torch.as_tensor(codes, dtype=torch.float32) / 4.5 - 1
    return x


def test_per_class_accuracy_against_brute_force():
    rng = np.random.default_rng(0)
    labels = torch.as_tensor(rng.integers(0, 10, 400))
    predicted = np.where(rng.random(400) < 0.7, labels.numpy(), rng.integers(0, 10, 400))
    x, clf = coded_images(predicted), PixelClassifier()
    acc = cg.per_class_accuracy(clf, x, labels)
    brute = [np.mean(predicted[labels.numpy() == c] == c) for c in range(10)]
    np.testing.assert_allclose(acc, brute, rtol=0, atol=1e-12)
    # a "generator" that returns real digits of the class scores the classifier's accuracy on them
    counts = np.bincount(labels.numpy(), minlength=10)
    np.testing.assert_allclose((acc * counts).sum() / 400, accuracy(clf, x, labels), rtol=1e-12)
    # the per-class stack gives the same numbers
    stack = torch.stack([coded_images(np.full(5, (c + k) % 10)) for c, k in zip(range(10), [0, 1] * 5)])
    np.testing.assert_array_equal(cg.per_class_accuracy(clf, stack), np.tile([1.0, 0.0], 5))
    with pytest.raises(ValueError, match=r"labels must have shape \(400,\)"):
        cg.per_class_accuracy(clf, x, labels[:3])
    with pytest.raises(ValueError, match="labels must be None"):
        cg.per_class_accuracy(clf, stack, labels)
    with pytest.raises(ValueError, match="n_classes=10 rows"):
        cg.per_class_accuracy(clf, stack[:4])


def _fid_oracle(fa: np.ndarray, fb: np.ndarray) -> float:
    """FID written out with scipy's matrix square root (independent of metrics.frechet_distance)."""
    s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((fa.mean(0) - fb.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_class_fid_against_scipy_and_the_zero_case():
    torch.manual_seed(0)
    clf = MNISTClassifier(channels=(2, 2), hidden=3).eval()
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (90, 28, 28), generator=g, dtype=torch.uint8)
    real_labels = torch.arange(90) % 3
    fake = torch.rand(60, 1, 28, 28, generator=g) * 2 - 1
    fake_labels = torch.arange(60) % 3
    fid = cg.class_fid(fake, fake_labels, real, real_labels, clf, n_classes=3)
    for c in range(3):
        fa = clf.features(fake[fake_labels == c]).detach().double().numpy()
        fb = clf.features(real[real_labels == c].float()[:, None] / 127.5 - 1).detach().double().numpy()
        assert fid[c] == pytest.approx(_fid_oracle(fa, fb), rel=1e-6, abs=1e-9)
    # a "generator" that returns the real digits of each class is at distance 0
    np.testing.assert_allclose(cg.class_fid(real, real_labels, real, real_labels, clf, 3), 0, atol=1e-8)
    with pytest.raises(ValueError, match="class 2 needs at least 2 images"):
        cg.class_fid(fake[:5], fake_labels[:5], real, real_labels, clf, n_classes=3)


# --- the conditional D* on a labelled mixture ----------------------------------------------


CORNERS = [[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]


def _scipy_conditional_pdf(means, stds, weights, groups, x, y):
    """p(x | y) by scipy's normal densities, summed over the components of label y."""
    out = np.zeros(len(x))
    for i, (xi, yi) in enumerate(zip(x, y)):
        members = [k for k in range(len(means)) if groups[k] == yi]
        num = sum(weights[k] * scipy.stats.multivariate_normal(means[k], stds[k] ** 2).pdf(xi) for k in members)
        out[i] = num / sum(weights[k] for k in members)
    return out


def test_optimal_conditional_logit_against_scipy():
    p = GaussianMixture(CORNERS, [0.5, 0.6, 0.7, 0.8], weights=[1, 2, 3, 4])
    q = GaussianMixture([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], 0.9, weights=[2, 1, 1])
    gp, gq = [0, 1, 1, 0], [1, 0, 1]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 2)) * 1.5, rng.integers(0, 2, 50)
    exact = cg.optimal_conditional_logit(p, q, torch.as_tensor(x), torch.as_tensor(y), gp, gq).numpy()
    oracle = (np.log(_scipy_conditional_pdf(CORNERS, [0.5, 0.6, 0.7, 0.8], np.array([1, 2, 3, 4]) / 10, gp, x, y))
              - np.log(_scipy_conditional_pdf([[0, 0], [2, 0], [0, 2]], [0.9] * 3, [0.5, 0.25, 0.25], gq, x, y)))
    np.testing.assert_allclose(exact, oracle, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(cg.label_probs(p, gp), torch.tensor([0.5, 0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="same labels"):
        cg.optimal_conditional_logit(p, q, torch.as_tensor(x), torch.as_tensor(y), [0, 1, 2, 0], gq)
    with pytest.raises(ValueError, match=r"groups must have shape \(4,\)"):
        cg.conditional_log_prob(p, x, y, [0, 1])
    with pytest.raises(ValueError, match="at least 2 labels"):
        cg.conditional_log_prob(p, x, y, [0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"y must be classes in \[0, 2\)"):
        cg.conditional_log_prob(p, x, y + 1, gp)


def test_labelled_sample_matches_the_joint_and_the_conditionals():
    p = GaussianMixture(CORNERS, 0.3, weights=[1, 2, 3, 4])
    groups = [0, 1, 1, 0]
    n = 40_000
    _x, y = cg.labelled_sample(p, n, groups, torch.Generator().manual_seed(0))
    freq = torch.bincount(y, minlength=2).double() / n
    probs = cg.label_probs(p, groups)  # (0.5, 0.5)
    se = (probs * (1 - probs) / n).sqrt()
    assert torch.all((freq - probs).abs() < 4 * se)
    # conditional sampling: the mean of x given y = 1 is the weighted mean of components 1 and 2
    xs, _ = cg.labelled_sample(p, n, groups, torch.Generator().manual_seed(1), labels=torch.ones(n, dtype=torch.long))
    w = torch.tensor([2.0, 3.0]) / 5
    mean = (w[:, None] * torch.tensor(CORNERS)[[1, 2]]).sum(0)
    se_mean = xs.std(0) / n ** 0.5
    assert torch.all((xs.mean(0) - mean).abs() < 4 * se_mean)


def test_trained_conditional_discriminator_approaches_the_exact_logit():
    # q swaps the labels of p: q(x) = p(x), so an unconditional D's best logit is 0, while the
    # conditional D* = log p(x|y) - log p(x|1-y) depends on y.
    p = GaussianMixture(CORNERS, 0.7)
    gp, gq = [0, 1, 0, 1], [1, 0, 1, 0]
    g = torch.Generator().manual_seed(7)
    x_real, y = cg.labelled_sample(p, 3000, gp, g)
    x_fake, _ = cg.labelled_sample(p, 3000, gq, g, labels=y)
    x, yy = torch.cat([x_real, x_fake]), torch.cat([y, y])
    exact = cg.optimal_conditional_logit(p, p, x, yy, gp, gq)
    floor = float(exact.pow(2).mean().sqrt())  # the best label-blind D's RMS error (its logit is 0)
    kw = {"seeds": (0, 1, 2), "steps": 400, "batch_size": 256, "hidden": 32}
    rmse = {}
    for cond in (True, False):
        nets = cg.fit_conditional_2d(p, p, gp, gq, conditional=cond, **kw)
        with torch.no_grad():
            rmse[cond] = np.array([float((D(x, yy).double() - exact).pow(2).mean().sqrt()) for D in nets])
    assert np.all(rmse[True] < 0.35 * floor), (rmse, floor)
    assert np.all(rmse[False] > 0.95 * floor), (rmse, floor)  # the control cannot follow y
