"""Image GANs on MNIST: the DCGAN training loop and its plain baseline.

:func:`fit_images` trains one DCGAN (:class:`gan_lab.nets.DCGANGenerator` against
:class:`gan_lab.nets.DCGANDiscriminator`) with the objectives of :mod:`gan_lab.losses`.
Image networks are not seed-batched: several seeds are several calls. The loop keeps the
whole data set on the device as uint8 (:class:`gan_lab.data.DeviceImages`) and draws
batches by index; on CUDA it also runs the networks under bfloat16 autocast in
channels-last memory format. The code path is the same on every device, with those two
switched off on the CPU. :func:`fit_images_baseline` is the textbook loop (a
``DataLoader`` over float images, a host-to-device copy per step, float32) kept for the
benchmark ``python -m gan_lab.bench mnist``.

The evaluation classifier lives in :mod:`gan_lab.classifier` and :func:`image_grid` in
:mod:`gan_lab.plots`; both are re-exported here for older code.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from . import data as data_mod
from . import devices, losses, profile
from .classifier import MNISTClassifier, accuracy, as_float_images, predict, train_classifier  # noqa: F401
from .nets import DCGANDiscriminator, DCGANGenerator
from .plots import image_grid  # noqa: F401
from .train import _cpu_threads

PENALTIES = (None, "wgan-gp")


@dataclass
class ImageTrainConfig:
    """Everything that defines one image-GAN training run (stored on the :class:`ImageRun`)."""

    loss: str = "ns"  #: one of :data:`gan_lab.losses.KINDS`
    #: ``"wgan-gp"`` adds the WGAN-GP gradient penalty to the critic's loss; ``None`` adds nothing.
    penalty: str | None = None
    penalty_weight: float = 10.0  #: lambda of the gradient penalty
    steps: int = 1000  #: generator steps
    batch_size: int = 64
    z_dim: int = 64
    width: int = 32  #: channel width of both networks
    #: Batch normalisation in the discriminator; ``None`` means on, except with a gradient penalty.
    d_batch_norm: bool | None = None
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
        if self.penalty == "wgan-gp" and self.d_batch_norm:
            raise ValueError("d_batch_norm must be off with penalty='wgan-gp' (the penalty needs per-sample outputs)")
        return self

    @property
    def critic_batch_norm(self) -> bool:
        """Whether the discriminator uses batch normalisation."""
        return self.penalty is None if self.d_batch_norm is None else bool(self.d_batch_norm)


@dataclass
class ImageSnapshot:
    """Samples from the fixed latent codes after ``step`` generator steps (CPU, ``(n_fixed, 1, 28, 28)``)."""

    step: int
    samples: torch.Tensor
    ema_samples: torch.Tensor | None = None


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

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent codes ``z ~ N(0, I)``, shape ``(n, z_dim)``, on the CPU (or ``generator``'s device)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        dev = generator.device if generator is not None else torch.device("cpu")
        return torch.randn(n, self.config.z_dim, generator=generator, device=dev)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, ema: bool = False, batch_size: int = 1000) -> torch.Tensor:
        """Images ``G(z)`` for codes ``z`` of shape ``(n, z_dim)``: a CPU float tensor ``(n, 1, 28, 28)`` in ``[-1, 1]``.

        Args:
            z: latent codes.
            ema: use the moving-average generator (``ValueError`` if the run kept none).
            batch_size: codes per forward pass.
        """
        net = self._net("ema_generator" if ema else "generator")
        if net is None:
            raise ValueError("ema=True, but this run kept no EMA generator (config.ema is None)")
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z must be a tensor of shape (n, {self.config.z_dim}), got {getattr(z, 'shape', z)!r}")
        if z.device.type != "cpu":
            raise ValueError(f"z must be a CPU tensor (the run moves it to its device), got one on {z.device}")
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
        x = data_mod.to_signed_unit(images) if images.dtype == torch.uint8 else images.float()
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

    def sample(self, n: int, generator: torch.Generator | None = None, ema: bool = False) -> torch.Tensor:
        """``n`` generated images, a CPU tensor ``(n, 1, 28, 28)`` in ``[-1, 1]``."""
        return self.generate(self.latent(n, generator), ema=ema)


def _resolve(config: ImageTrainConfig | None, overrides: dict) -> ImageTrainConfig:
    config = config or ImageTrainConfig()
    unknown = set(overrides) - set(ImageTrainConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown ImageTrainConfig field(s) {sorted(unknown)}; "
                        f"valid: {sorted(ImageTrainConfig.__dataclass_fields__)}")
    config = ImageTrainConfig(**{**asdict(config), **overrides})
    config.betas = tuple(config.betas)
    return config.validate()


def build_networks(config: ImageTrainConfig) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The run's generator and discriminator, initialised from seeds ``2 seed`` and ``2 seed + 1``."""
    G = DCGANGenerator(config.z_dim, config.width, seed=2 * config.seed)
    D = DCGANDiscriminator(config.width, batch_norm=config.critic_batch_norm, seed=2 * config.seed + 1)
    return G, D


