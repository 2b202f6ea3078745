r"""GAN objectives as pure functions of the discriminator's logits.

The discriminator outputs a *logit* :math:`l = D_{\text{logit}}(x)`; where a probability
is meant, :math:`D(x) = \sigma(l)`. Working on logits keeps every loss finite: with
:math:`\operatorname{softplus}(t) = \log(1 + e^t)` we have
:math:`-\log \sigma(l) = \operatorname{softplus}(-l)` and
:math:`-\log(1 - \sigma(l)) = \operatorname{softplus}(l)`.

Both functions return *losses to minimise*. For each ``loss``:

=============== ================================================== =============================
loss            discriminator loss :math:`L_D`                     generator loss :math:`L_G`
=============== ================================================== =============================
``minimax``     :math:`-E\log D(x) - E\log(1 - D(G(z)))`           :math:`E\log(1 - D(G(z)))`
``ns``          same as ``minimax``                                :math:`-E\log D(G(z))`
``hinge``       :math:`E\max(0, 1 - l_r) + E\max(0, 1 + l_f)`      :math:`-E\, l_f`
``wasserstein`` :math:`-E\, l_r + E\, l_f`                         :math:`-E\, l_f`
``lsgan``       :math:`\tfrac12 E(l_r - 1)^2 + \tfrac12 E\, l_f^2` :math:`\tfrac12 E(l_f - 1)^2`
=============== ================================================== =============================

The f-GAN losses (Nowozin et al., 2016) take the names of their divergences,
``kl``, ``reverse_kl``, ``pearson``, ``hellinger``, ``jsd`` and ``tv``
(:data:`gan_lab.fdiv.LOSS_NAMES`): with the divergence's output activation :math:`g_f` and
conjugate :math:`f^*` (:mod:`gan_lab.fdiv`),

.. math::

   L_D = -E\, g_f(l_r) + E\, f^*(g_f(l_f)), \qquad L_G = -E\, f^*(g_f(l_f)),

so that :math:`-L_D` is the variational lower bound on :math:`D_f(p_{\text{data}} \| p_g)`
and the generator descends it (the saddle-point form). :math:`f^*(g_f(l))` is evaluated in
closed form from the logit (``conjugate_of_logit`` of :class:`gan_lab.fdiv.FDivergence`), so no
density ratio is ever exponentiated where it need not be.

``minimax`` is the generator cost of Goodfellow et al. (2014), :math:`\min_G V(D, G)`;
``ns`` is their non-saturating alternative. (Several libraries call ``ns`` "minimax":
here the names follow the equations.) ``lsgan`` uses the 0-1-1 coding of Mao et al. (2017)
(fake target 0, real target 1, generator target 1) on the raw output.

The gradient penalties (:func:`gradient_penalty` of WGAN-GP, :func:`r1_penalty`) are
functions of the critic itself; the kernel two-sample statistics (:func:`gan_lab.mmd.mmd2`
and its helpers, re-exported here) are functions of samples, in :mod:`gan_lab.mmd`. All are
differentiable and batched over seeds.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from . import checks, fdiv

#: The loss kinds understood by :func:`discriminator_loss` and :func:`generator_loss`: the
#: GAN losses, then the f-GAN losses named after their divergences (:data:`F_GAN_KINDS`).
F_GAN_KINDS = fdiv.LOSS_NAMES
KINDS = ("minimax", "ns", "hinge", "wasserstein", "lsgan") + F_GAN_KINDS


def _check_kind(loss: str) -> str:
    if loss not in KINDS:
        raise ValueError(f"loss must be one of {KINDS}, got {loss!r}")
    return loss


def _check_logits(name: str, logits) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    return logits


def _mean(t: torch.Tensor, dim: int | None) -> torch.Tensor:
    if dim is None:
        return t.mean()
    if not isinstance(dim, int) or isinstance(dim, bool) or not -t.ndim <= dim < t.ndim:
        raise ValueError(f"dim must be None or an int in [{-t.ndim}, {t.ndim}) for logits of shape "
                         f"{tuple(t.shape)}, got {dim!r}")
    return t.mean(dim=dim)


@checks.renamed(kind="loss")
def discriminator_loss(loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       dim: int | None = None) -> torch.Tensor:
    """The discriminator's (or critic's) loss, to minimise.

    Args:
        loss: one of ``"minimax"``, ``"ns"``, ``"hinge"``, ``"wasserstein"``, ``"lsgan"``
            or an f-GAN loss, ``"kl"``, ``"reverse_kl"``, ``"pearson"``, ``"hellinger"``,
            ``"jsd"``, ``"tv"`` (:data:`KINDS`; ``kind=`` is accepted too).
        real_logits: discriminator outputs on data, any shape.
        fake_logits: discriminator outputs on generated samples.
        dim: the batch dimension to average over; ``None`` averages over all elements.
            The training loop passes ``dim=-1`` on ``(seeds, batch)`` logits to get one loss per seed.

    Returns:
        The mean loss: a scalar, or one value per remaining index when ``dim`` is given.
    """
    _check_kind(loss)
    real_logits = _check_logits("real_logits", real_logits)
    fake_logits = _check_logits("fake_logits", fake_logits)
    if dim is not None and real_logits.shape[:-1] != fake_logits.shape[:-1]:
        raise ValueError(
            f"real_logits and fake_logits must agree on all but the batch dimension, "
            f"got {tuple(real_logits.shape)} and {tuple(fake_logits.shape)}"
        )
    if loss in ("minimax", "ns"):
        # -log D(x) - log(1 - D(G(z))), with D = sigmoid(logit)
        return _mean(F.softplus(-real_logits), dim) + _mean(F.softplus(fake_logits), dim)
    if loss == "hinge":
        return _mean(F.relu(1 - real_logits), dim) + _mean(F.relu(1 + fake_logits), dim)
    if loss == "wasserstein":
        return -_mean(real_logits, dim) + _mean(fake_logits, dim)
    if loss in F_GAN_KINDS:  # minus the variational bound E g_f(l_r) - E f*(g_f(l_f))
        d = fdiv.DIVERGENCES[loss]
        return -_mean(d.activation(real_logits), dim) + _mean(d.conjugate_of_logit(fake_logits), dim)
    # lsgan: push real outputs to 1 and fake outputs to 0
    return 0.5 * _mean((real_logits - 1) ** 2, dim) + 0.5 * _mean(fake_logits**2, dim)


@checks.renamed(kind="loss")
def generator_loss(loss: str, fake_logits: torch.Tensor,
                   dim: int | None = None) -> torch.Tensor:
    """The generator's loss, to minimise.

    Args:
        loss: one of ``"minimax"``, ``"ns"``, ``"hinge"``,
            ``"wasserstein"``, ``"lsgan"`` or an f-GAN loss (:data:`KINDS`;
            ``kind=`` is accepted too). An f-GAN generator descends the
            bound: :math:`L_G = -E f^*(g_f(l_f))`.
        fake_logits: discriminator outputs on generated samples, any shape.
        dim: the batch dimension to average over; ``None`` averages over
            all elements.

    Returns:
        The mean loss: a scalar, or one value per remaining index when
        ``dim`` is given.
    """
    _check_kind(loss)
    fake_logits = _check_logits("fake_logits", fake_logits)
    if loss == "minimax":
        # log(1 - D(G(z))) = -softplus(l): saturates (zero gradient)
        # where D(G(z)) -> 0
        return -_mean(F.softplus(fake_logits), dim)
    if loss == "ns":
        # -log D(G(z)) = softplus(-l)
        return _mean(F.softplus(-fake_logits), dim)
    if loss in ("hinge", "wasserstein"):
        return -_mean(fake_logits, dim)
    if loss in F_GAN_KINDS:  # descend the bound: -E f*(g_f(l_f))
        conjugate = fdiv.DIVERGENCES[loss].conjugate_of_logit
        return -_mean(conjugate(fake_logits), dim)
    return 0.5 * _mean((fake_logits - 1) ** 2, dim)


# --- gradient penalties: WGAN-GP and R1 -------------------------------------------------


def _check_points(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim not in (2, 3) or x.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor of shape (B, d) or (S, B, d), got {tuple(x.shape)}")
    return x


def _critic_grad(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """:math:`\\nabla_x` critic at ``x`` (detached from its history), with the graph kept; same shape as ``x``."""
    if not callable(critic):
        raise TypeError(f"critic must be callable, got {type(critic).__name__}")
    with torch.enable_grad():  # the penalty is also right when evaluated under torch.no_grad()
        x = x.detach().requires_grad_(True)
        out = critic(x)  # (S, B) or (B,)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape[:-1]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"critic must map inputs of shape {tuple(x.shape)} to shape {tuple(x.shape[:-1])}, got {shape}")
        if not out.requires_grad:  # the critic does not depend on x (nor on any parameter)
            return torch.zeros_like(x)
        # Samples do not interact, so the gradient of the sum is each output's own gradient.
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad  # (S, B, d) or (B, d)


@checks.renamed(generator="rng")
def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    rng: torch.Generator | None = None,
    target: float = 1.0,
) -> torch.Tensor:
    r"""The WGAN-GP penalty :math:`E\,(\lVert \nabla_x f(\hat x) \rVert_2 - c)^2` at random interpolates.

    Gulrajani et al. (2017) enforce the critic's 1-Lipschitz constraint softly, on the
    segments between data and generated points:
    :math:`\hat x = \epsilon\, x_{\text{real}} + (1 - \epsilon)\, x_{\text{fake}}` with
    :math:`\epsilon \sim U[0, 1]` drawn once per pair, as
    ``torch.rand(real.shape[:-1] + (1,), generator=rng, device=real.device, dtype=real.dtype)``.
    The critic's loss is then :math:`-E f(x_{\text{real}}) + E f(x_{\text{fake}}) + \lambda \cdot`
    (this penalty), usually with :math:`\lambda = 10`. The result keeps its graph
    (``create_graph=True``), so its backward pass reaches the critic's parameters.
    ``real`` and ``fake`` are detached: the penalty trains the critic only.

    The critic must treat samples independently (no batch normalisation across the batch).
    A gradient that is exactly zero gives a zero gradient of the norm, not NaN.

    Args:
        critic: maps points ``(S, B, d)`` to outputs ``(S, B)`` (or ``(B, d)`` to ``(B,)``).
        real: data points, shape ``(S, B, d)`` (one batch per seed) or ``(B, d)``.
        fake: generated points, the same shape as ``real``.
        rng: the random generator for :math:`\epsilon`, on ``real``'s device (``generator=`` is
            accepted too).
        target: the gradient norm :math:`c` aimed at; 1 is WGAN-GP's two-sided penalty,
            0 a zero-centred one.

    Returns:
        The mean over the batch: shape ``(S,)`` for seed-batched input, a scalar otherwise.

    Raises:
        TypeError: if ``critic`` is not callable, or ``real`` or ``fake`` is not a
            floating-point tensor.
        ValueError: for inputs of different or wrong shapes, a critic output of the wrong
            shape, or a ``target`` that is not a finite number >= 0.
    """
    real, fake = _check_points("real", real), _check_points("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not (math.isfinite(target) and target >= 0):
        raise ValueError(f"target must be a finite number >= 0, got {target!r}")
    eps = torch.rand(real.shape[:-1] + (1,), generator=rng, device=real.device, dtype=real.dtype)  # (S, B, 1)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()  # (S, B, d)
    grad = _critic_grad(critic, x_hat)  # (S, B, d)
    # vector_norm's backward is 0 (not NaN) where the gradient vanishes
    norm = torch.linalg.vector_norm(grad, dim=-1)  # (S, B)
    return ((norm - target) ** 2).mean(-1)


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    r"""The R1 penalty :math:`E_{p_{\text{data}}} \lVert \nabla_x f(x) \rVert_2^2` at data points.

    Mescheder et al. (2018) add :math:`\tfrac{\gamma}{2}` times this to the
    discriminator's loss; the caller multiplies by :math:`\gamma / 2`. The result keeps its
    graph (``create_graph=True``); ``real`` is detached. The critic must treat samples
    independently.

    Args:
        critic: maps points ``(S, B, d)`` to logits ``(S, B)`` (or ``(B, d)`` to ``(B,)``).
        real: data points, shape ``(S, B, d)`` or ``(B, d)``.

    Returns:
        The mean over the batch: shape ``(S,)`` for seed-batched input, a scalar otherwise.

    Raises:
        TypeError: if ``critic`` is not callable or ``real`` is not a floating-point tensor.
        ValueError: if ``real`` or the critic's output has the wrong shape.
    """
    real = _check_points("real", real)
    grad = _critic_grad(critic, real)  # (S, B, d)
    return grad.pow(2).sum(-1).mean(-1)


# The kernel two-sample statistics live in gan_lab.mmd; re-exported here, their first home.
from .mmd import gaussian_kernel, median_heuristic, mmd2, mmd_witness  # noqa: E402,F401
