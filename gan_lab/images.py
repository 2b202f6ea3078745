"""Image GANs on MNIST: the DCGAN training loop.

:func:`fit_images` trains one DCGAN (:class:`gan_lab.dcgan.DCGANGenerator` against
:class:`gan_lab.dcgan.DCGANDiscriminator`) with the objectives of :mod:`gan_lab.losses`.
Image networks are not seed-batched: several seeds are several calls. The loop keeps the
whole data set on the device as uint8 (:class:`gan_lab.mnist.DeviceImages`) and draws
batches by index; on CUDA it also runs the networks under bfloat16 autocast in
channels-last memory format. The code path is the same on every device, with those two
switched off on the CPU. The steps are those of :mod:`gan_lab.step` and the loop that of
:mod:`gan_lab.loop`, shared with the 2-D fits. The plain ``DataLoader`` loop the benchmark
compares against is :func:`gan_lab.baselines.plain_dcgan`.

The evaluation classifier lives in :mod:`gan_lab.classifier` and the image grid in
:func:`gan_lab.plots.image_grid`; both are re-exported here for older code.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from . import checks, devices, losses, loop, mnist, profile, spectral
from . import step as step_mod
from .classifier import MNISTClassifier, accuracy, as_float_images, predict, train_classifier  # noqa: F401
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .plots import image_grid  # noqa: F401
from .config import merge
from .step import PENALTIES

HISTORY = ("d_loss", "penalty", "g_loss", "real_logit", "fake_logit", "g_grad_norm")  #: an image run's history


@dataclass
class ImageTrainConfig:
    """Everything that defines one image-GAN training run (stored on the :class:`ImageRun`)."""

    loss: str = "ns"  #: one of :data:`gan_lab.losses.KINDS`
    #: The gradient penalty added to the critic's loss, ``"wgan-gp"`` (two-sided, at interpolates)
    #: or ``"r1"`` (the term ``gamma / 2 * E |grad D(x)|^2`` at data), or ``None`` for none.
    penalty: str | None = None
    penalty_weight: float = 10.0  #: lambda of WGAN-GP, gamma of R1
    steps: int = 1000  #: generator steps
    batch_size: int = 64
    z_dim: int = 64
    width: int = 32  #: channel width of both networks
    #: Batch normalisation in the discriminator; ``None`` means on, except with a gradient penalty
    #: or spectral normalisation.
    d_batch_norm: bool | None = None
    #: Spectral normalisation (Miyato et al. 2018) of the discriminator's ``Conv2d`` and ``Linear``
    #: weights (:func:`gan_lab.spectral.apply_spectral_norm`). It needs the discriminator without
    #: batch norm (``d_batch_norm`` ``None`` or ``False``), whose scale SN would not control.
    spectral_norm: bool = False
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1  #: discriminator steps per generator step
    seed: int = 0  #: network initialisation, data order and noise
    #: Decay of the exponential moving average of G's weights, or ``None`` for no EMA copy.
    ema: float | None = 0.999
    snapshot_every: int | None = None  #: fixed-noise samples every this many steps
    n_fixed: int = 64  #: fixed latent codes for the snapshots
    device: str | None = None  #: ``None``: :func:`gan_lab.profile.device`
    cpu_threads: int | None = 1  #: CPU threads while training (restored afterwards)

    def validate(self) -> "ImageTrainConfig":
        """Raise ``ValueError`` naming the first field that is out of range."""
        if self.loss not in losses.KINDS:
            raise ValueError(f"loss must be one of {losses.KINDS}, got {self.loss!r}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}")
        for name in ("steps", "batch_size", "z_dim", "width", "n_critic", "n_fixed"):
            val = getattr(self, name)
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        for name in ("lr_g", "lr_d", "penalty_weight"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not (np.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {val!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0 < self.ema < 1):
            raise ValueError(f"ema must be None or a decay in (0, 1), got {self.ema!r}")
        if self.snapshot_every is not None and (not isinstance(self.snapshot_every, int) or self.snapshot_every < 1):
            raise ValueError(f"snapshot_every must be None or a positive int, got {self.snapshot_every!r}")
        if self.cpu_threads is not None and (not isinstance(self.cpu_threads, int) or self.cpu_threads < 1):
            raise ValueError(f"cpu_threads must be None or a positive int, got {self.cpu_threads!r}")
        checks.boolean("spectral_norm", self.spectral_norm)
        checks.boolean("d_batch_norm", self.d_batch_norm, allow_none=True)
        if self.spectral_norm and self.d_batch_norm:
            raise ValueError("d_batch_norm must be off with spectral_norm=True (spectral normalisation bounds "
                             "the discriminator's Lipschitz constant only without batch norm)")
        if self.penalty is not None and self.d_batch_norm:
            raise ValueError(f"d_batch_norm must be off with penalty={self.penalty!r} (the penalty needs "
                             "per-sample outputs)")
        return self

    @property
    def critic_batch_norm(self) -> bool:
        """Whether the discriminator uses batch normalisation."""
        if self.d_batch_norm is None:
            return self.penalty is None and not self.spectral_norm
        return bool(self.d_batch_norm)


@dataclass
class ImageSnapshot:
    """Samples from the fixed latent codes after ``step`` generator steps (CPU, ``(n_fixed, 1, 28, 28)``)."""

    step: int
    samples: torch.Tensor
    ema_samples: torch.Tensor | None = None


def generator_for(run, z, ema: bool):
    """The generator (or its moving average, ``ema``) that ``run.generate`` applies to the codes
    ``z``, after checking them: a CPU tensor ``(n, run.config.z_dim)``. Shared by
    :class:`ImageRun` and :class:`gan_lab.conditional.ConditionalRun`."""
    net = run._net("ema_generator" if ema else "generator")
    if net is None:
        raise ValueError("ema=True, but this run kept no EMA generator (config.ema is None)")
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != run.config.z_dim:
        raise ValueError(f"z must be a tensor of shape (n, {run.config.z_dim}), got {getattr(z, 'shape', z)!r}")
    if z.device.type != "cpu":
        raise ValueError(f"z must be a CPU tensor (the run moves it to its device), got one on {z.device}")
    return net


@dataclass
class ImageRun:
    """The result of :func:`fit_images`.

    Attributes:
        config: the :class:`ImageTrainConfig` used.
        generator: the trained generator (eval mode; batch-norm statistics recomputed at the end).
        discriminator: the trained discriminator (critic).
        ema_generator: the exponential moving average of the generator's weights, or ``None``.
        history: name -> array ``(steps,)``: ``d_loss`` (without penalty), ``penalty``,
            ``g_loss``, ``real_logit``, ``fake_logit`` (batch means, in the last D step),
            ``g_grad_norm`` (norm of the generator's whole gradient).
        snapshots: :class:`ImageSnapshot` every ``config.snapshot_every`` steps (step 0 included).
        fixed_noise: the latent codes of the snapshots, ``(n_fixed, z_dim)``.
        seconds: wall time of the training loop (snapshots included, the final recalibration not).
    """

    config: ImageTrainConfig
    generator: DCGANGenerator
    discriminator: DCGANDiscriminator
    ema_generator: DCGANGenerator | None
    history: dict = field(default_factory=dict)
    snapshots: list = field(default_factory=list)
    fixed_noise: torch.Tensor | None = None
    seconds: float = 0.0
    first_seed: int = 0  #: ``config.seed`` shifted by the base seed (``GAN_LAB_SEED``)

    _HINT = "run.generate(z), run.sample(n), run.logits(images) or run.weights()"

    def __post_init__(self) -> None:
        for name in ("generator", "discriminator", "ema_generator"):
            setattr(self, name, devices.guard(getattr(self, name), f"run.{name}", self._HINT))

    def _net(self, which: str) -> nn.Module | None:
        if which not in ("generator", "discriminator", "ema_generator"):
            raise ValueError(f"which must be 'generator', 'discriminator' or 'ema_generator', got {which!r}")
        return devices.unwrap(getattr(self, which))

    def __repr__(self) -> str:
        c = self.config
        return (f"ImageRun(loss={c.loss!r}, penalty={c.penalty!r}, seed={c.seed}, steps={c.steps}, "
                f"device={self.device}, seconds={self.seconds:.1f})")

    @property
    def device(self) -> torch.device:
        """The device the networks live on."""
        return devices.module_device(self._net("generator"))

    @checks.renamed(generator="rng")
    def latent(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """Latent codes ``z ~ N(0, I)``, shape ``(n, z_dim)``, on the CPU (or ``rng``'s device).

        ``rng`` is the random generator (``generator=`` is accepted too).
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        dev = rng.device if rng is not None else torch.device("cpu")
        return torch.randn(n, self.config.z_dim, generator=rng, device=dev)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, ema: bool = False, batch_size: int = 1000) -> torch.Tensor:
        """Images ``G(z)`` for codes ``z`` of shape ``(n, z_dim)``: a CPU float tensor ``(n, 1, 28, 28)`` in ``[-1, 1]``.

        Args:
            z: latent codes.
            ema: use the moving-average generator (``ValueError`` if the run kept none).
            batch_size: codes per forward pass.
        """
        net = generator_for(self, z, ema)
        net.eval()
        out = [net(chunk.to(self.device, torch.float32)).float().cpu() for chunk in z.split(batch_size)]
        return torch.cat(out)  # (n, 1, 28, 28)

    @torch.no_grad()
    def logits(self, images, batch_size: int = 1000) -> torch.Tensor:
        """The discriminator's logits for CPU images: uint8 in ``[0, 255]`` or floats in ``[-1, 1]``,
        shape ``(n, 28, 28)`` or ``(n, 1, 28, 28)``. Returns a CPU float tensor ``(n,)``."""
        if not isinstance(images, torch.Tensor) or images.ndim not in (3, 4) or images.device.type != "cpu":
            raise ValueError(f"images must be a CPU tensor of shape (n, 28, 28) or (n, 1, 28, 28), "
                             f"got {getattr(images, 'shape', type(images).__name__)!r}")
        x = mnist.to_signed_unit(images) if images.dtype == torch.uint8 else images.float()
        x = x.reshape(len(x), 1, *x.shape[-2:])
        D = self._net("discriminator")
        D.eval()
        return torch.cat([D(chunk.to(self.device)).float().cpu() for chunk in x.split(batch_size)])  # (n,)

    def weights(self, which: str = "discriminator") -> np.ndarray:
        """All of one network's parameters as one flat NumPy array ``(P,)`` (on the CPU)."""
        net = self._net(which)
        if net is None:
            raise ValueError(f"this run has no {which}")
        return torch.cat([p.detach().flatten().cpu() for p in net.parameters()]).numpy()

    @checks.renamed(generator="rng")
    def sample(self, n: int, rng: torch.Generator | None = None, ema: bool = False) -> torch.Tensor:
        """``n`` generated images, a CPU tensor ``(n, 1, 28, 28)`` in ``[-1, 1]``.

        ``rng`` is the random generator for the codes (``generator=`` is accepted too); ``ema``
        samples the moving-average generator.
        """
        return self.generate(self.latent(n, rng), ema=ema)


def _resolve(config: ImageTrainConfig | None, overrides: dict) -> ImageTrainConfig:
    return merge(ImageTrainConfig, config, overrides, ("betas",))


def build_networks(config: ImageTrainConfig) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The run's generator and discriminator, initialised from seeds ``2 seed`` and ``2 seed + 1``
    (with ``spectral_norm``, the discriminator's power-iteration vectors from seed ``2 seed + 1`` too)."""
    G = DCGANGenerator(config.z_dim, config.width, seed=2 * config.seed)
    D = DCGANDiscriminator(config.width, batch_norm=config.critic_batch_norm, seed=2 * config.seed + 1)
    if config.spectral_norm:
        spectral.apply_spectral_norm(D, seed=2 * config.seed + 1)
    return G, D


@torch.no_grad()
def update_average(
    average: nn.Module, model: nn.Module, decay: float
) -> None:
    """``average <- decay * average + (1 - decay) * model``, parameters and
    float buffers alike.

    Integer buffers (batch norm's step counter) are copied.
    """
    for a, m in zip(average.parameters(), model.parameters()):
        a.lerp_(m, 1 - decay)
    for a, m in zip(average.buffers(), model.buffers()):
        if a.is_floating_point():
            a.lerp_(m, 1 - decay)
        else:
            a.copy_(m)


@torch.no_grad()
def standing_statistics(generator: nn.Module, z_dim: int, n: int = 2048, batch_size: int = 256,
                        seed: int = 0) -> nn.Module:
    """Recompute a generator's batch-norm running statistics from ``n`` fresh latent codes.

    During training a running average (momentum 0.1) tracks the batch statistics of a
    changing network; the moving-average generator's buffers are an average of those. Both
    are only approximately the statistics of the final weights, so :func:`fit_images`
    replaces them by the exact average over ``n`` codes (cumulative average, momentum
    ``None``) before sampling in eval mode. Returns ``generator`` in eval mode.
    """
    bns = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    dev = next(generator.parameters()).device
    g = torch.Generator(dev).manual_seed(seed)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    generator.train()
    for start in range(0, n, batch_size):
        generator(torch.randn(min(batch_size, n - start), z_dim, generator=g, device=dev))
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    return generator.eval()


def _image_snapshot(G, G_ema, fixed: torch.Tensor, step: int) -> ImageSnapshot:
    """Samples of G (and of its moving average) at the fixed codes, on the CPU."""
    dev = devices.module_device(G)
    with torch.no_grad():
        G.eval()
        samples = G(fixed.to(dev)).float().cpu()
        G.train()
        ema_samples = G_ema.eval()(fixed.to(dev)).float().cpu() if G_ema is not None else None
    return ImageSnapshot(step, samples, ema_samples)


def fit_images(images, config: ImageTrainConfig | None = None, *, progress: bool | None = None,
               checkpoint=None, checkpoint_every: int = 500, resume: bool = True, **overrides) -> ImageRun:
    """Train one DCGAN on uint8 images.

    Each of ``steps`` iterations does ``n_critic`` discriminator steps, then one generator step
    (the step functions of :mod:`gan_lab.step`, shared with the 2-D fits)::

        D step: minimise L_D = discriminator_loss(loss, D(x), D(G(z))) [+ penalty]   # G frozen
        G step: minimise L_G = generator_loss(loss, D(G(z)))                         # D frozen

    then updates the moving average of G's weights with decay
    ``min(ema, (1 + t) / (10 + t))`` after ``t`` generator steps (a warm-up, so that a short
    run's average does not remember the initialisation). The loop is :func:`gan_lab.loop.run`:
    history, divergence handling, snapshots, checkpoints and progress work as in
    :func:`gan_lab.train.fit`.

    Args:
        images: uint8 tensor ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, or an :class:`gan_lab.mnist.MNIST`.
        config: an :class:`ImageTrainConfig`; keyword ``overrides`` replace its fields
            (``fit_images(x, loss="hinge", steps=500, seed=3)``).
        progress: show a progress bar (default from :func:`gan_lab.profile.progress_enabled`).
        checkpoint, checkpoint_every, resume: as for :func:`gan_lab.train.fit` (networks, the
            moving average, optimisers, random stream, history and snapshots are saved).

    Returns:
        An :class:`ImageRun`.
    """
    config = _resolve(config, overrides)
    checks.positive_int("checkpoint_every", checkpoint_every)
    images = mnist.as_uint8_images(images)
    dev = profile.device(config.device)
    user_config = config
    # the base seed (GAN_LAB_SEED) shifts the run's seed: networks, data order, noise, fixed codes
    config = replace(config, seed=config.seed + profile.SEED_STRIDE * profile.base_seed())
    fmt = torch.channels_last if dev.type == "cuda" else torch.contiguous_format
    dataset = mnist.DeviceImages(images, dev, channels_last=dev.type == "cuda")
    G, D = build_networks(config)
    G, D = G.to(dev, memory_format=fmt), D.to(dev, memory_format=fmt)
    G_ema = copy.deepcopy(G) if config.ema is not None else None
    opt_g = step_mod.make_optimizer("adam", G.parameters(), config.lr_g, config.betas, dev)
    opt_d = step_mod.make_optimizer("adam", D.parameters(), config.lr_d, config.betas, dev)
    rng = torch.Generator(dev).manual_seed(config.seed)  # data order, latent noise, penalty mixing
    fixed = torch.randn(config.n_fixed, config.z_dim, generator=torch.Generator().manual_seed(10_000 + config.seed))
    spec = step_mod.StepSpec(loss=config.loss, penalty=config.penalty, penalty_weight=config.penalty_weight,
                             flat_penalty=True, autocast=True, memory_format=fmt)
    B = config.batch_size

    def iteration(i: int) -> torch.Tensor:
        for _ in range(config.n_critic):
            x_real = dataset.sample(B, rng)  # (B, 1, 28, 28) in [-1, 1]
            z = torch.randn(B, config.z_dim, generator=rng, device=dev)
            with torch.no_grad(), devices.autocast(dev):
                x_fake = G(z).float().contiguous(memory_format=fmt)  # (B, 1, 28, 28)
            d_stats = step_mod.discriminator_step(D, opt_d, spec, x_real, x_fake, rng)
        z = torch.randn(B, config.z_dim, generator=rng, device=dev)
        g_stats = step_mod.generator_step(G, D, opt_g, spec, z, seed_batched=False)
        if G_ema is not None:
            update_average(G_ema, G, min(config.ema, (1 + i) / (10 + i)))
        return torch.cat([d_stats[:2], g_stats[:1], d_stats[2:], g_stats[1:]])

    modules = {"generator": G, "discriminator": D, **({"ema_generator": G_ema} if G_ema is not None else {})}
    state = loop.State(modules, {"generator": opt_g, "discriminator": opt_d}, rng,
                       loop.History(HISTORY, config.steps, 1, dev, watched=("d_loss", "penalty", "g_loss")),
                       [], ImageSnapshot)
    label = f"{config.loss}{'-' + config.penalty if config.penalty else ''} seed {config.seed}"
    seconds = loop.run(iteration, state, config, steps=config.steps, n_seeds=1, label=label, progress=progress,
                       snapshot=lambda t: _image_snapshot(G, G_ema, fixed, t), snapshot_every=config.snapshot_every,
                       checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                       threads=config.cpu_threads)
    with loop.cpu_threads(config.cpu_threads, dev):  # the recalibration is not timed
        standing_statistics(G, config.z_dim, seed=config.seed)
        if G_ema is not None:
            standing_statistics(G_ema, config.z_dim, seed=config.seed)
    D.eval()
    return ImageRun(user_config, G, D, G_ema, state.history.numpy(squeeze_seeds=True), state.snapshots, fixed,
                    seconds, first_seed=config.seed)
