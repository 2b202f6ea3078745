r"""Conditional GANs: class-conditional DCGAN networks, their training loop, per-class metrics,
and the optimal conditional discriminator on a labelled 2-D mixture.

A conditional GAN (Mirza & Osindero 2014) gives both networks the label :math:`y`: the
generator draws :math:`x = G(z, y)`, the discriminator scores pairs :math:`(x, y)`. The game
is the unconditional one on the joint distributions :math:`p(x, y)` (data) and
:math:`q(x, y) = p(y)\, q(x \mid y)` (the generator, its labels drawn from the data's label
distribution), so the optimal discriminator is

.. math:: D^*(x, y) = \frac{p(x, y)}{p(x, y) + q(x, y)}
          = \frac{p(x \mid y)}{p(x \mid y) + q(x \mid y)}, \qquad
          \operatorname{logit} D^*(x, y) = \log p(x \mid y) - \log q(x \mid y),

the label marginal cancelling because both sides share it. Two discriminators are provided
(:class:`ConditionalDiscriminator`): ``"concat"`` feeds the label in as ``n_classes`` one-hot
maps beside the image, and ``"projection"`` (Miyato & Koyama 2018) computes features
:math:`\phi(x)` and the logit :math:`\psi(\phi(x)) + \langle e_y, \phi(x) \rangle`, the form
that the optimal logit takes when :math:`p(y \mid x)` and :math:`q(y \mid x)` are log-linear
(softmax) in :math:`\phi(x)`:

.. math:: \log\frac{p(x \mid y)}{q(x \mid y)}
          = \underbrace{\log\frac{p(y \mid x)}{q(y \mid x)}}_{(v^p_y - v^q_y)^\top \phi(x)
            \;-\; \text{log-partition terms}}
          + \log\frac{p(x)}{q(x)}
          - \underbrace{\log\frac{p(y)}{q(y)}}_{=0},

the log-partition terms and :math:`\log p(x) / q(x)` depending on :math:`x` alone (the
term :math:`\psi`), the class term linear in the embedding :math:`e_y = v^p_y - v^q_y`.

:func:`fit_conditional` trains a pair on labelled uint8 digits with the losses of
:mod:`gan_lab.losses` through the loop of :mod:`gan_lab.loop` (history, divergence checks,
progress), the generator's labels drawn from the *empirical* label distribution of the
training set (so the label marginals agree, as the derivation above assumes).
:func:`per_class_accuracy` and :func:`class_fid` evaluate a conditional generator per class.
For the 2-D check, :func:`labelled_sample`, :func:`conditional_log_prob` and
:func:`optimal_conditional_logit` give a Gaussian mixture whose components carry labels
(a label is a group of components), and :func:`fit_conditional_2d` trains small MLP
discriminators (with or without the label) whose logits are compared with the exact one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from . import checks, devices, loop, losses, metrics, mnist, profile
from .classifier import predict
from .config import merge
from .dcgan import DCGANGenerator, dcgan_init
from .distributions import GaussianMixture
from .images import generator_for, standing_statistics, update_average

DISCRIMINATORS = ("concat", "projection")  #: the conditional discriminators
HISTORY = ("d_loss", "g_loss", "real_logit", "fake_logit")  #: a conditional run's history


# --- labels at the boundary ----------------------------------------------------------------


def check_n_classes(n_classes) -> int:
    """``n_classes`` as an int >= 2, or ``ValueError``."""
    if not checks.is_int(n_classes) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    return int(n_classes)


def check_labels(name: str, labels, n_classes: int, n: int | None = None) -> torch.Tensor:
    """``labels`` as an int64 CPU tensor ``(n,)`` of classes in ``[0, n_classes)``, or ``ValueError``.

    Args:
        name: the parameter's name, for the message.
        labels: a 1-D integer tensor or array (bool and floating dtypes are refused).
        n_classes: the number of classes.
        n: the length the labels must have (the number of images or codes), or ``None``.
    """
    if not isinstance(labels, torch.Tensor):
        arr = np.asarray(labels)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
        labels = torch.as_tensor(arr)
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if labels.device.type != "cpu":
        raise ValueError(f"{name} must be a CPU tensor, got one on {labels.device}")
    if labels.ndim != 1 or (n is not None and len(labels) != n):
        want = f"({n},)" if n is not None else "(n,)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(labels.shape)}")
    labels = labels.to(torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name} must be classes in [0, {n_classes}), got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    return labels


# --- networks ------------------------------------------------------------------------------


class ConditionalGenerator(nn.Module):
    """The DCGAN generator of :class:`gan_lab.dcgan.DCGANGenerator` with a label embedding.

    ``(z (N, z_dim), y (N,)) -> (N, 1, 28, 28)``: the label's learned embedding
    ``e_y (embed_dim,)`` is concatenated with ``z`` and the DCGAN generator maps the
    ``z_dim + embed_dim`` numbers to an image (Mirza & Osindero 2014's conditioning at the
    input). DCGAN initialisation from ``seed``; the embedding starts ``N(0, 1)``, on the scale
    of ``z``.

    Args:
        n_classes: number of classes (>= 2).
        z_dim: latent dimension.
        width: the DCGAN width (channels of the last hidden layer).
        embed_dim: size of the label embedding (default ``n_classes``).
        seed: the initialisation seed.
    """

    def __init__(self, n_classes: int = 10, z_dim: int = 64, width: int = 32,
                 embed_dim: int | None = None, seed: int = 0):
        super().__init__()
        self.n_classes = check_n_classes(n_classes)
        self.embed_dim = checks.positive_int("embed_dim", embed_dim if embed_dim is not None else n_classes)
        self.z_dim = checks.positive_int("z_dim", z_dim)
        self.net = DCGANGenerator(z_dim + self.embed_dim, width, seed=seed)
        self.embed = nn.Embedding(self.n_classes, self.embed_dim)
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed)
            self.embed.weight.copy_(torch.randn(self.embed.weight.shape, generator=g))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(torch.cat([z, self.embed(y).to(z.dtype)], 1))  # (N, 1, 28, 28)


class ConditionalDiscriminator(nn.Module):
    r"""A DCGAN discriminator that also sees the label: ``(x (N, 1, 28, 28), y (N,)) -> logits (N,)``.

    The features :math:`\phi(x)` are the DCGAN discriminator's (two stride-2 convolutions,
    leaky ReLU 0.2, batch normalisation on the second). Two ways to bring in ``y``:

    * ``"concat"``: ``n_classes`` one-hot maps (1 in map ``y``, 0 elsewhere) are stacked on the
      image as extra input channels, so the first convolution sees ``(x, y)`` jointly; then a
      linear logit on the features.
    * ``"projection"`` (Miyato & Koyama 2018): the features of ``x`` alone and
      :math:`\operatorname{logit} = \psi(\phi(x)) + \langle e_y, \phi(x) \rangle` with a
      linear :math:`\psi` and a learned class embedding :math:`e_y` of the feature size.

    Args:
        n_classes: number of classes (>= 2).
        mode: ``"concat"`` or ``"projection"``.
        width: channels of the first convolution (the second has ``2 width``).
        batch_norm: batch normalisation after the second convolution.
        seed: the initialisation seed (DCGAN's ``N(0, 0.02^2)``, the embedding too).
    """

    def __init__(self, n_classes: int = 10, mode: str = "projection", width: int = 32,
                 batch_norm: bool = True, seed: int = 0):
        super().__init__()
        self.n_classes = check_n_classes(n_classes)
        self.mode = checks.one_of("mode", mode, DISCRIMINATORS)
        width = checks.positive_int("width", width)
        channels = 1 + (self.n_classes if mode == "concat" else 0)
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),  # (N, w, 14, 14)
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=not batch_norm),  # (N, 2w, 7, 7)
            nn.BatchNorm2d(2 * width) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # (N, 2w * 49)
        )
        n_features = 2 * width * 49
        self.logit = nn.Linear(n_features, 1)  # psi
        self.embed = nn.Embedding(self.n_classes, n_features) if mode == "projection" else None
        dcgan_init(self, seed)
        if self.embed is not None:
            with torch.no_grad():
                g = torch.Generator().manual_seed(seed + 1)
                self.embed.weight.copy_(torch.randn(self.embed.weight.shape, generator=g) * 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x must have shape (N, 1, 28, 28), got {tuple(x.shape)}")
        if self.mode == "concat":
            maps = nn.functional.one_hot(y, self.n_classes).to(x.dtype)  # (N, C)
            maps = maps[:, :, None, None].expand(-1, -1, 28, 28)  # (N, C, 28, 28)
            return self.logit(self.features(torch.cat([x, maps], 1))).squeeze(-1)  # (N,)
        phi = self.features(x)  # (N, F)
        return self.logit(phi).squeeze(-1) + (self.embed(y).to(phi.dtype) * phi).sum(-1)  # (N,)


# --- training ------------------------------------------------------------------------------


@dataclass
class ConditionalConfig:
    """Everything that defines one conditional image-GAN run (stored on the :class:`ConditionalRun`)."""

    discriminator: str = "projection"  #: ``"concat"`` or ``"projection"``
    loss: str = "ns"  #: one of the GAN losses of :data:`gan_lab.losses.KINDS`
    n_classes: int = 10
    steps: int = 1000  #: generator steps (one discriminator step each)
    batch_size: int = 64
    z_dim: int = 64
    width: int = 32  #: channel width of both networks
    embed_dim: int | None = None  #: the generator's label embedding (``None``: ``n_classes``)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0  #: network initialisation, data order, noise and labels
    ema: float | None = 0.999  #: decay of the moving average of G's weights, or ``None``
    device: str | None = None  #: ``None``: :func:`gan_lab.profile.device`
    cpu_threads: int | None = 1  #: CPU threads while training (restored afterwards)

    def validate(self) -> ConditionalConfig:
        """Raise ``ValueError`` naming the first field that is out of range."""
        checks.one_of("discriminator", self.discriminator, DISCRIMINATORS)
        checks.one_of("loss", self.loss, ("minimax", "ns", "hinge", "wasserstein", "lsgan"))
        check_n_classes(self.n_classes)
        for name in ("steps", "batch_size", "z_dim", "width"):
            checks.positive_int(name, getattr(self, name))
        checks.optional_positive_int("embed_dim", self.embed_dim)
        checks.non_negative_int("seed", self.seed)
        for name in ("lr_g", "lr_d"):
            checks.positive_number(name, getattr(self, name))
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0 < self.ema < 1):
            raise ValueError(f"ema must be None or a decay in (0, 1), got {self.ema!r}")
        checks.optional_positive_int("cpu_threads", self.cpu_threads)
        return self


@dataclass
class ConditionalRun:
    """The result of :func:`fit_conditional`.

    Attributes:
        config: the :class:`ConditionalConfig` used.
        generator: the trained :class:`ConditionalGenerator` (eval mode, batch-norm statistics
            recomputed over codes and labels drawn as in training).
        discriminator: the trained :class:`ConditionalDiscriminator`.
        ema_generator: the moving average of the generator, or ``None``.
        history: name -> array ``(steps,)``: ``d_loss``, ``g_loss``, ``real_logit``,
            ``fake_logit`` (batch means).
        label_probs: the empirical label distribution the fake labels were drawn from, ``(n_classes,)``.
        seconds: wall time of the training loop.
        first_seed: ``config.seed`` shifted by the base seed (``GAN_LAB_SEED``).
    """

    config: ConditionalConfig
    generator: ConditionalGenerator
    discriminator: ConditionalDiscriminator
    ema_generator: ConditionalGenerator | None
    history: dict = field(default_factory=dict)
    label_probs: np.ndarray | None = None
    seconds: float = 0.0
    first_seed: int = 0

    _HINT = "run.generate(z, labels), run.sample(labels), run.sample_per_class(n) or run.logits(images, labels)"

    def __post_init__(self) -> None:
        for name in ("generator", "discriminator", "ema_generator"):
            setattr(self, name, devices.guard(getattr(self, name), f"run.{name}", self._HINT))

    def __repr__(self) -> str:
        c = self.config
        return (f"ConditionalRun(discriminator={c.discriminator!r}, loss={c.loss!r}, seed={c.seed}, "
                f"steps={c.steps}, device={self.device}, seconds={self.seconds:.1f})")

    def _net(self, which: str) -> nn.Module | None:
        return devices.unwrap(getattr(self, which))

    @property
    def device(self) -> torch.device:
        """The device the networks live on."""
        return devices.module_device(self._net("generator"))

    def latent(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """Latent codes ``z ~ N(0, I)``, ``(n, z_dim)``, on the CPU (or ``rng``'s device)."""
        n = checks.positive_int("n", n)
        dev = rng.device if rng is not None else torch.device("cpu")
        return torch.randn(n, self.config.z_dim, generator=rng, device=dev)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels, ema: bool = False, batch_size: int = 1000) -> torch.Tensor:
        """Images ``G(z, y)``: a CPU float tensor ``(n, 1, 28, 28)`` in ``[-1, 1]``.

        Args:
            z: CPU latent codes ``(n, z_dim)``.
            labels: the requested classes, integers ``(n,)`` in ``[0, n_classes)``.
            ema: use the moving-average generator.
            batch_size: codes per forward pass.
        """
        net = generator_for(self, z, ema)
        labels = check_labels("labels", labels, self.config.n_classes, len(z))
        batch_size = checks.positive_int("batch_size", batch_size)
        net.eval()
        dev = self.device
        out = [net(zc.to(dev, torch.float32), yc.to(dev)).float().cpu()
               for zc, yc in zip(z.split(batch_size), labels.split(batch_size))]
        return torch.cat(out)  # (n, 1, 28, 28)

    def sample(self, labels, rng: torch.Generator | None = None, ema: bool = False) -> torch.Tensor:
        """One generated image per requested label: CPU ``(n, 1, 28, 28)``; ``rng`` draws the codes."""
        labels = check_labels("labels", labels, self.config.n_classes)
        if len(labels) < 1:
            raise ValueError("labels must hold at least one label")
        return self.generate(self.latent(len(labels), rng).cpu(), labels, ema=ema)

    def sample_per_class(self, n: int, rng: torch.Generator | None = None, ema: bool = False) -> torch.Tensor:
        """``n`` images of every class: CPU ``(n_classes, n, 1, 28, 28)``, row ``c`` of class ``c``."""
        n = checks.positive_int("n", n)
        labels = torch.arange(self.config.n_classes).repeat_interleave(n)  # (C n,)
        return self.sample(labels, rng, ema).reshape(self.config.n_classes, n, 1, 28, 28)

    @torch.no_grad()
    def logits(self, images, labels, batch_size: int = 1000) -> torch.Tensor:
        """The discriminator's logits for CPU images (uint8, or floats in ``[-1, 1]``) and labels: ``(n,)``."""
        if not isinstance(images, torch.Tensor) or images.ndim not in (3, 4) or images.device.type != "cpu":
            raise ValueError(f"images must be a CPU tensor of shape (n, 28, 28) or (n, 1, 28, 28), "
                             f"got {getattr(images, 'shape', type(images).__name__)!r}")
        x = mnist.to_signed_unit(images) if images.dtype == torch.uint8 else images.float()
        x = x.reshape(len(x), 1, 28, 28)
        labels = check_labels("labels", labels, self.config.n_classes, len(x))
        D = self._net("discriminator").eval()
        dev = self.device
        return torch.cat([D(xc.to(dev), yc.to(dev)).float().cpu()
                          for xc, yc in zip(x.split(batch_size), labels.split(batch_size))])


def build_networks(config: ConditionalConfig) -> tuple[ConditionalGenerator, ConditionalDiscriminator]:
    """The run's generator and discriminator, initialised from seeds ``2 seed`` and ``2 seed + 1``."""
    G = ConditionalGenerator(config.n_classes, config.z_dim, config.width, config.embed_dim, seed=2 * config.seed)
    D = ConditionalDiscriminator(config.n_classes, config.discriminator, config.width, seed=2 * config.seed + 1)
    return G, D


@torch.no_grad()
def _standing_statistics(G: ConditionalGenerator, labels: torch.Tensor, seed: int, n: int = 2048) -> None:
    """:func:`gan_lab.images.standing_statistics` for a conditional generator: the labels of the
    recalibration codes are drawn from ``labels`` (the training labels, on G's device)."""
    g = torch.Generator(labels.device).manual_seed(seed)
    y = labels[torch.randint(len(labels), (n,), generator=g, device=labels.device)]
    it = iter(y.split(256))

    class _Fixed(nn.Module):  # G with the next label batch filled in
        def __init__(self):
            super().__init__()
            self.G = G

        def forward(self, z):
            return self.G(z, next(it))

    standing_statistics(_Fixed(), G.z_dim, n=n, batch_size=256, seed=seed)
    G.eval()


def fit_conditional(images, labels=None, config: ConditionalConfig | None = None, *,
                    progress: bool | None = None, **overrides) -> ConditionalRun:
    """Train one conditional DCGAN on labelled uint8 digits.

    Each of ``steps`` iterations draws a labelled batch ``(x, y)`` of data and a batch of fake
    labels ``y'`` from the empirical label distribution (random training labels), then::

        D step: minimise discriminator_loss(loss, D(x, y), D(G(z, y'), y'))   # G frozen
        G step: minimise generator_loss(loss, D(G(z, y'), y'))                # D frozen (fresh z, y')

    and updates the moving average of G with decay ``min(ema, (1 + t) / (10 + t))``, as
    :func:`gan_lab.images.fit_images` does. Networks live on :func:`gan_lab.profile.device`
    (CPU or CUDA, bfloat16 autocast where supported); the seed is shifted by the base seed
    (``config.seed + SEED_STRIDE * GAN_LAB_SEED``).

    Args:
        images: uint8 digits ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, or an :class:`gan_lab.mnist.MNIST`
            (whose labels are used when ``labels`` is omitted).
        labels: integer classes ``(N,)`` in ``[0, n_classes)``.
        config: a :class:`ConditionalConfig`; keyword ``overrides`` replace its fields.
        progress: show a progress bar (default from :func:`gan_lab.profile.progress_enabled`).

    Returns:
        A :class:`ConditionalRun`.
    """
    config = merge(ConditionalConfig, config, overrides, ("betas",))
    if labels is None:
        if not isinstance(images, mnist.MNIST):
            raise ValueError("labels must be given (integers (N,)) unless images is an MNIST")
        labels = images.labels
    images = mnist.as_uint8_images(images)
    labels = check_labels("labels", labels, config.n_classes, len(images))
    dev = profile.device(config.device)
    user_config = config
    config = replace(config, seed=config.seed + profile.SEED_STRIDE * profile.base_seed())
    dataset = mnist.DeviceImages(images, dev)
    y_data = labels.to(dev)
    G, D = build_networks(config)
    G, D = G.to(dev), D.to(dev)
    G_ema = copy.deepcopy(G) if config.ema is not None else None
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=config.betas)
    rng = torch.Generator(dev).manual_seed(config.seed)  # data order, noise and fake labels
    B, N = config.batch_size, len(images)

    def fake_labels() -> torch.Tensor:  # y' ~ the empirical label distribution
        return y_data[torch.randint(N, (B,), generator=rng, device=dev)]

    def iteration(i: int) -> torch.Tensor:
        index = torch.randint(N, (B,), generator=rng, device=dev)
        x_real, y_real = dataset.batch(index), y_data[index]  # (B, 1, 28, 28), (B,)
        z, y_fake = torch.randn(B, config.z_dim, generator=rng, device=dev), fake_labels()
        with devices.autocast(dev):
            with torch.no_grad():
                x_fake = G(z, y_fake).float()
            real_logits, fake_logits = D(x_real, y_real).float(), D(x_fake, y_fake).float()
        d_loss = losses.discriminator_loss(config.loss, real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        z, y_fake = torch.randn(B, config.z_dim, generator=rng, device=dev), fake_labels()
        with devices.autocast(dev):
            g_logits = D(G(z, y_fake), y_fake).float()
        g_loss = losses.generator_loss(config.loss, g_logits)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(G.parameters()))
        opt_g.step()
        if G_ema is not None:
            update_average(G_ema, G, min(config.ema, (1 + i) / (10 + i)))
        return torch.stack([d_loss, g_loss, real_logits.mean(), fake_logits.mean()]).detach()

    modules = {"generator": G, "discriminator": D, **({"ema_generator": G_ema} if G_ema is not None else {})}
    state = loop.State(modules, {"generator": opt_g, "discriminator": opt_d}, rng,
                       loop.History(HISTORY, config.steps, 1, dev, watched=("d_loss", "g_loss")), [], None)
    label = f"conditional {config.discriminator} seed {config.seed}"
    seconds = loop.run(iteration, state, config, steps=config.steps, n_seeds=1, label=label,
                       progress=progress, threads=config.cpu_threads)
    with loop.cpu_threads(config.cpu_threads, dev):
        _standing_statistics(G, y_data, config.seed)
        if G_ema is not None:
            _standing_statistics(G_ema, y_data, config.seed)
    D.eval()
    probs = np.bincount(labels.numpy(), minlength=config.n_classes) / len(labels)
    return ConditionalRun(user_config, G, D, G_ema, state.history.numpy(squeeze_seeds=True), probs, seconds,
                          first_seed=config.seed)