def _optimizers(G, D, config):
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=config.betas)
    return opt_g, opt_d


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * model``, parameters and float buffers alike.

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


def _autocast(dev: torch.device):
    """The precision policy (:func:`gan_lab.devices.autocast`): bfloat16 autocast on GPUs with
    native bfloat16 (compute capability >= 8.0), float32 elsewhere (same code path)."""
    return devices.autocast(dev)


def _critic_step(D, opt_d, config, x_real, x_fake, rng, dev):
    """One step on L_D (+ lambda * penalty). Returns the loss, the penalty term and the mean logits."""
    with _autocast(dev):
        real_logits, fake_logits = D(x_real).float(), D(x_fake).float()  # (B,) each
    # D step: minimise L_D, e.g. -log D(x) - log(1 - D(G(z))) for "ns" and "minimax"
    d_loss = losses.discriminator_loss(config.loss, real_logits, fake_logits)
    penalty = torch.zeros((), device=dev)
    if config.penalty == "wgan-gp":
        # The penalty works on flat points (B, d): the critic sees them reshaped to images.
        # Computed in float32 (no autocast): it differentiates through the critic's gradient.
        critic = lambda flat: D(flat.reshape(x_real.shape))  # noqa: E731  (B, 784) -> (B,)
        penalty = config.penalty_weight * losses.gradient_penalty(
            critic, x_real.reshape(len(x_real), -1), x_fake.reshape(len(x_fake), -1), generator=rng)
    opt_d.zero_grad(set_to_none=True)
    (d_loss + penalty).backward()
    opt_d.step()
    return d_loss.detach(), penalty.detach(), real_logits.detach().mean(), fake_logits.detach().mean()


def _generator_step(G, D, opt_g, config, batch_size, rng, dev, memory_format):
    """One step on L_G with D frozen. Returns the loss and the norm of G's gradient."""
    z = torch.randn(batch_size, config.z_dim, generator=rng, device=dev)
    D.requires_grad_(False)  # gradients flow through D to G; D's weights need none
    with _autocast(dev):
        fake_logits = D(G(z).contiguous(memory_format=memory_format)).float()  # (B,)
    # G step: minimise L_G, e.g. -log D(G(z)) for "ns", log(1 - D(G(z))) for "minimax"
    g_loss = losses.generator_loss(config.loss, fake_logits)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    D.requires_grad_(True)
    grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in G.parameters() if p.grad is not None]))
    opt_g.step()
    return g_loss.detach(), grad_norm


