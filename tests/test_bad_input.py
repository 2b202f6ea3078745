"""Bad input everywhere: each public function names the parameter and what it expected.

One table across the modules; each case is a call that must raise ``ValueError`` or
``TypeError`` whose message matches the given pattern (the parameter's name, usually).
The per-module test files hold more cases next to the functions they test.
"""

import math

import numpy as np
import pytest
import torch

from gan_lab import data, losses, metrics, nets, plots, profile, results, theory, train

RING = data.ring()
X2, X3 = torch.randn(10, 2), torch.randn(10, 3)
NAN2 = torch.tensor([[math.nan, 0.0], [0.0, 1.0]])
TINY = dict(steps=2, batch_size=4, g_hidden=(4,), d_hidden=(4,), progress=False)

CASES = [
    # data
    (lambda: data.GaussianMixture([], 0.1), ValueError, "means must have shape"),
    (lambda: data.GaussianMixture([[0.0, 0.0]], -1.0), ValueError, "std must be > 0"),
    (lambda: data.GaussianMixture([[0.0, 0.0]], math.nan), ValueError, "std must be > 0 and finite"),
    (lambda: data.GaussianMixture([[math.nan, 0.0]], 0.1), ValueError, "means must be finite"),
    (lambda: data.GaussianMixture([[0.0, 0.0], [1, 1]], 0.1, weights=[-1, 2]), ValueError, "weights must be"),
    (lambda: data.GaussianMixture([[0.0, 0.0], [1, 1]], 0.1, weights=[1, 2, 3]), ValueError, "weights must have one"),
    (lambda: data.GaussianMixture([[0.0, 0.0], [1, 1]], 0.1, weights=[0, 0]), ValueError, "positive sum"),
    (lambda: data.GaussianMixture([[0.0, 0.0], [1, 1]], [0.1] * 3), ValueError, "std must be a scalar"),
    (lambda: RING.sample(-1), ValueError, "n must be a positive int"),
    (lambda: RING.sample(2.5), TypeError, "n must be a positive int"),
    (lambda: RING.log_prob(X3), ValueError, r"x must have shape \(\.\.\., 2\)"),
    (lambda: RING.log_prob(NAN2), ValueError, "x contains NaN"),
    (lambda: RING.log_prob("abc"), TypeError, "x must be an array"),
    (lambda: data.GaussianMixture([0.0], 1.0).icdf(torch.tensor([1.5])), ValueError, "u must lie"),
    (lambda: RING.cdf(X2), ValueError, "1-D mixtures only"),
    (lambda: data.ring(0), ValueError, "n_modes must be a positive int"),
    (lambda: data.ring(radius=-1), ValueError, "radius must be a finite number > 0"),
    (lambda: data.grid(0), ValueError, "side must be a positive int"),
    (lambda: data.grid(spacing=-1.0), ValueError, "spacing must be a finite number > 0"),
    (lambda: data.load_points(NAN2.numpy()), ValueError, "points must be finite"),
    (lambda: data.load_points(np.zeros((0, 2))), ValueError, "points must have shape"),
    (lambda: data.load_points(np.zeros((5, 3))), ValueError, "source must have 2 columns"),
    (lambda: data.load_points("/nonexistent/points.csv"), ValueError, "no such CSV file"),
    (lambda: data.swiss_roll(noise=-1), ValueError, "noise must be a finite number >= 0"),
    (lambda: data.swiss_roll(0), ValueError, "n_points must be a positive int"),
    (lambda: data.Noisy(RING, -1.0), ValueError, "std must be a finite number > 0"),
    (lambda: data.Noisy("ring", 0.1), TypeError, "base must have a .sample method"),
    (lambda: data.as_distribution(["a"]), TypeError, "source must hold numbers"),
    # losses
    (lambda: losses.discriminator_loss("foo", X2[:, 0], X2[:, 1]), ValueError, "loss must be one of"),
    (lambda: losses.discriminator_loss("ns", [1.0], [2.0]), TypeError, "real_logits must be a torch.Tensor"),
    (lambda: losses.discriminator_loss("ns", torch.empty(0), torch.empty(0)), ValueError, "real_logits must not be empty"),
    (lambda: losses.discriminator_loss("ns", torch.tensor([1, 2]), torch.tensor([1, 2])), TypeError, "floating-point"),
    (lambda: losses.discriminator_loss("ns", torch.randn(2, 3), torch.randn(3, 3), dim=-1), ValueError, "agree on all but"),
    (lambda: losses.generator_loss("wgan", X2[:, 0]), ValueError, "loss must be one of"),
    (lambda: losses.generator_loss("ns", torch.empty(0)), ValueError, "fake_logits must not be empty"),
    (lambda: losses.generator_loss("ns", torch.randn(3), dim=4), ValueError, "dim must be None or an int"),
    (lambda: losses.gaussian_kernel(X2, X2, 0.0), ValueError, "bandwidths must be finite and > 0"),
    (lambda: losses.gaussian_kernel(X2, X2, [-1.0]), ValueError, "bandwidths must be finite and > 0"),
    (lambda: losses.gaussian_kernel(X2, X3, 1.0), ValueError, "same dimension"),
    (lambda: losses.mmd2(X2[:1], X2[:1], 1.0), ValueError, "at least 2 sample"),
    (lambda: losses.mmd2(X2, X3, 1.0), ValueError, "same dimension"),
    (lambda: losses.mmd2(X2, X2, []), ValueError, "bandwidths must not be empty"),
    (lambda: losses.median_heuristic(X2[:1], X2[:0]), ValueError, "y must hold at least 1"),
    (lambda: losses.mmd_witness(X2, X2, 1.0, X3), ValueError, "same dimension"),
    (lambda: losses.gradient_penalty(lambda z: z.sum(-1), X2, X3), ValueError, "real and fake must have the same shape"),
    (lambda: losses.r1_penalty(None, X2), TypeError, "critic must be callable"),
    # metrics
    (lambda: metrics.mode_stats(X2, RING, threshold=0), ValueError, "threshold must be"),
    (lambda: metrics.mode_stats(X3, RING), ValueError, "samples must have shape"),
    (lambda: metrics.mode_stats(torch.empty(0, 2), RING), ValueError, "samples must not be empty"),
    (lambda: metrics.mode_stats(torch.full((5, 2), math.nan), RING), ValueError, "samples must not contain NaN"),
    (lambda: metrics.mode_stats(X2, "ring"), TypeError, "mixture must have means"),
    (lambda: metrics.wasserstein1(X2, X2[:5]), ValueError, "equal-size samples"),
    (lambda: metrics.wasserstein1(X2, X3), ValueError, "same dimension"),
    (lambda: metrics.wasserstein1(X2[:0], X2[:0]), ValueError, "x must not be empty"),
    (lambda: metrics.wasserstein1(torch.full((3, 2), math.nan), X2[:3]), ValueError, "x must be finite"),
    (lambda: metrics.mmd_permutation_test(X2, X2, 1.0, n_permutations=0), ValueError, "n_permutations"),
    (lambda: metrics.mmd_permutation_test(X2, X3, 1.0), ValueError, "same dimension"),
    # theory
    (lambda: theory.optimal_discriminator(RING, "q", X2), TypeError, "q must have a log_prob"),
    (lambda: theory.optimal_discriminator(RING, RING, X3), ValueError, "x must have shape"),
    (lambda: theory.jsd(RING, data.GaussianMixture([0.0], 1.0)), ValueError, "same dimension"),
    (lambda: theory.kl(RING, None), TypeError, "q must have a log_prob"),
    (lambda: theory.optimal_lsgan_discriminator(RING, RING, X2, a=1.0, b=1.0), ValueError, "a and b must differ"),
    (lambda: theory.mmd2_gaussians([0.0], 1.0, [0.0], 1.0, 0.0), ValueError, "bandwidth must be"),
    (lambda: theory.mmd2_gaussians([0.0], -1.0, [0.0], 1.0, 1.0), ValueError, "std_p must be"),
    (lambda: theory.wasserstein1_1d(RING, RING), ValueError, "p must be one-dimensional"),
    # nets
    (lambda: nets.SeedLinear(0, 2), ValueError, "in_features must be a positive int"),
    (lambda: nets.SeedLinear(2, 2, seeds=[]), ValueError, "seeds must be"),
    (lambda: nets.SeedLinear(2, 2, seeds=2)(torch.randn(3, 4, 5)), ValueError, "x must have shape"),
    (lambda: nets.MLPGenerator(activation="gelu2"), ValueError, "activation must be one of"),
    (lambda: nets.MLPGenerator(hidden=(0,)), ValueError, "hidden must be"),
    (lambda: nets.per_seed_grad_norm(torch.nn.Linear(2, 2)), ValueError, "no gradients yet"),
    # train
    (lambda: train.fit("nope.csv", **TINY), ValueError, "no such CSV file"),
    (lambda: train.fit(np.zeros((4, 2, 2)), **TINY), ValueError, "points must have shape"),
    (lambda: train.fit(RING, **{**TINY, "batch_size": 0}), ValueError, "batch_size must be a positive int"),
    (lambda: train.fit(RING, **{**TINY, "lr_g": math.nan}), ValueError, "lr_g must be a finite number"),
    (lambda: train.fit(RING, **TINY, checkpoint_every=-5), ValueError, "checkpoint_every"),
    (lambda: train.fit_discriminator(RING, data.GaussianMixture([0.0], 1.0), steps=1), ValueError, "same dimension"),
    (lambda: train.fit_mmd(RING, bandwidths=[0.0], steps=1), ValueError, "bandwidths must be finite"),
    (lambda: train.fit(RING, **TINY).sample(-3), ValueError, "n must be a positive int"),
    (lambda: train.fit(RING, **TINY, snapshot_every=1).at(10), ValueError, "index must be an int"),
    # plots, profile, results
    (lambda: plots.data_extent(torch.empty(0, 2)), ValueError, "points must be a non-empty"),
    (lambda: plots.data_extent(X2, margin=-1), ValueError, "margin must be"),
    (lambda: plots.plot_history(None, train.fit(RING, **TINY), "nope"), ValueError, "key must be one of"),
    (lambda: profile.device("tpu"), ValueError, "device must name a torch device"),
    (lambda: profile.seed_all(-1), ValueError, "seed must be a non-negative int"),
    (lambda: profile.start_chapter(""), ValueError, "title must be"),
    (lambda: results.save_json("/tmp/gan_lab_bad_input.json", {"a": math.nan}), ValueError, "obj must hold only finite"),
]


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("call, error, pattern", CASES, ids=[f"case{i:02d}" for i in range(len(CASES))])
def test_bad_input_raises_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_bad_profile_environment(monkeypatch):
    monkeypatch.setenv("GAN_LAB_PROFILE", "fast")
    with pytest.raises(ValueError, match="GAN_LAB_PROFILE must be one of"):
        profile.profile_name()


def test_bad_json_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        results.load_json(bad)