# --- per-class metrics ---------------------------------------------------------------------


def per_class_accuracy(classifier: nn.Module, images, labels=None, n_classes: int = 10) -> np.ndarray:
    """For each class ``c``: the fraction of the images requested as ``c`` that ``classifier`` calls ``c``.

    Args:
        classifier: a digit classifier (:class:`gan_lab.classifier.MNISTClassifier`).
        images: uint8 or ``[-1, 1]`` images ``(n, 28, 28)`` or ``(n, 1, 28, 28)``, or a per-class
            stack ``(n_classes, m, 1, 28, 28)`` (then ``labels`` must be ``None``).
        labels: the requested class of each image, ``(n,)``.
        n_classes: number of classes.

    Returns:
        float64 array ``(n_classes,)``; NaN for a class with no image.
    """
    n_classes = check_n_classes(n_classes)
    images, labels = _flatten_per_class(images, labels, n_classes)
    hit = (predict(classifier, images) == labels).double()
    counts = torch.bincount(labels, minlength=n_classes).double()
    hits = torch.bincount(labels, weights=hit, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hits / counts).numpy()


def _flatten_per_class(images, labels, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim == 5:
        if labels is not None:
            raise ValueError("labels must be None when images is a per-class stack (n_classes, m, 1, 28, 28)")
        if images.shape[0] != n_classes:
            raise ValueError(f"images must have n_classes={n_classes} rows, got {images.shape[0]}")
        m = images.shape[1]
        return images.reshape(-1, *images.shape[2:]), torch.arange(n_classes).repeat_interleave(m)
    if labels is None:
        raise ValueError("labels must be given (integers (n,)) for images of shape (n, ...)")
    return images, check_labels("labels", labels, n_classes, len(images))


def class_fid(fake, fake_labels, real, real_labels, classifier: nn.Module, n_classes: int = 10) -> np.ndarray:
    """Class-conditional FID: :func:`gan_lab.metrics.classifier_fid` between the generated and the real
    images of each class, float64 ``(n_classes,)``.

    ``fake`` may be a per-class stack ``(n_classes, m, 1, 28, 28)`` with ``fake_labels=None``. Each
    class needs at least two images on each side; compare classes at equal set sizes and beside the
    real-versus-real floor (the estimate is biased upwards for small sets).
    """
    n_classes = check_n_classes(n_classes)
    fake, fake_labels = _flatten_per_class(fake, fake_labels, n_classes)
    real, real_labels = _flatten_per_class(real, real_labels, n_classes)
    out = np.empty(n_classes)
    for c in range(n_classes):
        a, b = fake[fake_labels == c], real[real_labels == c]
        if len(a) < 2 or len(b) < 2:
            raise ValueError(f"class {c} needs at least 2 images on each side, got {len(a)} fake and {len(b)} real")
        out[c] = metrics.classifier_fid(a, b, classifier)
    return out


# --- the optimal conditional discriminator on a labelled 2-D mixture -----------------------


def _groups(mixture: GaussianMixture, groups) -> torch.Tensor:
    g = check_labels("groups", groups, mixture.n_components, mixture.n_components)
    if g.min() != 0:
        raise ValueError("groups must use labels 0, 1, ..., n_classes - 1 (label 0 has no component)")
    n_classes = int(g.max()) + 1
    if len(torch.unique(g)) != n_classes:
        raise ValueError(f"groups must use every label in [0, {n_classes}), got {g.tolist()}")
    if n_classes < 2:
        raise ValueError("groups must define at least 2 labels (n_classes >= 2)")
    return g


def label_probs(mixture: GaussianMixture, groups) -> torch.Tensor:
    """The label distribution ``p(y) = sum_{k in y} w_k`` when component ``k`` carries label
    ``groups[k]``: float64 ``(n_classes,)``."""
    g = _groups(mixture, groups)
    return torch.zeros(int(g.max()) + 1, dtype=torch.float64).index_add_(0, g, mixture.weights)


def conditional_log_prob(mixture: GaussianMixture, x, y, groups) -> torch.Tensor:
    r"""``log p(x | y)`` of a mixture whose component ``k`` carries label ``groups[k]``:

    .. math:: p(x \mid y) = \frac{\sum_{k: g_k = y} w_k\, \mathcal N(x; \mu_k, s_k^2 I)}
                                 {\sum_{k: g_k = y} w_k}.

    Args:
        mixture: a :class:`gan_lab.distributions.GaussianMixture`.
        x: points ``(n, d)``.
        y: labels ``(n,)``.
        groups: the label of each component, ``(K,)``, using every label ``0 .. n_classes - 1``.

    Returns:
        float64 ``(n,)``.
    """
    g = _groups(mixture, groups)
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, {mixture.dim}), got {tuple(x.shape)}")
    y = check_labels("y", y, int(g.max()) + 1, len(x))
    comp = mixture.component_log_prob(x)  # (n, K): log w_k + log N_k(x)
    member = g[None, :] == y[:, None]  # (n, K)
    log_joint = torch.logsumexp(comp.masked_fill(~member, -torch.inf), dim=1)  # log p(x, y)
    return log_joint - torch.log(label_probs(mixture, g))[y]