def fit_images(images, config: ImageTrainConfig | None = None, *, progress: bool | None = None,
               **overrides) -> ImageRun:
    """Train one DCGAN on uint8 images.

    Each of ``steps`` iterations does ``n_critic`` discriminator steps, then one generator step::

        D step: minimise L_D = discriminator_loss(loss, D(x), D(G(z))) [+ lambda * GP]   # G frozen
        G step: minimise L_G = generator_loss(loss, D(G(z)))                             # D frozen

    then updates the moving average of G's weights with decay
    ``min(ema, (1 + t) / (10 + t))`` after ``t`` generator steps (a warm-up, so that a short
    run's average does not remember the initialisation).

    Args:
        images: uint8 tensor ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, or an :class:`gan_lab.data.MNIST`.
        config: an :class:`ImageTrainConfig`; keyword ``overrides`` replace its fields
            (``fit_images(x, loss="hinge", steps=500, seed=3)``).
        progress: show a progress bar (default from :func:`gan_lab.profile.progress_enabled`).

    Returns:
        An :class:`ImageRun`.
    """
    config = _resolve(config, overrides)
    images = data_mod.as_uint8_images(images)
    dev = profile.device(config.device)
    user_config = config
    # the base seed (GAN_LAB_SEED) shifts the run's seed: networks, data order, noise, fixed codes
    config = replace(config, seed=config.seed + profile.SEED_STRIDE * profile.base_seed())
    fmt = torch.channels_last if dev.type == "cuda" else torch.contiguous_format
    dataset = data_mod.DeviceImages(images, dev, channels_last=dev.type == "cuda")
    G, D = build_networks(config)
    G, D = G.to(dev, memory_format=fmt), D.to(dev, memory_format=fmt)
    G_ema = copy.deepcopy(G) if config.ema is not None else None
    opt_g, opt_d = _optimizers(G, D, config)
    rng = torch.Generator(dev).manual_seed(config.seed)  # data order, latent noise, penalty mixing
    fixed = torch.randn(config.n_fixed, config.z_dim, generator=torch.Generator().manual_seed(10_000 + config.seed))

    names = ("d_loss", "penalty", "g_loss", "real_logit", "fake_logit", "g_grad_norm")
    hist = torch.zeros(len(names), config.steps, device=dev)  # filled in place: no per-step sync
    snaps: list[ImageSnapshot] = []

    def snapshot(step):
        with torch.no_grad():
            G.eval()
            samples = G(fixed.to(dev)).float().cpu()
            G.train()
            ema_samples = G_ema.eval()(fixed.to(dev)).float().cpu() if G_ema is not None else None
        snaps.append(ImageSnapshot(step, samples, ema_samples))

    start = time.perf_counter()
    bar = profile.progress_bar(range(config.steps), f"{config.loss}{'-gp' if config.penalty else ''} seed {config.seed}",
                               progress)
    with _cpu_threads(config.cpu_threads, dev):
        if config.snapshot_every:
            snapshot(0)
        for step in bar:
            for _ in range(config.n_critic):
                x_real = dataset.sample(config.batch_size, generator=rng)  # (B, 1, 28, 28) in [-1, 1]
                z = torch.randn(config.batch_size, config.z_dim, generator=rng, device=dev)
                with torch.no_grad(), _autocast(dev):
                    x_fake = G(z).float().contiguous(memory_format=fmt)  # (B, 1, 28, 28)
                d_stats = _critic_step(D, opt_d, config, x_real, x_fake, rng, dev)
            g_loss, g_norm = _generator_step(G, D, opt_g, config, config.batch_size, rng, dev, fmt)
            if G_ema is not None:
                update_average(G_ema, G, min(config.ema, (1 + step) / (10 + step)))
            hist[:, step] = torch.stack([*d_stats[:2], g_loss, *d_stats[2:], g_norm])
            if config.snapshot_every and (step + 1) % config.snapshot_every == 0:
                snapshot(step + 1)
        bar.close()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - start  # the training loop (the recalibration below is not timed)
        standing_statistics(G, config.z_dim, seed=config.seed)
        if G_ema is not None:
            standing_statistics(G_ema, config.z_dim, seed=config.seed)
    history = dict(zip(names, hist.cpu().numpy()))
    D.eval()
    return ImageRun(user_config, G, D, G_ema, history, snaps, fixed, seconds, first_seed=config.seed)


