"""DCGAN-style convolutional networks for 28 x 28 images (one seed per network).

Radford et al. (2016)'s recipe at MNIST's size: strided convolutions instead of pooling, batch
normalisation on every layer except the generator's output layer and the discriminator's input
layer (the paper's two exceptions, which it found avoided sample oscillation and instability),
ReLU in the generator, LeakyReLU(0.2) in the discriminator, weights initialised
``N(0, 0.02^2)`` (:func:`dcgan_init`). Trained by :func:`gan_lab.images.fit_images`.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_width(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class DCGANGenerator(nn.Module):
    """The DCGAN generator for 28 x 28 images (Radford et al. 2016, sized
    for MNIST).

    ``z (N, z_dim) -> (N, 1, 28, 28)`` in ``[-1, 1]``: a linear layer to
    ``4 width`` maps of 7 x 7, then two stride-2 transposed convolutions
    (7 -> 14 -> 28), batch normalisation and ReLU between them, and
    ``tanh`` at the end (no batch normalisation on the output layer). One
    network, initialised from ``seed`` with the DCGAN paper's
    ``N(0, 0.02^2)`` weights (standard deviation 0.02).

    Args:
        z_dim: latent dimension.
        width: channels of the last hidden layer (the first has
            ``4 width``).
        seed: the initialisation seed.
    """

    def __init__(self, z_dim: int = 64, width: int = 32, seed: int = 0):
        super().__init__()
        self.z_dim = _check_width("z_dim", z_dim)
        self.width = _check_width("width", width)
        self.project = nn.Sequential(
            nn.Linear(z_dim, 4 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (4 * width, 7, 7)),  # (N, 4w, 7, 7)
            nn.BatchNorm2d(4 * width),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(  # (N, 2w, 14, 14)
                4 * width, 2 * width, 4, stride=2, padding=1, bias=False
            ),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            # the output layer: no batch normalisation (DCGAN)
            nn.ConvTranspose2d(  # (N, 1, 28, 28)
                2 * width, 1, 4, stride=2, padding=1
            ),
            nn.Tanh(),
        )
        dcgan_init(self, seed)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(
                f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}"
            )
        return self.upsample(self.project(z))  # (N, 1, 28, 28)


class DCGANDiscriminator(nn.Module):
    """The DCGAN discriminator (or critic) for 28 x 28 images: images
    ``(N, 1, 28, 28)`` to logits ``(N,)``.

    Two stride-2 convolutions (28 -> 14 -> 7) with leaky ReLU (slope 0.2),
    then a linear layer to one logit. ``batch_norm=True`` normalises the
    second convolution's output, as in DCGAN, never the input layer's; a
    WGAN-GP critic must not use it, because the gradient penalty assumes
    each sample's output depends on that sample alone.

    Args:
        width: channels of the first convolution (the second has
            ``2 width``).
        batch_norm: batch normalisation after the second convolution.
        seed: the initialisation seed.
    """

    def __init__(
        self, width: int = 32, batch_norm: bool = True, seed: int = 0
    ):
        super().__init__()
        self.width = _check_width("width", width)
        self.batch_norm = bool(batch_norm)
        self.features = nn.Sequential(
            # the input layer: no batch normalisation (DCGAN)
            nn.Conv2d(1, width, 4, stride=2, padding=1),  # (N, w, 14, 14)
            nn.LeakyReLU(0.2),
            nn.Conv2d(  # (N, 2w, 7, 7)
                width, 2 * width, 4, stride=2, padding=1, bias=not batch_norm
            ),
            nn.BatchNorm2d(2 * width) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # (N, 2w * 49)
        )
        self.logit = nn.Linear(2 * width * 7 * 7, 1)
        dcgan_init(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(
                "x must have shape (N, 1, 28, 28), "
                f"got {tuple(x.shape)}"
            )
        return self.logit(self.features(x)).squeeze(-1)  # (N,)


_INIT = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)


@torch.no_grad()
def dcgan_init(module: nn.Module, seed: int) -> nn.Module:
    """DCGAN initialisation from ``seed``: conv and linear weights
    ``N(0, 0.02^2)``, batch-norm scales ``N(1, 0.02^2)``, biases 0.
    Returns ``module``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            noise = torch.randn(m.weight.shape, generator=g)
            m.weight.copy_(1 + noise * 0.02)
        if isinstance(m, _INIT) and m.bias is not None:
            m.bias.zero_()
    return module
