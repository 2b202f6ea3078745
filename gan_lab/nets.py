"""Networks for 2-D data, batched over seeds.

Every layer here holds the parameters of ``S`` independent networks ("seeds") in one
tensor with a leading seed dimension, so ``S`` training runs advance together in one
batched matrix multiply. Inputs and outputs carry that dimension: ``(S, n, features)``.
Slot ``i`` is initialised from its own integer seed, so a network's starting point
does not depend on how many other seeds share the batch.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}


def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = range(seeds)
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a positive count or a non-empty list of non-negative ints, got {seeds!r}")
    return seeds


class SeedLinear(nn.Module):
    """``S`` independent affine maps: ``(S, n, in_features) -> (S, n, out_features)``.

    Initialised like :class:`torch.nn.Linear` (uniform in ``±1/sqrt(in_features)``),
    slot ``i`` from ``torch.Generator().manual_seed(seeds[i])``.
    """

    def __init__(self, in_features: int, out_features: int, seeds: int | Sequence[int] = 1):
        super().__init__()
        for name, val in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        seed_list = _seed_list(seeds)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(len(seed_list), in_features, out_features))  # (S, in, out)
        self.bias = nn.Parameter(torch.empty(len(seed_list), 1, out_features))  # (S, 1, out)
        self.reset_parameters(seed_list)

    @property
    def n_seeds(self) -> int:
        return self.weight.shape[0]

    @torch.no_grad()
    def reset_parameters(self, seeds: Sequence[int]) -> None:
        """Re-draw slot ``i``'s parameters from ``seeds[i]``."""
        bound = 1 / math.sqrt(self.in_features)
        for i, s in enumerate(_seed_list(seeds)):
            g = torch.Generator().manual_seed(s)
            w = torch.rand(self.in_features, self.out_features, generator=g) * 2 - 1
            b = torch.rand(1, self.out_features, generator=g) * 2 - 1
            self.weight[i].copy_(w * bound)
            self.bias[i].copy_(b * bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[0] != self.n_seeds or x.shape[2] != self.in_features:
            raise ValueError(
                f"x must have shape (seeds={self.n_seeds}, n, {self.in_features}), got {tuple(x.shape)}"
            )
        return torch.baddbmm(self.bias, x, self.weight)  # (S, n, out)

    def extra_repr(self) -> str:
        return f"seeds={self.n_seeds}, in_features={self.in_features}, out_features={self.out_features}"


class SeedMLP(nn.Module):
    """A multilayer perceptron batched over seeds: ``(S, n, in) -> (S, n, out)``.

    Args:
        in_features: input size.
        out_features: output size.
        hidden: widths of the hidden layers.
        seeds: a count ``S`` (seeds ``0..S-1``) or the list of integer seeds, one per slot.
        activation: ``"relu"``, ``"leaky_relu"`` (slope 0.2), ``"tanh"`` or ``"elu"``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        seeds: int | Sequence[int] = 1,
        activation: str = "leaky_relu",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        hidden = tuple(hidden)
        if any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}")
        seed_list = _seed_list(seeds)
        sizes = (in_features, *hidden, out_features)
        layers: list[nn.Module] = []
        for depth, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            # each layer gets its own stream per seed: seed * 1009 + depth keeps layers distinct
            layers.append(SeedLinear(a, b, [s * 1009 + depth for s in seed_list]))
            if depth < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.layers = nn.Sequential(*layers)
        self.seeds = seed_list

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MLPGenerator(SeedMLP):
    """The generator ``G``: latent codes ``(S, n, z_dim)`` to samples
    ``(S, n, x_dim)``."""

    def __init__(self, z_dim: int = 2, x_dim: int = 2,
                 hidden: Sequence[int] = (64, 64),
                 seeds: int | Sequence[int] = 1,
                 activation: str = "leaky_relu"):
        super().__init__(z_dim, x_dim, hidden, seeds, activation)
        self.z_dim, self.x_dim = z_dim, x_dim


class MLPDiscriminator(SeedMLP):
    """The discriminator (or critic): samples ``(S, n, x_dim)`` to logits ``(S, n)``."""

    def __init__(self, x_dim: int = 2, hidden: Sequence[int] = (64, 64),
                 seeds: int | Sequence[int] = 1, activation: str = "leaky_relu"):
        super().__init__(x_dim, 1, hidden, seeds, activation)
        self.x_dim = x_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)  # (S, n)


def per_seed_grad_norm(module: nn.Module) -> torch.Tensor:
    """The gradient norm of each seed's parameters, shape ``(S,)`` (zeros where no grad)."""
    total = None
    for p in module.parameters():
        if p.grad is None:
            continue
        sq = p.grad.reshape(p.grad.shape[0], -1).pow(2).sum(1)  # (S,)
        total = sq if total is None else total + sq
    if total is None:
        raise ValueError("module has no gradients yet: call backward() first")
    return total.sqrt()


# --- the PacGAN 2-D architecture: batch-normalised generator, maxout discriminator --------


@torch.no_grad()
def _normal_init_(layer: SeedLinear, seeds: Sequence[int], std: float) -> None:
    """Weights ``N(0, std^2)`` and zero biases, slot ``i`` drawn from ``seeds[i]`` (the PacGAN code's init)."""
    for i, s in enumerate(_seed_list(seeds)):
        g = torch.Generator().manual_seed(s)
        layer.weight[i].copy_(torch.randn(layer.in_features, layer.out_features, generator=g) * std)
    layer.bias.zero_()


class SeedBatchNorm(nn.Module):
    """Batch normalisation of ``(S, n, features)``, with each seed's statistics over its own ``n`` samples.

    In training mode the features are normalised by the batch mean and (biased) variance of
    each seed and feature, and the running averages are updated as
    ``running = (1 - momentum) * running + momentum * batch`` (the variance unbiased), exactly as
    :class:`torch.nn.BatchNorm1d` does per seed. In evaluation mode (``.eval()``) the running
    averages are used, so a sample does not depend on the others drawn with it. The learned
    scale starts at 1 and the shift at 0 in every slot.

    Args:
        features: the number of features ``h``.
        seeds: a count ``S`` or the list of seeds (only their number matters: the start is the same).
        momentum: the running averages' update weight; 0.05 in the PacGAN code.
        eps: added to the variance before the square root.
    """

    def __init__(self, features: int, seeds: int | Sequence[int] = 1, momentum: float = 0.05, eps: float = 1e-5):
        super().__init__()
        if not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive int, got {features!r}")
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        n = len(_seed_list(seeds))
        self.features, self.momentum, self.eps = features, momentum, eps
        self.weight = nn.Parameter(torch.ones(n, 1, features))  # (S, 1, h)
        self.bias = nn.Parameter(torch.zeros(n, 1, features))  # (S, 1, h)
        self.register_buffer("running_mean", torch.zeros(n, 1, features))
        self.register_buffer("running_var", torch.ones(n, 1, features))

    @property
    def n_seeds(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[0] != self.n_seeds or x.shape[2] != self.features:
            raise ValueError(f"x must have shape (seeds={self.n_seeds}, n, {self.features}), got {tuple(x.shape)}")
        if self.training:
            n = x.shape[1]
            if n < 2:
                raise ValueError(f"batch normalisation in training mode needs n >= 2 samples per seed, got {n}")
            mean = x.mean(1, keepdim=True)  # (S, 1, h)
            var = x.var(1, unbiased=False, keepdim=True)  # (S, 1, h)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * (n / (n - 1)), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias  # (S, n, h)

    def extra_repr(self) -> str:
        return f"seeds={self.n_seeds}, features={self.features}, momentum={self.momentum}"


class SeedMaxout(nn.Module):
    """A maxout layer (Goodfellow et al. 2013) batched over seeds.

    Shapes ``(S, n, in) -> (S, n, out)``. Unit ``j`` is the largest of
    ``pieces`` affine functions of the input,
    ``h_j = max_k (x W[:, j * pieces + k] + b[j * pieces + k])``: one
    :class:`SeedLinear` to ``out * pieces`` features, then a maximum over
    consecutive groups of ``pieces``.
    """

    def __init__(self, in_features: int, out_features: int,
                 pieces: int = 5, seeds: int | Sequence[int] = 1):
        super().__init__()
        if (not isinstance(pieces, int) or isinstance(pieces, bool)
                or pieces < 1):
            raise ValueError(
                f"pieces must be a positive int, got {pieces!r}")
        if not isinstance(out_features, int) or out_features < 1:
            raise ValueError(
                f"out_features must be a positive int, got {out_features!r}")
        self.linear = SeedLinear(in_features, out_features * pieces, seeds)
        self.out_features, self.pieces = out_features, pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)  # (S, n, out * pieces)
        y = y.unflatten(-1, (self.out_features, self.pieces))
        return y.amax(-1)  # (S, n, out)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def _check_hidden_and_init(hidden, init_std: float) -> tuple[int, ...]:
    """Validate the PacGAN networks' layer widths and initial weight scale."""
    hidden = tuple(hidden)
    if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty sequence of positive ints, got {hidden!r}")
    if not init_std > 0:
        raise ValueError(f"init_std must be > 0, got {init_std!r}")
    return hidden


class BatchNormGenerator(nn.Module):
    """PacGAN's 2-D generator: ``(S, n, z_dim) -> (S, n, x_dim)``, each hidden layer affine, batch norm, ReLU.

    Lin et al. (2018) use four hidden layers of 400 units (``hidden=(400,) * 4``). Weights start
    ``N(0, init_std^2)``, biases at 0, slot ``i`` of layer ``l`` from seed ``seeds[i] * 1009 + l``.
    Batch norm is per seed (:class:`SeedBatchNorm`): in training mode a generated point depends
    on the other points of its seed's batch; :meth:`gan_lab.train.Run.sample` switches to
    evaluation mode (running averages), as the reference code does when it evaluates.
    """

    def __init__(self, z_dim: int = 2, x_dim: int = 2, hidden: Sequence[int] = (400, 400, 400, 400),
                 seeds: int | Sequence[int] = 1, momentum: float = 0.05, init_std: float = 0.02):
        super().__init__()
        hidden = _check_hidden_and_init(hidden, init_std)
        seed_list = _seed_list(seeds)
        sizes = (z_dim, *hidden, x_dim)
        layers: list[nn.Module] = []
        for depth, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = SeedLinear(a, b, seed_list)
            _normal_init_(linear, [s * 1009 + depth for s in seed_list], init_std)
            layers.append(linear)
            if depth < len(sizes) - 2:
                layers += [SeedBatchNorm(b, seed_list, momentum), nn.ReLU()]
        self.layers = nn.Sequential(*layers)
        self.seeds, self.z_dim, self.x_dim = seed_list, z_dim, x_dim

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


class MaxoutDiscriminator(nn.Module):
    """PacGAN's 2-D discriminator: ``(S, n, x_dim) -> (S, n)`` logits through maxout layers.

    Lin et al. (2018) use three maxout layers of 200 units with 5 pieces each, then a linear
    output. Under packing, ``x_dim`` is the packed width ``m * d``. Weights start
    ``N(0, init_std^2)``, biases at 0, slot ``i`` of layer ``l`` from seed ``seeds[i] * 1009 + l``.
    """

    def __init__(self, x_dim: int = 2, hidden: Sequence[int] = (200, 200, 200), pieces: int = 5,
                 seeds: int | Sequence[int] = 1, init_std: float = 0.02):
        super().__init__()
        hidden = _check_hidden_and_init(hidden, init_std)
        seed_list = _seed_list(seeds)
        sizes = (x_dim, *hidden)
        layers: list[nn.Module] = []
        for depth, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer = SeedMaxout(a, b, pieces, seed_list)
            _normal_init_(layer.linear, [s * 1009 + depth for s in seed_list], init_std)
            layers.append(layer)
        out = SeedLinear(sizes[-1], 1, seed_list)
        _normal_init_(out, [s * 1009 + len(hidden) for s in seed_list], init_std)
        self.layers = nn.Sequential(*layers, out)
        self.seeds, self.x_dim = seed_list, x_dim

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)  # (S, n)


