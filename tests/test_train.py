import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab import data, losses, train
from gan_lab.nets import MLPDiscriminator, MLPGenerator

SMALL = dict(steps=30, batch_size=32, g_hidden=(16,), d_hidden=(16,), progress=False)


def test_history_and_sample_shapes():
    run = train.fit(data.ring(), seeds=3, **SMALL)
    assert run.sample(7).shape == (3, 7, 2)
    assert set(run.history) == {"d_loss", "penalty", "g_loss", "real_logit", "fake_logit", "g_grad_norm"}
    for v in run.history.values():
        assert v.shape == (30, 3) and np.isfinite(v).all()
    assert "seeds=3" in repr(run)


def test_first_d_loss_matches_manual_computation():
    """Re-run the first D step by hand with the same seeds and random stream."""
    cfg = train.TrainConfig(loss="ns", steps=1, seeds=2, batch_size=16, g_hidden=(8,), d_hidden=(8,), device="cpu")
    run = train.fit(data.ring(), cfg, progress=False)
    G = MLPGenerator(2, 2, (8,), [0, 2])
    D = MLPDiscriminator(2, (8,), [1, 3])
    rng = torch.Generator().manual_seed(0)
    x_real = data.ring().sample((2, 16), rng=rng)
    z = torch.randn(2, 16, 2, generator=rng)
    expected = losses.discriminator_loss("ns", D(x_real), D(G(z)), dim=-1)
    assert_close(torch.as_tensor(run.history["d_loss"][0]), expected.detach())


def test_summed_seed_losses_give_each_seed_its_own_gradient():
    """Summing per-seed losses before backward gives slot i exactly the gradient that
    network i would get alone, so batching seeds does not mix their updates."""
    G = MLPGenerator(2, 2, (16,), [0, 2])
    G_alone = MLPGenerator(2, 2, (16,), [2])
    z = torch.randn(2, 9, 2)
    losses.generator_loss("ns", G(z)[..., 0], dim=-1).sum().backward()
    losses.generator_loss("ns", G_alone(z[1:])[..., 0], dim=-1).sum().backward()
    for p, p_alone in zip(G.parameters(), G_alone.parameters()):
        assert_close(p.grad[1], p_alone.grad[0])


def test_training_moves_samples_onto_the_ring():
    ring = data.ring(std=0.05)
    run = train.fit(ring, steps=600, seeds=2, batch_size=128, snapshot_every=600, progress=False)
    def mean_dist(r):
        x = r.sample(500, rng=torch.Generator().manual_seed(0)).double()
        return torch.cdist(x, ring.means.expand(2, -1, -1)).min(-1).values.mean(-1)
    before, after = mean_dist(run.at(0)), mean_dist(run)
    assert (after < 0.5 * before).all(), (before, after)
    assert len(run.snapshots) == 2 and run.snapshots[-1].step == 600


def test_point_cloud_input_array_and_csv(tmp_path):
    pts = np.random.default_rng(0).normal(size=(200, 2))
    run = train.fit(pts, **SMALL)
    assert run.sample(4).shape == (1, 4, 2)
    path = tmp_path / "pts.csv"
    np.savetxt(path, pts, delimiter=",", header="x,y", comments="")
    assert train.fit(str(path), **SMALL).sample(3).shape == (1, 3, 2)


def test_n_critic_and_clip():
    run = train.fit(data.ring(), loss="wasserstein", n_critic=3, clip=0.01, optimizer="rmsprop", **SMALL)
    weights = run.weights("discriminator")  # (S, P)
    assert np.abs(weights).max() <= 0.01 + 1e-7
    assert (np.abs(weights) > 0.01 - 1e-7).mean() > 0.1  # control: clipping is active, not vacuous


@pytest.mark.parametrize("kind", losses.KINDS)
def test_every_loss_trains(kind):
    run = train.fit(data.ring(), loss=kind, **SMALL)
    assert np.isfinite(run.history["g_loss"]).all()


def test_same_seed_same_result():
    a = train.fit(data.ring(), seeds=2, **SMALL)
    b = train.fit(data.ring(), seeds=2, **SMALL)
    assert np.array_equal(a.history["g_loss"], b.history["g_loss"])
    c = train.fit(data.ring(), seeds=2, seed=5, **SMALL)
    assert not np.array_equal(a.history["g_loss"], c.history["g_loss"])


def test_progress_bar_prints_to_stderr(capsys):
    train.fit(data.ring(), steps=3, batch_size=8, g_hidden=(4,), d_hidden=(4,), progress=True)
    assert "3/3" in capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(loss="vanilla"), "loss must be one of"),
        (dict(steps=0), "steps"),
        (dict(seeds=-1), "seeds"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(lr_d=0.0), "lr_d"),
        (dict(lr_g=float("nan")), "lr_g"),
        (dict(betas=(0.5, 1.0)), "betas"),
        (dict(clip=0.0), "clip"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(n_critic=0), "n_critic"),
        (dict(snapshot_every=0), "snapshot_every"),
        (dict(cpu_threads=0), "cpu_threads"),
    ],
)
def test_bad_config(overrides, match):
    with pytest.raises(ValueError, match=match):
        train.fit(data.ring(), progress=False, **overrides)


