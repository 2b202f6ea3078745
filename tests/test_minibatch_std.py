"""gan_lab.nets: minibatch standard deviation (Karras et al. 2018) and the ``mlp-mbstd`` discriminator."""

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab import compiled, data, devices, nets, train


def _oracle(x, group_size=None, eps=1e-8):
    """The layer by a plain loop over seeds and groups, with numpy's std (ddof=0)."""
    x = x.detach().double().numpy()
    S, n, h = x.shape
    size = n if group_size is None else min(group_size, n)
    out = np.empty((S, n, h + 1))
    for s in range(S):
        for start in range(0, n, size):
            group = x[s, start:start + size]  # (size, h)
            stat = np.mean(np.sqrt(np.std(group, axis=0) ** 2 + eps))
            out[s, start:start + size, :h] = group
            out[s, start:start + size, h] = stat
    return torch.from_numpy(out)


@pytest.mark.parametrize("group_size", [None, 2, 4, 12, 50])
def test_matches_a_per_seed_numpy_loop(group_size):
    x = torch.randn(3, 12, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 + 1
    out = nets.SeedMinibatchStd(group_size)(x)
    assert out.shape == (3, 12, 6)
    assert_close(out, _oracle(x, group_size))


def test_matches_torch_std_and_is_not_the_unbiased_std():
    x = torch.randn(2, 8, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    stat = nets.SeedMinibatchStd()(x)[..., -1]  # (2, 8)
    biased = x.std(1, correction=0).mean(-1)  # (2,)
    assert_close(stat, biased[:, None].expand(2, 8), atol=1e-7, rtol=0)  # eps=1e-8 inside the root
    unbiased = x.std(1).mean(-1)
    assert (stat[:, 0] - unbiased).abs().min() > 1e-2  # the control: another estimator is told apart


def test_a_constant_batch_gives_sqrt_eps_and_a_spread_batch_its_std():
    x = torch.ones(1, 6, 4)
    assert_close(nets.SeedMinibatchStd(eps=1e-4)(x)[..., -1], torch.full((1, 6), 1e-2))
    # two points at -a and +a in every feature: biased std a
    y = torch.tensor([[[-3.0, -3.0], [3.0, 3.0]]])
    assert_close(nets.SeedMinibatchStd()(y)[..., -1], torch.full((1, 2), 3.0))


def test_seeds_are_independent_and_groups_too():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 8, 4, generator=g)
    layer = nets.SeedMinibatchStd(group_size=4)
    out = layer(x)
    y = x.clone()
    y[1] = torch.randn(8, 4, generator=g) * 10  # another seed's inputs
    y[0, 4:] += 5 * torch.randn(4, 4, generator=g)  # seed 0's second group
    out_y = layer(y)
    assert torch.equal(out_y[2], out[2])
    assert torch.equal(out_y[0, :4], out[0, :4])  # seed 0's first group untouched
    assert not torch.equal(out_y[0, 4:], out[0, 4:])  # the control: the changed group moved
    assert not torch.equal(out_y[1], out[1])


def test_gradient_reaches_every_sample_of_its_group_and_matches_finite_differences():
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64,
                    requires_grad=True)
    layer = nets.SeedMinibatchStd(group_size=3)
    assert torch.autograd.gradcheck(lambda t: layer(t), (x,))
    (grad,) = torch.autograd.grad(layer(x)[0, 0, -1], x)  # one sample's statistic
    assert (grad[0, :3].abs().sum(-1) > 0).all()  # reaches its whole group
    assert grad[0, 3:].abs().max() == 0 and grad[1].abs().max() == 0  # and nothing else


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="group_size"):
        nets.SeedMinibatchStd(group_size=1)
    with pytest.raises(ValueError, match="group_size"):
        nets.SeedMinibatchStd(group_size=2.0)
    with pytest.raises(ValueError, match="eps"):
        nets.SeedMinibatchStd(eps=0)
    with pytest.raises(ValueError, match="shape"):
        nets.SeedMinibatchStd()(torch.randn(8, 3))
    with pytest.raises(ValueError, match="multiple of group_size"):
        nets.SeedMinibatchStd(group_size=4)(torch.randn(1, 6, 3))
    with pytest.raises(ValueError, match="hidden"):
        nets.MinibatchStdDiscriminator(2, ())
    with pytest.raises(ValueError, match="activation"):
        nets.MinibatchStdDiscriminator(2, (8,), activation="gelu")
    with pytest.raises(ValueError, match="mlp-mbstd.*penalty"):
        train.fit(data.ring(), d_arch="mlp-mbstd", penalty="r1", steps=2, progress=False)


