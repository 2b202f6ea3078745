"""gan_lab.spectral: power iteration, convolution norms, Lipschitz bounds, seed-batched SN."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_lab import data, images, spectral, train
from gan_lab.config import TrainConfig, use_compiled
from gan_lab.dcgan import DCGANDiscriminator
from gan_lab.nets import MLPDiscriminator, SeedLinear

torch.set_num_threads(1)


# --- power iteration against torch.linalg.matrix_norm -----------------------------------------


def test_largest_singular_value_matches_matrix_norm_batched_and_single():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 9, 5, generator=g, dtype=torch.float64)
    oracle = torch.linalg.matrix_norm(W, 2)
    est = spectral.largest_singular_value(W, n_iter=500, rng=torch.Generator().manual_seed(1))
    torch.testing.assert_close(est, oracle, rtol=1e-10, atol=0)
    torch.testing.assert_close(spectral.largest_singular_value(W[2], n_iter=500), oracle[2], rtol=1e-10, atol=0)


def test_power_iteration_needs_iterations_from_a_bad_start():
    # sigma = diag(3, 2.9, ...): slow convergence; start almost on the second singular vector
    U, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    s = torch.tensor([3.0, 2.9, 1.0, 0.5, 0.1], dtype=torch.float64)
    W = U[:, :5] * s @ V.T
    v0 = V[:, 1] + 1e-3 * V[:, 0]
    one = spectral.largest_singular_value(W, n_iter=1, v=v0)
    many = spectral.largest_singular_value(W, n_iter=3000, v=v0)
    assert float(one) < 2.95  # one iteration: still near sigma_2 = 2.9, not sigma_1 = 3
    torch.testing.assert_close(many, torch.tensor(3.0, dtype=torch.float64), rtol=1e-9, atol=0)
    # every estimate is a lower bound: ||W v|| <= sigma for a unit v
    for k in (1, 5, 50, 500):
        assert float(spectral.largest_singular_value(W, n_iter=k, v=v0)) <= 3.0 + 1e-12


def test_largest_singular_value_bad_input():
    with pytest.raises(ValueError, match="weight"):
        spectral.largest_singular_value(torch.ones(3))
    with pytest.raises(ValueError, match="n_iter"):
        spectral.largest_singular_value(torch.ones(3, 2), n_iter=0)
    with pytest.raises(ValueError, match="v must have shape"):
        spectral.largest_singular_value(torch.ones(3, 2), v=torch.ones(3))


# --- convolutions: the reshaped kernel against the operator -------------------------------------


def dense_conv_matrix(weight, input_shape, stride, padding):
    """The convolution as a dense matrix: column j is the conv applied to basis vector j."""
    n = math.prod(input_shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *input_shape)
    return F.conv2d(basis, weight.double(), None, stride, padding).reshape(n, -1).T  # (out size, n)


@pytest.mark.parametrize("stride,padding,size", [(1, 0, 6), (2, 1, 8), (2, 1, 7), (1, 1, 5)])
def test_conv_operator_norm_matches_dense_matrix(stride, padding, size):
    w = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(size + stride), dtype=torch.float64)
    shape = (2, size, size)
    oracle = float(torch.linalg.matrix_norm(dense_conv_matrix(w, shape, stride, padding), 2))
    est = spectral.conv_operator_norm(w, shape, stride, padding, n_iter=2000,
                                      rng=torch.Generator().manual_seed(0))
    assert est == pytest.approx(oracle, rel=1e-8)


def test_kernel_norm_against_operator_norm():
    # a window that fits: kernel norm <= operator norm <= sqrt(overlap) * kernel norm, strictly inside
    for seed in range(5):
        w = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        kernel = float(torch.linalg.matrix_norm(spectral.weight_matrix(w), 2))
        op = float(torch.linalg.matrix_norm(dense_conv_matrix(w, (3, 8, 8), 2, 1), 2))
        assert spectral.overlap_factor(4, 2) == 4
        assert kernel * (1 + 1e-3) < op < 2 * kernel
    # an input smaller than the kernel: the operator can be smaller than the kernel norm
    op_small = float(torch.linalg.matrix_norm(dense_conv_matrix(w, (3, 2, 2), 2, 1), 2))
    assert op_small < kernel * (1 - 1e-3)
    # control: a 1 x 1 kernel with stride 1 is the same matrix at every pixel, so the two agree
    w1 = torch.randn(4, 3, 1, 1, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    op1 = float(torch.linalg.matrix_norm(dense_conv_matrix(w1, (3, 5, 5), 1, 0), 2))
    assert op1 == pytest.approx(float(torch.linalg.matrix_norm(spectral.weight_matrix(w1), 2)), rel=1e-10)


def test_conv_norm_bad_input():
    with pytest.raises(ValueError, match="weight"):
        spectral.conv_operator_norm(torch.ones(2, 2), (2, 4, 4))
    with pytest.raises(ValueError, match="input_shape"):
        spectral.conv_operator_norm(torch.ones(2, 3, 2, 2), (2, 4, 4))
    with pytest.raises(ValueError, match="weight"):
        spectral.weight_matrix(torch.ones(3))


# --- Lipschitz: the product of layer norms against measurements -------------------------------


def random_nets(seed):
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
    conv = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 1, 1), nn.LeakyReLU(0.2),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 1))
    return [(mlp.double(), (6,)), (conv.double(), (1, 10, 10))]


@pytest.mark.parametrize("seed", range(4))
def test_measured_lipschitz_below_the_product_of_layer_norms(seed):
    for net, shape in random_nets(seed):
        bound = spectral.lipschitz_bound(net, shape, n_iter=500)
        x = torch.randn(300, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        measured = spectral.measured_lipschitz(net, x)
        assert measured["gradient"] <= bound * (1 + 1e-9)
        assert measured["pairs"] <= bound * (1 + 1e-9)


def test_bound_is_tight_for_one_linear_layer_control():
    # control: for f(x) = w.x + b the gradient is w everywhere, so measured = bound = |w|
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 1)).double()
    x = torch.randn(50, 5, dtype=torch.float64)
    measured = spectral.measured_lipschitz(net, x)
    w = float(net[0].weight.detach().norm())
    assert measured["gradient"] == pytest.approx(w, rel=1e-12)
    assert spectral.lipschitz_bound(net, (5,)) == pytest.approx(w, rel=1e-12)
    # gradient_norms against finite differences
    h = 1e-6
    e = torch.zeros(1, 5, dtype=torch.float64)
    e[0, 2] = h
    fd = (net(x[:1] + e) - net(x[:1] - e)) / (2 * h)
    assert float(fd.detach()) == pytest.approx(float(net[0].weight.detach()[0, 2]), rel=1e-6)


def test_layer_norms_of_the_dcgan_discriminator_and_refusals():
    D = DCGANDiscriminator(8, batch_norm=False, seed=1)
    norms = dict(spectral.layer_norms(D, (1, 28, 28)))
    kernel = dict(spectral.layer_norms(D, (1, 28, 28), conv="kernel"))
    assert norms["logit"] == pytest.approx(float(torch.linalg.matrix_norm(D.logit.weight.double(), 2)))
    assert norms["features.1"] == 1.0  # LeakyReLU(0.2)
    for name in ("features.0", "features.2"):
        assert kernel[name] < norms[name] <= 2 * kernel[name] * (1 + 1e-6)
    with pytest.raises(ValueError, match="batch normalisation"):
        spectral.layer_norms(DCGANDiscriminator(8, batch_norm=True), (1, 28, 28))
    with pytest.raises(ValueError, match="no known Lipschitz constant"):
        spectral.layer_norms(nn.Sequential(nn.Linear(2, 2), nn.ELU(), nn.Linear(2, 1)), (2,))
    with pytest.raises(ValueError, match="conv"):
        spectral.layer_norms(D, (1, 28, 28), conv="nope")


def test_apply_spectral_norm_bounds_the_kernel_norms_at_one():
    D = spectral.apply_spectral_norm(DCGANDiscriminator(8, batch_norm=False, seed=1), seed=0)
    D.train()
    x = torch.randn(4, 1, 28, 28)
    for _ in range(200):  # power-iteration steps on fixed weights
        D(x)
    for _, norm in spectral.normalised_norms(D):
        assert norm == pytest.approx(1.0, abs=1e-3)
        assert norm >= 1 - 1e-5  # u^T W v <= sigma(W): the normalised weight's norm is >= 1
    with pytest.raises(ValueError, match="batch normalisation"):
        spectral.apply_spectral_norm(DCGANDiscriminator(8, batch_norm=True))
    with pytest.raises(ValueError, match="no Conv2d or Linear"):
        spectral.apply_spectral_norm(nn.Sequential(nn.ReLU()))
    # the same seed gives the same u; the global random stream is left alone
    a = spectral.apply_spectral_norm(DCGANDiscriminator(8, batch_norm=False, seed=1), seed=5)
    b = DCGANDiscriminator(8, batch_norm=False, seed=1)  # (its layers' constructors draw from the stream)
    state = torch.random.get_rng_state()
    spectral.apply_spectral_norm(b, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    torch.testing.assert_close(a.logit.parametrizations.weight[0]._u, b.logit.parametrizations.weight[0]._u)


# --- seed-batched spectral normalisation against torch's, per seed ----------------------------


def test_seed_spectral_norm_matches_torch_per_seed_over_training_steps():
    S, n_in, n_out, n = 3, 4, 5, 7
    layer = SeedLinear(n_in, n_out, seeds=[11, 12, 13]).double()
    refs = []
    for s in range(S):
        lin = nn.Linear(n_in, n_out).double()
        with torch.no_grad():
            lin.weight.copy_(layer.weight[s].T)
            lin.bias.copy_(layer.bias[s, 0])
        refs.append(nn.utils.parametrizations.spectral_norm(lin))
    spectral.apply_seed_spectral_norm(layer, seeds=[1, 2, 3])
    mine = layer.parametrizations.weight[0]
    for s, lin in enumerate(refs):  # the same initial u, v
        sn = lin.parametrizations.weight[0]
        sn._u.copy_(mine._u[s])
        sn._v.copy_(mine._v[s])
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    opts = [torch.optim.SGD(lin.parameters(), lr=0.1) for lin in refs]
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        x = torch.randn(S, n, n_in, generator=g, dtype=torch.float64)
        c = torch.randn(S, n, n_out, generator=g, dtype=torch.float64)
        out = layer(x)
        (out * c).pow(2).sum().backward()
        for s, lin in enumerate(refs):
            ref = lin(x[s])
            torch.testing.assert_close(out[s], ref, rtol=1e-12, atol=1e-12)
            (ref * c[s]).pow(2).sum().backward()
            torch.testing.assert_close(layer.parametrizations.weight.original.grad[s],
                                       lin.parametrizations.weight.original.grad.T, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(mine._u[s], lin.parametrizations.weight[0]._u, rtol=1e-12, atol=1e-12)
        for o in (opt, *opts):
            o.step()
            o.zero_grad()
    assert SeedLinear.n_seeds.fget(layer) == S and type(layer) is not SeedLinear  # the class patch stays local
    # eval mode: no power-iteration step, u and v unchanged
    layer.eval()
    u, v = mine._u.clone(), mine._v.clone()
    layer(torch.randn(S, n, n_in, dtype=torch.float64))
    assert torch.equal(u, mine._u) and torch.equal(v, mine._v)
    layer.train()  # control: a training-mode forward does move them
    layer(torch.randn(S, n, n_in, dtype=torch.float64))
    assert not torch.equal(u, mine._u)


def test_seed_spectral_norm_slots_are_independent_and_refusals():
    a = spectral.apply_seed_spectral_norm(MLPDiscriminator(2, (8, 8), seeds=[5, 6]), seeds=[5, 6])
    b = spectral.apply_seed_spectral_norm(MLPDiscriminator(2, (8, 8), seeds=[6]), seeds=[6])
    torch.testing.assert_close(a.layers[0].parametrizations.weight[0]._u[1],
                               b.layers[0].parametrizations.weight[0]._u[0])
    with pytest.raises(ValueError, match="no SeedLinear"):
        spectral.apply_seed_spectral_norm(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="rngs"):
        spectral.SeedSpectralNorm(torch.ones(2, 3, 4), rngs=[torch.Generator()])
    with pytest.raises(ValueError, match="n_power_iterations"):
        spectral.SeedSpectralNorm(torch.ones(2, 3, 4), n_power_iterations=0)


# --- integration: the 2-D loop and the image loop ---------------------------------------------


def test_train_config_spectral_norm_validation_and_engine():
    with pytest.raises(ValueError, match="spectral_norm"):
        TrainConfig(spectral_norm=1).validate()
    with pytest.raises(ValueError, match="compile=True"):
        TrainConfig(spectral_norm=True, compile=True).validate()
    assert not use_compiled(TrainConfig(spectral_norm=True, steps=10**7), torch.device("cpu"))
    with pytest.raises(ValueError, match="spectral_norm"):
        train.fit_mmd(data.ring(), steps=2, spectral_norm=True, progress=False)


def interrupted_then_resumed(module, fit, ckpt, monkeypatch, stop_at=5):
    """Run ``fit`` with a checkpoint, interrupted before generator step ``stop_at``; then resume it."""
    real_step, calls = module.step_mod.generator_step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(module.step_mod, "generator_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(checkpoint=ckpt, checkpoint_every=2)
    monkeypatch.setattr(module.step_mod, "generator_step", real_step)
    return fit(checkpoint=ckpt, checkpoint_every=2)


def test_fit_with_spectral_norm_normalises_the_critic_and_resumes(tmp_path, monkeypatch):
    kw = dict(steps=8, seeds=2, batch_size=32, spectral_norm=True, progress=False)
    run = train.fit(data.ring(), **kw)
    assert run.engine == "eager"
    for _, norm in spectral.normalised_norms(run.discriminator):
        assert 1 - 1e-5 <= norm < 1.1
    plain = train.fit(data.ring(), **{**kw, "spectral_norm": False})
    assert spectral.normalised_norms(plain.discriminator) == []  # control: no SN without the flag
    assert not np.allclose(plain.history["d_loss"], run.history["d_loss"])
    # a checkpointed run interrupted after step 4 and resumed equals the uninterrupted one
    resumed = interrupted_then_resumed(train, lambda **k: train.fit(data.ring(), **kw, **k),
                                       tmp_path / "sn.pt", monkeypatch)
    assert resumed.resumed_from == 4
    for k in run.history:
        np.testing.assert_array_equal(resumed.history[k], run.history[k])
    x = torch.randn(2, 16, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(resumed.logits(x), run.logits(x), rtol=0, atol=0)
    crit = train.fit_discriminator(data.ring(), data.grid(), steps=5, spectral_norm=True, progress=False)
    assert len(spectral.normalised_norms(crit.discriminator)) == 3


def test_image_config_spectral_norm():
    c = images.ImageTrainConfig(spectral_norm=True).validate()
    assert not c.critic_batch_norm  # batch norm off by default with SN
    with pytest.raises(ValueError, match="d_batch_norm must be off with spectral_norm"):
        images.ImageTrainConfig(spectral_norm=True, d_batch_norm=True).validate()
    with pytest.raises(ValueError, match="spectral_norm"):
        images.ImageTrainConfig(spectral_norm="yes").validate()
    G, D = images.build_networks(c)
    assert len(spectral.normalised_norms(D)) == 3
    G2, D2 = images.build_networks(c)
    torch.testing.assert_close(D.logit.parametrizations.weight[0]._u, D2.logit.parametrizations.weight[0]._u)


def test_fit_images_with_spectral_norm_and_resume(tmp_path, monkeypatch):
    x = torch.randint(0, 256, (128, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    kw = dict(steps=6, batch_size=16, width=4, z_dim=8, spectral_norm=True, progress=False, n_fixed=4)
    run = images.fit_images(x, **kw)
    assert len(spectral.normalised_norms(run.discriminator)) == 3
    for _, norm in spectral.normalised_norms(run.discriminator):
        assert norm >= 1 - 1e-5
    resumed = interrupted_then_resumed(images, lambda **k: images.fit_images(x, **kw, **k),
                                       tmp_path / "img.pt", monkeypatch)
    for k in run.history:
        np.testing.assert_array_equal(resumed.history[k], run.history[k])
    probe = x[:8]
    torch.testing.assert_close(resumed.logits(probe), run.logits(probe), rtol=0, atol=0)
    torch.testing.assert_close(resumed.sample(4, rng=torch.Generator().manual_seed(1)),
                               run.sample(4, rng=torch.Generator().manual_seed(1)), rtol=0, atol=0)


def test_gradient_norms_match_per_sample_jacobians_of_a_conv_net():
    torch.manual_seed(0)
    net = DCGANDiscriminator(width=4, batch_norm=False, seed=3).double()
    x = torch.randn(5, 1, 28, 28, dtype=torch.float64)
    got = spectral.gradient_norms(net, x, batch_size=2)  # chunks of 2, 2 and 1
    for i in range(5):  # the oracle: torch.func's Jacobian of one sample's logit
        jac = torch.func.jacrev(lambda xi: net(xi[None])[0])(x[i])
        torch.testing.assert_close(got[i], jac.norm(), rtol=1e-10, atol=0)
    direction = torch.randn(1, 1, 28, 28, dtype=torch.float64)
    direction /= direction.norm()
    eps = 1e-6  # a directional finite difference never exceeds the gradient norm
    with torch.no_grad():
        slope = (net(x[:1] + eps * direction) - net(x[:1] - eps * direction)).abs() / (2 * eps)
    assert float(slope) <= float(got[0]) * (1 + 1e-6)
    assert net.training  # the network's mode is restored


def test_gradient_norms_refuse_bad_input():
    net = DCGANDiscriminator(width=4, batch_norm=False, seed=0)
    with pytest.raises(ValueError, match="x must be a tensor"):
        spectral.gradient_norms(net, torch.zeros(28))
    with pytest.raises(ValueError, match="x must be a tensor"):
        spectral.gradient_norms(net, [[0.0]])


def test_layer_norms_in_training_mode_run_no_power_iteration_step():
    lin = torch.nn.utils.parametrizations.spectral_norm(nn.Linear(6, 4).double())
    net = nn.Sequential(lin, nn.ReLU()).train()
    u = lin.parametrizations.weight[0]._u.clone()
    spectral.layer_norms(net, (6,))
    torch.testing.assert_close(lin.parametrizations.weight[0]._u, u, rtol=0, atol=0)
    assert net.training
    net(torch.zeros(2, 6, dtype=torch.float64))  # control: a training-mode forward moves u
    assert not torch.equal(lin.parametrizations.weight[0]._u, u)