def test_unknown_field_and_snapshotless_at():
    with pytest.raises(TypeError, match="lerning_rate"):
        train.fit(data.ring(), lerning_rate=1.0)
    run = train.fit(data.ring(), **SMALL)
    with pytest.raises(ValueError, match="snapshot_every"):
        run.at(0)
    with pytest.raises(ValueError, match="n must be"):
        run.sample(0)


def test_fit_discriminator_approaches_the_optimal_discriminator():
    from gan_lab import theory

    p, q = data.GaussianMixture([0.0], 1.0), data.GaussianMixture([2.0], 1.0)
    critic = train.fit_discriminator(p, q, steps=400, seeds=2, batch_size=256, d_hidden=(32,), progress=False)
    x = torch.linspace(-1.5, 3.5, 21)
    d = critic.probabilities(x[:, None])  # (2, 21): CPU in, CPU out
    d_star = theory.optimal_discriminator(p, q, x[:, None]).float()
    assert_close(d, d_star.expand(2, -1), atol=0.1, rtol=0)
    assert critic.history["d_loss"].shape == (400, 2)
    with pytest.raises(ValueError, match="same dimension"):
        train.fit_discriminator(p, data.ring(), steps=1, progress=False)


def test_cpu_threads_are_restored_after_training():
    before = torch.get_num_threads()
    train.fit(data.ring(), cpu_threads=1, **SMALL)
    assert torch.get_num_threads() == before
    a = train.fit(data.ring(), cpu_threads=1, **SMALL)
    b = train.fit(data.ring(), cpu_threads=None, **SMALL)
    np.testing.assert_allclose(a.history["g_loss"], b.history["g_loss"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("penalty", ["wgan-gp", "r1"])
def test_gradient_penalties_in_the_critic_step(penalty):
    run = train.fit(data.ring(), loss="wasserstein" if penalty == "wgan-gp" else "ns", penalty=penalty,
                    penalty_weight=2.0, n_critic=2, **SMALL)
    assert (run.history["penalty"] > 0).all() and np.isfinite(run.history["penalty"]).all()
    plain = train.fit(data.ring(), loss="ns", **SMALL)
    assert (plain.history["penalty"] == 0).all()
    with pytest.raises(ValueError, match="penalty must be one of"):
        train.fit(data.ring(), penalty="gp", **SMALL)
    with pytest.raises(ValueError, match="penalty_weight"):
        train.fit(data.ring(), penalty="r1", penalty_weight=-1.0, **SMALL)


def test_critic_with_gradient_penalty_estimates_w1_between_shifted_gaussians():
    """-L_D of an optimal 1-Lipschitz critic is W1; for N(0, I) vs N((1, 0), I) that is 1.

    (In 2-D on purpose: in 1-D a critic that starts with the wrong slope cannot turn it
    round without passing through zero gradient, where the two-sided penalty is lambda,
    so it stays stuck near slope +1 - 1/(2 lambda).)"""
    p, q = data.GaussianMixture([[0.0, 0.0]], 1.0), data.GaussianMixture([[1.0, 0.0]], 1.0)
    critic = train.fit_discriminator(p, q, loss="wasserstein", penalty="wgan-gp", steps=600, seeds=3,
                                     batch_size=512, d_hidden=(32, 32), lr_d=1e-3, betas=(0.5, 0.9), progress=False)
    w1_estimate = -critic.history["d_loss"][-100:].mean(0)  # (seeds,)
    np.testing.assert_allclose(w1_estimate, 1.0, atol=0.1)
    assert (critic.history["penalty"][-100:].mean(0) > 0).all()


def test_fit_mmd_fixed_kernel_and_learned_features():
    ring = data.ring(std=0.05)
    gmmn = train.fit_mmd(ring, steps=300, seeds=2, batch_size=128, g_hidden=(32, 32), progress=False)
    first, last = gmmn.history["mmd2"][:20].mean(0), gmmn.history["mmd2"][-20:].mean(0)
    assert (last < 0.5 * first).all(), (first, last)
    assert gmmn.discriminator is None and gmmn.sample(5).shape == (2, 5, 2)
    mmdgan = train.fit_mmd(ring, features=4, n_critic=2, steps=20, seeds=2, batch_size=64,
                           g_hidden=(16,), d_hidden=(16,), progress=False)
    assert "critic_mmd2" in mmdgan.history
    assert np.abs(mmdgan.weights("discriminator")).max() <= 0.01 + 1e-7
    with pytest.raises(ValueError, match="bandwidths"):
        train.fit_mmd(ring, bandwidths=(0.0,), steps=2, progress=False)
    with pytest.raises(ValueError, match="features"):
        train.fit_mmd(ring, features=0, steps=2, progress=False)


def test_run_latent_and_sample_still_accept_the_old_keyword_generator():
    run = train.fit(data.ring(), seeds=2, **{**SMALL, "steps": 2})
    for method in (run.latent, run.sample):
        new = method(5, rng=torch.Generator().manual_seed(4))
        assert torch.equal(method(5, generator=torch.Generator().manual_seed(4)), new)
        assert torch.equal(method(5, torch.Generator().manual_seed(4)), new)
        with pytest.raises(TypeError, match="'generator'.*'rng'"):
            method(5, rng=torch.Generator(), generator=torch.Generator())