def test_discriminator_layers_and_seed_independence():
    D = nets.MinibatchStdDiscriminator(2, (8, 8), seeds=[5, 7])
    kinds = [type(m).__name__ for m in D.layers]
    assert kinds == ["SeedLinear", "LeakyReLU", "SeedMinibatchStd", "SeedLinear", "LeakyReLU", "SeedLinear"]
    assert D.layers[3].in_features == 9
    # slot 1 equals a one-seed network of seed 7, whatever slot 0 sees
    alone = nets.MinibatchStdDiscriminator(2, (8, 8), seeds=[7])
    x = torch.randn(2, 10, 2, generator=torch.Generator().manual_seed(4))
    assert_close(D(x)[1], alone(x[1:])[0])
    # the first layer starts as the plain MLP's does (same init streams)
    mlp = nets.MLPDiscriminator(2, (8, 8), seeds=[5, 7])
    assert torch.equal(D.layers[0].weight, mlp.layers[0].weight)
    # one hidden layer: the statistic is appended to the input
    D1 = nets.MinibatchStdDiscriminator(3, (8,), seeds=1)
    assert isinstance(D1.layers[0], nets.SeedMinibatchStd) and D1.layers[1].in_features == 4


def test_the_logit_depends_on_the_batch():
    """What the layer is for: a point's logit changes when the rest of its batch collapses."""
    D = nets.MinibatchStdDiscriminator(2, (16, 16), seeds=1)
    x = torch.randn(1, 32, 2, generator=torch.Generator().manual_seed(5))
    collapsed = x.clone()
    collapsed[0, 1:] = x[0, :1]  # every point a copy of point 0
    assert (D(x)[0, 0] - D(collapsed)[0, 0]).abs() > 1e-4
    mlp = nets.MLPDiscriminator(2, (16, 16), seeds=1)  # the control: a per-sample network
    assert torch.equal(mlp(x)[0, 0], mlp(collapsed)[0, 0])


def test_fit_trains_with_it_and_gradients_flow():
    run = train.fit(data.ring(), d_arch="mlp-mbstd", steps=5, seeds=2, batch_size=16, g_hidden=(8,),
                    d_hidden=(8, 8), progress=False)
    D = devices.unwrap(run.discriminator)
    assert isinstance(D, nets.MinibatchStdDiscriminator)
    assert np.isfinite(run.history["d_loss"]).all()
    D = D.cpu()
    D.zero_grad()
    D(torch.randn(2, 16, 2)).sum().backward()
    norms = nets.per_seed_grad_norm(D)
    assert (norms > 0).all()
    assert D.layers[3].weight.grad[:, -1].abs().min() > 0  # the statistic's own weights learn


def test_compiled_step_equals_eager(monkeypatch):
    monkeypatch.setenv(compiled.BACKEND_VARIABLE, "eager")
    torch._dynamo.reset()
    cfg = dict(d_arch="mlp-mbstd", steps=10, batch_size=32, g_hidden=(16,), d_hidden=(16, 16), seeds=2,
               pack=2, progress=False)
    try:
        eager = train.fit(data.ring(), **cfg, compile=False)
        comp = train.fit(data.ring(), **cfg, compile=True)
    finally:
        torch._dynamo.reset()
    assert comp.engine == "compiled" and eager.engine == "eager"
    for k in eager.history:
        assert_close(comp.history[k], eager.history[k], atol=1e-5, rtol=1e-5)
    d_eager, d_comp = devices.unwrap(eager.discriminator), devices.unwrap(comp.discriminator)
    for (name, p), q in zip(d_eager.named_parameters(), d_comp.parameters(), strict=True):
        assert_close(q, p, atol=1e-5, rtol=1e-5, msg=name)
