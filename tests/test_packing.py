"""Packing (PacGAN), the PacGAN 2-D networks and simultaneous updates in the training loop."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gan_lab import devices, data, losses, nets, train

SMALL = dict(steps=6, batch_size=16, g_hidden=(8,), d_hidden=(8,), progress=False, device="cpu")


def _pack_by_hand(x, m):
    """Pack b of seed s is the concatenation of points b*m, ..., b*m + m - 1 (a plain loop)."""
    S, n, d = x.shape
    return torch.stack([torch.stack([torch.cat([x[s, b * m + j] for j in range(m)]) for b in range(n // m)])
                        for s in range(S)])


def test_pack_samples_hand_checked():
    x = torch.arange(2 * 6 * 2, dtype=torch.float32).reshape(2, 6, 2)
    packed = train.pack_samples(x, 3)
    assert packed.shape == (2, 2, 6)
    assert packed[0, 1].tolist() == [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]  # points 3, 4, 5 of seed 0
    assert_close(packed, _pack_by_hand(x, 3))
    assert train.pack_samples(x, 1) is not None and torch.equal(train.pack_samples(x, 1), x)
    with pytest.raises(ValueError, match="multiple of pack"):
        train.pack_samples(x, 4)
    with pytest.raises(ValueError, match="pack must be"):
        train.pack_samples(x, 0)


def _reference_run(pack, steps, seeds=2, B=16, lr=1e-3, kind="ns"):
    """An independent, written-out alternating loop: the behaviour fit() had before packing
    existed (pack=1), and PacGAN packing by an explicit loop (pack > 1)."""
    G = nets.MLPGenerator(2, 2, (8,), [2 * s for s in range(seeds)])
    D = nets.MLPDiscriminator(2 * pack, (8,), [2 * s + 1 for s in range(seeds)])
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(0)
    ring, d_hist, g_hist = data.ring(), [], []
    for _ in range(steps):
        x_real = _pack_by_hand(ring.sample((seeds, B * pack), rng=rng), pack)
        z = torch.randn(seeds, B * pack, 2, generator=rng)
        with torch.no_grad():
            x_fake = _pack_by_hand(G(z), pack)
        d_loss = losses.discriminator_loss(kind, D(x_real), D(x_fake), dim=-1)
        opt_d.zero_grad()
        d_loss.sum().backward()
        opt_d.step()
        z = torch.randn(seeds, B * pack, 2, generator=rng)
        g_loss = losses.generator_loss(kind, D(_pack_by_hand(G(z), pack)), dim=-1)
        opt_g.zero_grad()
        g_loss.sum().backward()
        opt_g.step()
        d_hist.append(d_loss.detach())
        g_hist.append(g_loss.detach())
    return torch.stack(d_hist).numpy(), torch.stack(g_hist).numpy()


def test_pack_one_is_bit_identical_to_the_unpacked_loop():
    run = train.fit(data.ring(), seeds=2, **SMALL)
    d_ref, g_ref = _reference_run(pack=1, steps=6)
    assert np.array_equal(run.history["d_loss"], d_ref)
    assert np.array_equal(run.history["g_loss"], g_ref)


def test_packed_training_matches_a_hand_packed_loop():
    run = train.fit(data.ring(), seeds=2, pack=2, **SMALL)
    d_ref, g_ref = _reference_run(pack=2, steps=6)
    np.testing.assert_allclose(run.history["d_loss"], d_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run.history["g_loss"], g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("update", train.UPDATES)
def test_packed_discriminator_receives_packs(update):
    shapes = []
    hook = nn.modules.module.register_module_forward_pre_hook(
        lambda mod, args: shapes.append(tuple(args[0].shape)) if isinstance(mod, nets.MLPDiscriminator) else None)
    try:
        run = train.fit(data.ring(), seeds=3, pack=3, update=update, **{**SMALL, "steps": 2})
    finally:
        hook.remove()
    assert shapes and set(shapes) == {(3, 16, 6)}
    assert run.sample(5).shape == (3, 5, 2)  # the generator is unpacked


@pytest.mark.parametrize("kw", [dict(loss="hinge"), dict(loss="wasserstein", penalty="wgan-gp", n_critic=2),
                                dict(loss="ns", penalty="r1"), dict(loss="wasserstein", clip=0.01,
                                                                    update="simultaneous")])
def test_losses_and_penalties_work_with_packing(kw):
    run = train.fit(data.ring(), seeds=2, pack=2, **SMALL, **kw)
    assert all(np.isfinite(v).all() for v in run.history.values())
    if "penalty" in kw:
        assert (run.history["penalty"] > 0).all()


def test_simultaneous_step_uses_both_gradients_at_the_same_point():
    """With SGD, one simultaneous step is p - lr * grad, each network's gradient of its own
    loss taken at the *initial* parameters of both (computed here on separate copies)."""
    lr = 0.1
    run = train.fit(data.ring(), seeds=2, update="simultaneous", optimizer="sgd", lr_g=lr, lr_d=lr,
                    **{**SMALL, "steps": 1})
    G = nets.MLPGenerator(2, 2, (8,), [0, 2])
    D = nets.MLPDiscriminator(2, (8,), [1, 3])
    rng = torch.Generator().manual_seed(0)
    x_real = data.ring().sample((2, 16), rng=rng)
    z = torch.randn(2, 16, 2, generator=rng)
    losses.discriminator_loss("ns", D(x_real), D(G(z).detach()), dim=-1).sum().backward()
    D_frozen = nets.MLPDiscriminator(2, (8,), [1, 3]).requires_grad_(False)
    losses.generator_loss("ns", D_frozen(G(z)), dim=-1).sum().backward()
    for net, which in ((G, "generator"), (D, "discriminator")):
        expected = torch.cat([(p - lr * p.grad).detach().reshape(2, -1) for p in net.parameters()], 1)
        assert_close(torch.from_numpy(run.weights(which)), expected)


@pytest.mark.parametrize(
    "overrides, match",
    [(dict(pack=0), "pack"), (dict(pack=1.5), "pack"), (dict(pack=True), "pack"),
     (dict(g_arch="resnet"), "g_arch"), (dict(d_arch="cnn"), "d_arch"), (dict(update="async"), "update"),
     (dict(update="simultaneous", n_critic=2), "n_critic"), (dict(maxout_pieces=0), "maxout_pieces")],
)
def test_bad_packing_config(overrides, match):
    with pytest.raises(ValueError, match=match):
        train.fit(data.ring(), **{**SMALL, **overrides})


# --- the PacGAN networks ---------------------------------------------------------------------


def test_maxout_matches_a_hand_loop():
    layer = nets.SeedMaxout(3, 4, pieces=5, seeds=[0, 7])
    x = torch.randn(2, 6, 3)
    out = layer(x)
    W, b = layer.linear.weight, layer.linear.bias[:, 0]  # (S, 3, 20), (S, 20)
    for s in range(2):
        for i in range(6):
            for j in range(4):
                pieces = [x[s, i] @ W[s, :, j * 5 + k] + b[s, j * 5 + k] for k in range(5)]
                assert_close(out[s, i, j], max(pieces))


def test_seed_batch_norm_equals_torch_batch_norm_per_seed():
    bn = nets.SeedBatchNorm(4, seeds=3, momentum=0.05)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(3, 1, 4))
        bn.bias.copy_(torch.randn(3, 1, 4))
    refs = [nn.BatchNorm1d(4, momentum=0.05) for _ in range(3)]
    for s, ref in enumerate(refs):
        with torch.no_grad():
            ref.weight.copy_(bn.weight[s, 0])
            ref.bias.copy_(bn.bias[s, 0])
    for _ in range(3):  # training mode: batch statistics, running averages updated
        x = torch.randn(3, 10, 4) * 2 + 1
        out = bn(x)
        for s, ref in enumerate(refs):
            assert_close(out[s], ref(x[s]))
    bn.eval()
    x = torch.randn(3, 7, 4)
    for s, ref in enumerate(refs):
        ref.eval()
        assert_close(bn(x)[s], ref(x[s]))
        assert_close(bn.running_var[s, 0], ref.running_var)
    with pytest.raises(ValueError, match="n >= 2"):
        bn.train()(torch.randn(3, 1, 4))


def test_pacgan_networks_shapes_init_and_seed_independence():
    G = nets.BatchNormGenerator(2, 2, (16, 16), seeds=[0, 1])
    D = nets.MaxoutDiscriminator(4, (8, 8), pieces=3, seeds=[0, 1])
    assert G(torch.randn(2, 10, 2)).shape == (2, 10, 2) and D(torch.randn(2, 10, 4)).shape == (2, 10)
    w = nets.BatchNormGenerator(2, 2, (400,), seeds=1).layers[0].weight
    assert_close(w.std(), torch.tensor(0.02), rtol=0.1, atol=0)  # N(0, 0.02^2) as in the PacGAN code
    # slot i depends only on its own seed
    alone = nets.BatchNormGenerator(2, 2, (16, 16), seeds=[1])
    for p, q in zip(G.parameters(), alone.parameters()):
        assert_close(p[1], q[0])
    # changing seed 1's inputs changes nothing in seed 0's gradients (batch norm is per seed)
    z, x = torch.randn(2, 10, 2), torch.randn(2, 10, 4)
    grads = []
    for bump in (0.0, 5.0):
        G.zero_grad(), D.zero_grad()
        z2, x2 = z.clone(), x.clone()
        z2[1] += bump
        x2[1] -= bump
        (D(train.pack_samples(G(z2), 2)).sum() + D(x2).sum()).backward()
        grads.append([p.grad.clone() for p in list(G.parameters()) + list(D.parameters())])
    for a, b in zip(*grads):
        assert_close(a[0], b[0])
    assert any(not torch.allclose(a[1], b[1]) for a, b in zip(*grads))


def test_pacgan_architecture_trains_and_samples_in_eval_mode():
    run = train.fit(data.ring(), seeds=2, pack=2, g_arch="batchnorm", d_arch="maxout", maxout_pieces=3,
                    update="simultaneous", **SMALL)
    G, D = devices.unwrap(run.generator), devices.unwrap(run.discriminator)  # inspected, not evaluated
    assert isinstance(G, nets.BatchNormGenerator)
    assert isinstance(D, nets.MaxoutDiscriminator)
    assert D.layers[0].linear.in_features == 4
    gen = torch.Generator().manual_seed(3)
    one = run.sample(1, rng=gen)  # n = 1 works: evaluation mode uses the running averages
    assert one.shape == (2, 1, 2) and torch.isfinite(one).all()
    assert G.training  # sample() restores the mode it found
    z = run.latent(6)
    assert_close(run.generate(z)[:, :3], run.generate(z[:, :3]))  # a sample ignores its batch-mates
    assert_close(run.probabilities(torch.zeros(5, 4)), torch.sigmoid(run.logits(torch.zeros(5, 4))))