def fit_images_baseline(images, config: ImageTrainConfig | None = None, **overrides) -> float:
    """The textbook loop, for the benchmark: seconds for ``steps`` generator steps.

    The same networks, losses and optimisers as :func:`fit_images`, written the usual way:
    a :class:`torch.utils.data.DataLoader` over the whole data set converted to float32 on
    the host, shuffled each epoch, every batch copied to the device, no autocast, default
    memory format, no EMA, no history kept on the device.
    """
    config = _resolve(config, overrides)
    images = data_mod.as_uint8_images(images)
    dev = profile.device(config.device)
    G, D = (net.to(dev) for net in build_networks(config))
    opt_g, opt_d = _optimizers(G, D, config)
    noise = torch.Generator(dev).manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data_mod.to_signed_unit(images)),
                                         batch_size=config.batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(config.seed))
    batches = iter(loader)
    start = time.perf_counter()
    with _cpu_threads(config.cpu_threads, dev):
        for _ in range(config.steps):
            for _ in range(config.n_critic):
                try:
                    (x_real,) = next(batches)
                except StopIteration:
                    batches = iter(loader)
                    (x_real,) = next(batches)
                x_real = x_real.to(dev)
                x_fake = G(torch.randn(config.batch_size, config.z_dim, generator=noise, device=dev)).detach()
                d_loss = losses.discriminator_loss(config.loss, D(x_real), D(x_fake))
                if config.penalty == "wgan-gp":
                    critic = lambda flat: D(flat.reshape(x_real.shape))  # noqa: E731
                    d_loss = d_loss + config.penalty_weight * losses.gradient_penalty(
                        critic, x_real.flatten(1), x_fake.flatten(1), generator=noise)
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            z = torch.randn(config.batch_size, config.z_dim, generator=noise, device=dev)
            g_loss = losses.generator_loss(config.loss, D(G(z)))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            g_loss.item()  # the usual per-step logging forces a device sync
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - start


def benchmark(device: str | torch.device | None = None, steps: int | None = None, batch_size: int = 128,
              width: int = 32, repeats: int = 2) -> dict:
    """G+D steps per second of :func:`fit_images` against :func:`fit_images_baseline`, same data and networks.

    Used by ``python -m gan_lab.bench mnist``. Both loops get a short warm-up run first
    (allocator, kernel selection), then the best of ``repeats`` timed runs counts. One step
    is one discriminator and one generator update on ``batch_size`` images ("ns" loss);
    samples per second is steps per second times ``batch_size``. The optimised loop's time
    includes its moving average of G (not the final batch-norm recalibration, a one-off cost).

    Args:
        device: where to run (default :func:`gan_lab.profile.device`).
        steps: steps per timed run (default 300 on CUDA, 30 on the CPU).
        batch_size: images per step.
        width: channel width of both networks.
        repeats: timed runs per loop.

    Returns:
        A dict with the config and, per loop, seconds, steps per second and samples per second.
    """
    dev = profile.device(device)
    steps = steps if steps is not None else (300 if dev.type == "cuda" else 30)
    x = data_mod.load_mnist("train").images
    cfg = dict(loss="ns", steps=steps, batch_size=batch_size, width=width, device=str(dev))
    fit_images(x, progress=False, **{**cfg, "steps": 5})  # warm-up
    fit_images_baseline(x, **{**cfg, "steps": 5})
    optimised = min(fit_images(x, progress=False, **cfg).seconds for _ in range(repeats))
    baseline = min(fit_images_baseline(x, **cfg) for _ in range(repeats))
    result = {"config": {**cfg, "repeats": repeats, "n_train": len(x), "autocast_bf16": dev.type == "cuda",
                         "channels_last": dev.type == "cuda"}}
    for name, seconds in (("optimised", optimised), ("baseline", baseline)):
        result[name] = {"seconds": seconds, "steps_per_second": steps / seconds,
                        "samples_per_second": steps * batch_size / seconds}
    result["speedup"] = baseline / optimised
    print(f"MNIST DCGAN on {dev}: optimised {result['optimised']['steps_per_second']:.1f} steps/s "
          f"({result['optimised']['samples_per_second']:.0f} samples/s), baseline "
          f"{result['baseline']['steps_per_second']:.1f} steps/s: x{result['speedup']:.2f}")
    return result