def optimal_conditional_logit(p: GaussianMixture, q: GaussianMixture, x, y, groups_p, groups_q=None) -> torch.Tensor:
    r"""The logit of the optimal conditional discriminator, :math:`\log p(x \mid y) - \log q(x \mid y)`.

    This is :math:`\operatorname{logit} D^*(x, y)` for data :math:`p(x, y)` against
    :math:`q(x, y) = p(y)\, q(x \mid y)`, the generator's labels drawn from the data's label
    distribution (as :func:`fit_conditional` and :func:`fit_conditional_2d` draw them).

    Args:
        p: the data mixture; ``groups_p[k]`` is the label of its component ``k``.
        q: the generator's mixture; ``groups_q`` its components' labels (default ``groups_p``).
        x: points ``(n, d)``.
        y: labels ``(n,)``.

    Returns:
        float64 ``(n,)``.
    """
    groups_q = groups_p if groups_q is None else groups_q
    n_p, n_q = int(_groups(p, groups_p).max()) + 1, int(_groups(q, groups_q).max()) + 1
    if n_p != n_q:
        raise ValueError(f"groups_p and groups_q must define the same labels, got {n_p} and {n_q} classes")
    return conditional_log_prob(p, x, y, groups_p) - conditional_log_prob(q, x, y, groups_q)


