import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gan_lab import nets


def test_seed_linear_equals_separate_linear_layers():
    layer = nets.SeedLinear(3, 5, seeds=[7, 8, 9])
    x = torch.randn(3, 11, 3)
    out = layer(x)
    for s in range(3):
        ref = nn.Linear(3, 5)
        with torch.no_grad():
            ref.weight.copy_(layer.weight[s].T)
            ref.bias.copy_(layer.bias[s, 0])
        assert_close(out[s], ref(x[s]))


def test_slot_init_depends_only_on_its_own_seed():
    a = nets.MLPGenerator(seeds=[3, 4])
    b = nets.MLPGenerator(seeds=[4])
    z = torch.randn(1, 10, 2)
    assert_close(a(z.expand(2, -1, -1))[1], b(z)[0])
    assert not torch.allclose(a(z.expand(2, -1, -1))[0], b(z)[0])


def test_init_scale_matches_torch_linear_bound():
    layer = nets.SeedLinear(100, 50, seeds=4)
    bound = 1 / 100**0.5
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
    # uniform on [-b, b] has std b / sqrt(3)
    assert_close(layer.weight.std(), torch.tensor(bound / 3**0.5), rtol=0.02, atol=0)


def test_seeds_get_independent_gradients():
    d = nets.MLPDiscriminator(seeds=3)
    x = torch.randn(3, 8, 2)
    loss = d(x)[1].sum()  # only seed 1 involved
    loss.backward()
    norms = nets.per_seed_grad_norm(d)
    assert norms[1] > 0 and norms[0] == 0 and norms[2] == 0


def test_per_seed_grad_norm_matches_manual():
    g = nets.MLPGenerator(seeds=2)
    g(torch.randn(2, 4, 2)).pow(2).sum().backward()
    manual = torch.stack([torch.cat([p.grad[s].reshape(-1) for p in g.parameters()]).norm() for s in range(2)])
    assert_close(nets.per_seed_grad_norm(g), manual)


def test_shapes_and_repr():
    g = nets.MLPGenerator(z_dim=3, x_dim=2, hidden=(16,), seeds=4)
    d = nets.MLPDiscriminator(x_dim=2, hidden=(16, 16), seeds=4)
    assert g(torch.randn(4, 9, 3)).shape == (4, 9, 2)
    assert d(torch.randn(4, 9, 2)).shape == (4, 9)
    assert "seeds=4" in repr(g)


def test_bad_input():
    with pytest.raises(ValueError, match="x must have shape"):
        nets.SeedLinear(2, 3, seeds=2)(torch.randn(3, 5, 2))
    with pytest.raises(ValueError, match="activation"):
        nets.SeedMLP(2, 2, activation="swishy")
    with pytest.raises(ValueError, match="hidden"):
        nets.SeedMLP(2, 2, hidden=(0,))
    with pytest.raises(ValueError, match="seeds"):
        nets.SeedMLP(2, 2, seeds=0)
    with pytest.raises(ValueError, match="in_features"):
        nets.SeedLinear(0, 2)
    with pytest.raises(ValueError, match="backward"):
        nets.per_seed_grad_norm(nets.MLPGenerator())
