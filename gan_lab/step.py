"""One discriminator step, one generator step, one simultaneous step: shared by every loop.

The 2-D fits of :mod:`gan_lab.train` (seed-batched networks, logits ``(S, B)``) and the image
fit of :mod:`gan_lab.images` (one network, logits ``(B,)``) call the same functions; a
:class:`StepSpec` says what differs (the loss, the penalty, clipping, packing, the precision
policy, the memory format). Each network's loss is the mean over the batch's last dimension,
so a seed-batched run gets one loss per seed; losses are *summed* over seeds before
``backward``, which gives every seed exactly its own gradient.

The functions take validated inputs (the loops check everything once, at the boundary) and
return detached statistics as tensors on the run's device, so the loop never waits for the
device. :mod:`gan_lab.compiled` is the same step written functionally for ``torch.compile``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from . import devices, losses
from .checks import one_of, optional_positive_number, positive_int, positive_number

PENALTIES = (None, "wgan-gp", "r1")  #: gradient penalties a critic's loss can carry
OPTIMIZERS = ("adam", "rmsprop", "sgd")


@dataclass(frozen=True)
class StepSpec:
    """What a step needs to know besides the networks and the batch.

    Attributes:
        loss: one of :data:`gan_lab.losses.KINDS`.
        penalty: ``None``, ``"wgan-gp"`` (weight lambda, two-sided, at interpolates) or
            ``"r1"`` (weight gamma, term ``gamma / 2 * E |grad D(x)|^2`` at data).
        penalty_weight: lambda or gamma.
        clip: clamp the critic's weights to ``[-clip, clip]`` after each D step (WGAN).
        pack: PacGAN's packing degree (2-D only): the discriminator sees ``pack`` points at once.
        flat_penalty: the penalty differentiates a critic of flattened points (images).
        autocast: run the networks under the precision policy (:func:`gan_lab.devices.autocast`).
        memory_format: the generated batch's memory format (channels-last for images on CUDA).
    """

    loss: str = "ns"
    penalty: str | None = None
    penalty_weight: float = 10.0
    clip: float | None = None
    pack: int = 1
    flat_penalty: bool = False
    autocast: bool = False
    memory_format: torch.memory_format = torch.contiguous_format

    def __post_init__(self) -> None:
        one_of("loss", self.loss, losses.KINDS)
        one_of("penalty", self.penalty, PENALTIES)
        positive_number("penalty_weight", self.penalty_weight)
        optional_positive_number("clip", self.clip)
        positive_int("pack", self.pack)


def make_optimizer(name: str, params, lr: float, betas, device: torch.device) -> torch.optim.Optimizer:
    """Adam (with ``betas``), RMSProp or plain SGD over ``params``, multi-tensor (foreach) updates.

    On CUDA, Adam is ``capturable`` (its step counter lives on the device), so the same state
    serves the eager loop, a compiled step and a captured CUDA graph.
    """
    one_of("optimizer", name, OPTIMIZERS)
    params = list(params)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), foreach=True,
                                capturable=device.type == "cuda")
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True, capturable=device.type == "cuda")
    return torch.optim.SGD(params, lr=lr, foreach=True)


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """Group consecutive points: ``(S, B * pack, d) -> (S, B, pack * d)``.

    Pack ``b`` of seed ``s`` concatenates ``x[s, b*pack]``, ...,
    ``x[s, b*pack + pack - 1]``; with independent points in, the packs hold
    independent points (PacGAN's packed input).
    """
    pack = positive_int("pack", pack)
    if x.ndim != 3 or x.shape[1] % pack:
        raise ValueError(
            f"x must have shape (S, n, d) with n a multiple of "
            f"pack={pack}, got {tuple(x.shape)}"
        )
    S, n, d = x.shape
    return x.reshape(S, n // pack, pack * d)  # (S, B, pack * d)


def grad_norm(params: list[torch.Tensor], seed_batched: bool) -> torch.Tensor:
    """The norm of the gradient of ``params``: per seed ``(S,)``, or a scalar for one network."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        raise ValueError("no gradients yet: call backward() first")
    if seed_batched:
        return torch.cat([g.reshape(g.shape[0], -1) for g in grads], 1).norm(dim=1)  # (S,)
    return torch.cat([g.reshape(-1) for g in grads]).norm()


def clip_(params: list[torch.Tensor], clip: float | None) -> None:
    """WGAN's weight clipping: clamp every tensor in ``params`` to ``[-clip, clip]``, in place."""
    if clip is not None:
        with torch.no_grad():
            torch._foreach_clamp_min_(params, -clip)
            torch._foreach_clamp_max_(params, clip)


def _precision(spec: StepSpec, device: torch.device):
    return devices.autocast(device) if spec.autocast else contextlib.nullcontext()


def penalty_term(D, spec: StepSpec, x_real: torch.Tensor,
                 x_fake: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """The critic's gradient-penalty term, per seed, in float32.

    Called only when ``spec.penalty`` is set.
    """
    critic, real, fake = D, x_real, x_fake
    if spec.flat_penalty:  # image critics see points as (B, pixels)
        critic = lambda flat: D(flat.reshape(x_real.shape))  # noqa: E731
        real = x_real.reshape(len(x_real), -1)
        fake = x_fake.reshape(len(x_fake), -1)
    weight = spec.penalty_weight
    if spec.penalty == "wgan-gp":
        return weight * losses.gradient_penalty(critic, real, fake, rng=rng)
    return 0.5 * weight * losses.r1_penalty(critic, real)


def discriminator_step(
    D, opt_d, spec: StepSpec, x_real: torch.Tensor, x_fake: torch.Tensor,
    rng: torch.Generator,
) -> torch.Tensor:
    """One step on ``L_D`` (+ penalty), then clipping; ``x_fake`` detached.

    Returns the statistics ``(4, S)`` (``(4,)`` for one network): the loss
    without the penalty, the penalty term, and the batch means of the logits
    on data and on generated points.
    """
    with _precision(spec, x_real.device):
        real_logits = D(x_real).float()  # (S, B), or (B,) for one network
        fake_logits = D(x_fake).float()
    d_loss = losses.discriminator_loss(  # (S,) or ()
        spec.loss, real_logits, fake_logits, dim=-1)
    if spec.penalty:
        penalty = penalty_term(D, spec, x_real, x_fake, rng)
    else:
        penalty = torch.zeros_like(d_loss)
    params = list(D.parameters())
    opt_d.zero_grad(set_to_none=True)
    # the sum over seeds gives each seed its own gradient
    (d_loss + penalty).sum().backward(inputs=params)
    opt_d.step()
    clip_(params, spec.clip)
    stats = [d_loss, penalty, real_logits.mean(-1), fake_logits.mean(-1)]
    return torch.stack(stats).detach()


def generator_step(G, D, opt_g, spec: StepSpec, z: torch.Tensor | None,
                   seed_batched: bool = True,
                   x_fake: torch.Tensor | None = None) -> torch.Tensor:
    """One step on ``L_G`` through a frozen D (only G's parameters change).

    ``x_fake``, if given, is a generated batch that still holds G's graph
    (``reuse_fake``), used instead of ``G(z)``. Returns ``(2, S)`` (``(2,)``
    for one network): the loss and the norm of G's gradient.
    """
    with _precision(spec, (z if z is not None else x_fake).device):
        x_fake = G(z) if x_fake is None else x_fake
        x_fake = x_fake.contiguous(memory_format=spec.memory_format)
        if spec.pack > 1:
            x_fake = pack_samples(x_fake, spec.pack)
        fake_logits = D(x_fake).float()
    g_loss = losses.generator_loss(spec.loss, fake_logits, dim=-1)
    params = list(G.parameters())
    opt_g.zero_grad(set_to_none=True)
    # gradients flow through D; D's weights get none
    g_loss.sum().backward(inputs=params)
    norm = grad_norm(params, seed_batched)
    opt_g.step()
    return torch.stack([g_loss.detach(), norm])


def simultaneous_step(G, D, opt_g, opt_d, spec: StepSpec, x_real: torch.Tensor, z: torch.Tensor,
                      rng: torch.Generator) -> torch.Tensor:
    """Both networks' gradients at the current point of both, from one forward pass; then both step.

    Returns ``(6, S)``: ``d_loss``, ``penalty``, ``g_loss``, the two mean logits, G's gradient norm.
    """
    x_fake = G(z)
    if spec.pack > 1:
        x_fake = pack_samples(x_fake, spec.pack)  # (S, B, m * d), keeps G's graph
    real_logits, fake_logits = D(x_real), D(x_fake)
    d_loss = losses.discriminator_loss(spec.loss, real_logits, fake_logits, dim=-1)
    penalty = penalty_term(D, spec, x_real, x_fake.detach(), rng) if spec.penalty else torch.zeros_like(d_loss)
    g_loss = losses.generator_loss(spec.loss, fake_logits, dim=-1)
    d_params, g_params = list(D.parameters()), list(G.parameters())
    d_grads = torch.autograd.grad((d_loss + penalty).sum(), d_params, retain_graph=True)
    g_grads = torch.autograd.grad(g_loss.sum(), g_params)
    for p, g in zip(d_params + g_params, d_grads + g_grads):
        p.grad = g
    norm = grad_norm(g_params, True)
    opt_d.step()
    opt_g.step()
    clip_(d_params, spec.clip)
    stats = [d_loss, penalty, g_loss, real_logits.mean(-1), fake_logits.mean(-1)]
    return torch.stack([s.detach() for s in stats] + [norm])