def labelled_sample(mixture: GaussianMixture, n: int, groups, rng: torch.Generator | None = None,
                    labels=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled points ``(x (n, d) float32, y (n,) int64)`` on the CPU.

    Without ``labels``: draw a component ``k`` by weight, ``x`` from it and ``y = groups[k]``
    (the joint ``p(x, y)``). With ``labels`` (``(n,)``): ``x ~ p(x | y)`` for each given label,
    the component drawn within the label's group by weight.
    """
    g = _groups(mixture, groups)
    n = checks.positive_int("n", n)
    w = mixture.weights
    if labels is None:
        k = torch.multinomial(w, n, replacement=True, generator=rng)
    else:
        y = check_labels("labels", labels, int(g.max()) + 1, n)
        within = (g[None, :] == y[:, None]).double() * w  # (n, K)
        k = torch.multinomial(within, 1, generator=rng)[:, 0]
    noise = torch.randn(n, mixture.dim, generator=rng, dtype=torch.float64)
    x = mixture.means[k] + mixture.stds[k, None] * noise
    return x.float(), g[k]


class LabelledMLP(nn.Module):
    """A small MLP discriminator on 2-D points, with the label (``conditional=True``, one-hot
    concatenated with the point) or without it: ``(x (n, d), y (n,)) -> logits (n,)``."""

    def __init__(self, dim: int, n_classes: int, hidden: int = 64, conditional: bool = True, seed: int = 0):
        super().__init__()
        self.n_classes, self.conditional = check_n_classes(n_classes), bool(conditional)
        d_in = dim + (self.n_classes if conditional else 0)
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.net:
                if isinstance(m, nn.Linear):
                    bound = 1 / m.in_features ** 0.5  # PyTorch's default range, from our generator
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 2 * bound - bound)
                    m.bias.zero_()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.conditional:
            x = torch.cat([x, nn.functional.one_hot(y, self.n_classes).to(x.dtype)], 1)
        return self.net(x).squeeze(-1)


def fit_conditional_2d(p: GaussianMixture, q: GaussianMixture, groups_p, groups_q=None, *,
                       conditional: bool = True, seeds=(0, 1, 2), steps: int = 2000,
                       batch_size: int = 512, hidden: int = 64, lr: float = 3e-3) -> list[LabelledMLP]:
    r"""Train one :class:`LabelledMLP` discriminator per seed on labelled data ``p(x, y)`` against
    ``q(x, y) = p(y) q(x | y)``, with the discriminator loss ``-E log D(x, y) - E log(1 - D(x', y'))``
    (:func:`gan_lab.losses.discriminator_loss`, ``"ns"``) and Adam; both samples are fresh each step.

    With ``conditional=False`` the network ignores the label: the control, whose best logit is
    :math:`\log p(x) / q(x)` and cannot follow a label-dependent :math:`D^*`. Seeds are shifted
    by the base seed. Runs on the CPU; returns the networks (eval mode).
    """
    groups_q = groups_p if groups_q is None else groups_q
    steps, batch_size = checks.positive_int("steps", steps), checks.positive_int("batch_size", batch_size)
    checks.positive_number("lr", lr)
    probs = label_probs(p, groups_p)
    nets = []
    for s in seeds:
        seed = checks.non_negative_int("seeds", s) + profile.SEED_STRIDE * profile.base_seed()
        D = LabelledMLP(p.dim, len(probs), hidden, conditional, seed=seed)
        opt = torch.optim.Adam(D.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        rng = torch.Generator().manual_seed(10_000 + seed)
        for _ in range(steps):
            x_real, y_real = labelled_sample(p, batch_size, groups_p, rng)
            y_fake = torch.multinomial(probs, batch_size, replacement=True, generator=rng)  # ~ p(y)
            x_fake, _ = labelled_sample(q, batch_size, groups_q, rng, labels=y_fake)
            loss = losses.discriminator_loss("ns", D(x_real, y_real), D(x_fake, y_fake))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        nets.append(D.eval())
    return nets
