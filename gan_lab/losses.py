r"""GAN objectives as pure functions of the discriminator's logits.

The discriminator outputs a *logit* :math:`l = D_{\text{logit}}(x)`; where a probability
is meant, :math:`D(x) = \sigma(l)`. Working on logits keeps every loss finite: with
:math:`\operatorname{softplus}(t) = \log(1 + e^t)` we have
:math:`-\log \sigma(l) = \operatorname{softplus}(-l)` and
:math:`-\log(1 - \sigma(l)) = \operatorname{softplus}(l)`.

Both functions return *losses to minimise*. For each ``kind``:

=============== ================================================== =============================
kind            discriminator loss :math:`L_D`                     generator loss :math:`L_G`
=============== ================================================== =============================
``minimax``     :math:`-E\log D(x) - E\log(1 - D(G(z)))`           :math:`E\log(1 - D(G(z)))`
``ns``          same as ``minimax``                                :math:`-E\log D(G(z))`
``hinge``       :math:`E\max(0, 1 - l_r) + E\max(0, 1 + l_f)`      :math:`-E\, l_f`
``wasserstein`` :math:`-E\, l_r + E\, l_f`                         :math:`-E\, l_f`
``lsgan``       :math:`\tfrac12 E(l_r - 1)^2 + \tfrac12 E\, l_f^2` :math:`\tfrac12 E(l_f - 1)^2`
=============== ================================================== =============================

``minimax`` is the generator cost of Goodfellow et al. (2014), :math:`\min_G V(D, G)`;
``ns`` is their non-saturating alternative. (Several libraries call ``ns`` "minimax":
here the names follow the equations.) ``lsgan`` uses the 0-1-1 coding of Mao et al. (2017)
(fake target 0, real target 1, generator target 1) on the raw output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The loss kinds understood by :func:`discriminator_loss` and :func:`generator_loss`.
KINDS = ("minimax", "ns", "hinge", "wasserstein", "lsgan")


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def _check_logits(name: str, logits) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    return logits


def _mean(t: torch.Tensor, dim: int | None) -> torch.Tensor:
    return t.mean() if dim is None else t.mean(dim=dim)


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The discriminator's (or critic's) loss, to minimise.

    Args:
        kind: one of ``"minimax"``, ``"ns"``, ``"hinge"``, ``"wasserstein"``, ``"lsgan"``.
        real_logits: discriminator outputs on data, any shape.
        fake_logits: discriminator outputs on generated samples.
        dim: the batch dimension to average over; ``None`` averages over all elements.
            The training loop passes ``dim=-1`` on ``(seeds, batch)`` logits to get one loss per seed.

    Returns:
        The mean loss: a scalar, or one value per remaining index when ``dim`` is given.
    """
    _check_kind(kind)
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    if dim is not None and real_logits.shape[:-1] != fake_logits.shape[:-1]:
        raise ValueError(
            f"real_logits and fake_logits must agree on all but the batch dimension, "
            f"got {tuple(real_logits.shape)} and {tuple(fake_logits.shape)}"
        )
    if kind in ("minimax", "ns"):
        # -log D(x) - log(1 - D(G(z))), with D = sigmoid(logit)
        return _mean(F.softplus(-real_logits), dim) + _mean(F.softplus(fake_logits), dim)
    if kind == "hinge":
        return _mean(F.relu(1 - real_logits), dim) + _mean(F.relu(1 + fake_logits), dim)
    if kind == "wasserstein":
        return -_mean(real_logits, dim) + _mean(fake_logits, dim)
    # lsgan: push real outputs to 1 and fake outputs to 0
    return 0.5 * _mean((real_logits - 1) ** 2, dim) + 0.5 * _mean(fake_logits**2, dim)


def generator_loss(kind: str, fake_logits: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The generator's loss, to minimise.

    Args:
        kind: one of ``"minimax"``, ``"ns"``, ``"hinge"``, ``"wasserstein"``, ``"lsgan"``.
        fake_logits: discriminator outputs on generated samples, any shape.
        dim: the batch dimension to average over; ``None`` averages over all elements.

    Returns:
        The mean loss: a scalar, or one value per remaining index when ``dim`` is given.
    """
    _check_kind(kind)
    fake_logits = _check_logits("fake_logits", fake_logits)
    if kind == "minimax":
        # log(1 - D(G(z))) = -softplus(l): saturates (zero gradient) where D(G(z)) -> 0
        return -_mean(F.softplus(fake_logits), dim)
    if kind == "ns":
        # -log D(G(z)) = softplus(-l)
        return _mean(F.softplus(-fake_logits), dim)
    if kind in ("hinge", "wasserstein"):
        return -_mean(fake_logits, dim)
    return 0.5 * _mean((fake_logits - 1) ** 2, dim)
