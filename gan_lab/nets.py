"""Networks for 2-D data, batched over seeds.

Every layer here holds the parameters of ``S`` independent networks ("seeds") in one
tensor with a leading seed dimension, so ``S`` training runs advance together in one
batched matrix multiply. Inputs and outputs carry that dimension: ``(S, n, features)``.
Slot ``i`` is initialised from its own integer seed, so a network's starting point
does not depend on how many other seeds share the batch.
"""

from __future__ import annotations

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
    """The generator ``G``: latent codes ``(S, n, z_dim)`` to samples ``(S, n, x_dim)``."""

    def __init__(self, z_dim: int = 2, x_dim: int = 2, hidden: Sequence[int] = (64, 64),
                 seeds: int | Sequence[int] = 1, activation: str = "leaky_relu"):
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