# --- minibatch standard deviation (ProGAN) --------------------------------------------------


class SeedMinibatchStd(nn.Module):
    r"""Minibatch standard deviation (Karras et al. 2018), batched over seeds: ``(S, n, h) -> (S, n, h + 1)``.

    ProGAN's layer against mode collapse: it lets the discriminator see a statistic of the
    whole batch, so a batch of near-identical samples is told from a real one even when each
    sample looks real on its own. For each seed the ``n`` samples are split into groups of
    ``group_size`` consecutive samples (``None``: one group, the whole batch, as the paper
    describes it; the authors' code uses groups of 4). In group :math:`g` the standard deviation
    of every feature :math:`j` over the group's samples (biased, as in the authors' code),

    .. math:: \sigma_{g j} = \sqrt{\tfrac{1}{|g|} \textstyle\sum_{i \in g}
              (h_{i j} - \bar h_{g j})^2 + \epsilon},
              \qquad s_g = \frac1h \sum_{j=1}^{h} \sigma_{g j},

    is averaged over the features, and the single number :math:`s_g` is appended to every
    sample of the group as one more feature. Each seed's statistic uses only its own samples,
    so seeds stay independent; samples within a group do not (the gradient of one sample's
    output reaches the others), which is why a gradient penalty, computed per sample, does not
    combine with this layer (:data:`DISCRIMINATORS` refuses it). No parameters.

    Args:
        group_size: samples per group; ``None`` for the whole batch. A batch of ``n`` samples
            needs ``n`` divisible by ``min(group_size, n)``.
        eps: added to the variance before the square root (``1e-8`` in the authors' code).
    """

    def __init__(self, group_size: int | None = None, eps: float = 1e-8):
        super().__init__()
        if group_size is not None and (not isinstance(group_size, int) or isinstance(group_size, bool)
                                       or group_size < 2):
            raise ValueError(f"group_size must be None or an int >= 2, got {group_size!r}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.group_size, self.eps = group_size, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] < 1:
            raise ValueError("x must have shape (seeds, n >= 1, features), "
                             f"got {tuple(x.shape)}")
        S, n, h = x.shape
        size = n if self.group_size is None else min(self.group_size, n)
        if n % size:
            raise ValueError(f"the batch of n={n} samples must be a multiple"
                             f" of group_size={self.group_size}")
        g = n // size  # groups of consecutive samples
        groups = x.reshape(S, g, size, h)
        var = groups.var(2, unbiased=False, keepdim=True)  # (S, g, 1, h)
        s = (var + self.eps).sqrt().mean(-1, keepdim=True)  # (S, g, 1, 1)
        s = s.expand(S, g, size, 1)  # each sample gets its group's s
        return torch.cat([groups, s], -1).reshape(S, n, h + 1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


class MinibatchStdDiscriminator(nn.Module):
    """An MLP discriminator with minibatch standard deviation: ``(S, n, x_dim) -> (S, n)`` logits.

    The layers of :class:`MLPDiscriminator` (same widths, activation and initial weights, slot
    ``i`` of layer ``l`` from seed ``seeds[i] * 1009 + l``), with one :class:`SeedMinibatchStd`
    inserted before the last hidden layer, which therefore has one more input. As in ProGAN,
    where the statistic enters the last block, it comes late, on learned features rather than
    raw coordinates, and at least one nonlinear layer follows it, so the discriminator can
    combine it with the sample's own features rather than only shift every logit of the batch.
    With a single hidden layer it is inserted before that layer, on the input.

    Args:
        x_dim: input size (the packed width ``m * d`` under packing).
        hidden: widths of the hidden layers, at least one.
        seeds: a count ``S`` or the list of integer seeds, one per slot.
        activation: as for :class:`SeedMLP`.
        group_size: :class:`SeedMinibatchStd`'s group size (``None``: the whole batch).
    """

    def __init__(self, x_dim: int = 2, hidden: Sequence[int] = (64, 64), seeds: int | Sequence[int] = 1,
                 activation: str = "leaky_relu", group_size: int | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        hidden = tuple(hidden)
        if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive ints, got {hidden!r}")
        seed_list = _seed_list(seeds)
        sizes = (x_dim, *hidden, 1)
        where = len(sizes) - 3  # the index of the last hidden layer's linear map
        layers: list[nn.Module] = []
        for depth, (a, b) in enumerate(itertools.pairwise(sizes)):
            if depth == where:
                layers.append(SeedMinibatchStd(group_size))
                a += 1
            layers.append(SeedLinear(a, b, [s * 1009 + depth for s in seed_list]))
            if depth < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.layers = nn.Sequential(*layers)
        self.seeds, self.x_dim = seed_list, x_dim

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)  # (S, n)


def _minibatch_std_discriminator(c, d_in, seeds):
    """``d_arch="mlp-mbstd"``; refuses a gradient penalty (it assumes samples do not interact)."""
    if c.penalty is not None:
        raise ValueError(f"d_arch='mlp-mbstd' does not combine with penalty={c.penalty!r}: minibatch "
                         "standard deviation couples the samples, so per-sample input gradients are not defined")
    return MinibatchStdDiscriminator(d_in, c.d_hidden, seeds, c.activation)


# --- the 2-D networks by name: TrainConfig.g_arch / d_arch ---------------------------------

#: ``TrainConfig.g_arch`` -> builder ``(config, x_dim, seeds) -> generator``.
GENERATORS = {
    "mlp": lambda c, x_dim, seeds: MLPGenerator(c.z_dim, x_dim, c.g_hidden, seeds, c.activation),
    "batchnorm": lambda c, x_dim, seeds: BatchNormGenerator(c.z_dim, x_dim, c.g_hidden, seeds),
}
#: ``TrainConfig.d_arch`` -> builder ``(config, in_dim, seeds) -> discriminator`` (``in_dim`` is packed).
DISCRIMINATORS = {
    "mlp": lambda c, d_in, seeds: MLPDiscriminator(d_in, c.d_hidden, seeds, c.activation),
    "maxout": lambda c, d_in, seeds: MaxoutDiscriminator(d_in, c.d_hidden, c.maxout_pieces, seeds),
    "mlp-mbstd": _minibatch_std_discriminator,
}


def build_generator(config, x_dim: int, seeds: Sequence[int]) -> nn.Module:
    """The generator ``config.g_arch`` names (:data:`GENERATORS`), one slot per seed."""
    if config.g_arch not in GENERATORS:
        raise ValueError(f"g_arch must be one of {tuple(GENERATORS)}, got {config.g_arch!r}")
    return GENERATORS[config.g_arch](config, x_dim, seeds)


def build_discriminator(config, in_dim: int, seeds: Sequence[int]) -> nn.Module:
    """The discriminator ``config.d_arch`` names (:data:`DISCRIMINATORS`), one slot per seed."""
    if config.d_arch not in DISCRIMINATORS:
        raise ValueError(f"d_arch must be one of {tuple(DISCRIMINATORS)}, got {config.d_arch!r}")
    return DISCRIMINATORS[config.d_arch](config, in_dim, seeds)


from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init  # noqa: E402,F401  (their old home)
