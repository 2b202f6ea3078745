"""The training loop: alternating discriminator and generator steps, many seeds at once.

One call to :func:`fit` trains ``seeds`` independent GANs together: every network
holds all seeds' parameters (see :mod:`gan_lab.nets`), each seed's loss is the mean
over its own batch, and the seeds' losses are *summed* before ``backward`` so every
seed receives exactly the gradient it would get alone. Adam and RMSProp act
element-wise, so the update of each seed is the one a separate run would make.

Each of the ``steps`` iterations does ``n_critic`` discriminator steps, then one
generator step::

    D step: minimise L_D = discriminator_loss(kind, D(x), D(G(z)))   # G frozen
    G step: minimise L_G = generator_loss(kind, D(G(z)))              # D frozen
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import data as data_mod
from . import losses, profile
from .nets import (BatchNormGenerator, MaxoutDiscriminator, MLPDiscriminator, MLPGenerator,
                   per_seed_grad_norm)
from .devices import as_input, flat_weights, guard, module_device, unwrap
from . import checkpoint as checkpoint_file

OPTIMIZERS = ("adam", "rmsprop", "sgd")
G_ARCHS = ("mlp", "batchnorm")  #: generator architectures (``TrainConfig.g_arch``)
D_ARCHS = ("mlp", "maxout")  #: discriminator architectures (``TrainConfig.d_arch``)
UPDATES = ("alternating", "simultaneous")  #: update schemes (``TrainConfig.update``)
CHECK_EVERY = 25  #: steps between checks for non-finite losses (each check reads the history once)


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite: raised for a single-seed run, or when every seed diverged."""
PENALTIES = (None, "wgan-gp", "r1")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored on the :class:`Run`)."""

    loss: str = "ns"  #: one of :data:`gan_lab.losses.KINDS`
    steps: int = 2000  #: generator steps
    seeds: int = 1  #: independent runs trained together
    seed: int = 0  #: first seed; runs use ``seed, seed + 1, ...``
    batch_size: int = 256
    z_dim: int = 2
    g_hidden: tuple[int, ...] = (64, 64)
    d_hidden: tuple[int, ...] = (64, 64)
    activation: str = "leaky_relu"
    optimizer: str = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1  #: discriminator steps per generator step
    clip: float | None = None  #: clamp critic weights to [-clip, clip] after each D step (WGAN)
    #: The gradient penalty added to the critic's loss, ``"wgan-gp"`` (two-sided, at random
    #: interpolates of data and samples) or ``"r1"`` (at data), or ``None`` for none.
    penalty: str | None = None
    #: The penalty's weight, lambda for ``"wgan-gp"`` (term ``lambda * E(|grad D| - 1)^2``) and
    #: gamma for ``"r1"`` (term ``gamma / 2 * E |grad D|^2``).
    penalty_weight: float = 10.0
    #: PacGAN's packing degree m (Lin et al. 2018). The discriminator judges m samples at once,
    #: concatenated into one input of width ``m * d``: a real pack holds m independent data points,
    #: a fake pack m independent generated points. As in the PacGAN code, ``batch_size`` counts
    #: packs, so a step uses ``batch_size * m`` data points and as many generated ones; ``pack=1``
    #: is an ordinary GAN.
    pack: int = 1
    #: The generator's architecture, one of :data:`gan_lab.train.G_ARCHS`. With ``"mlp"`` it is
    #: :class:`gan_lab.nets.MLPGenerator`; with ``"batchnorm"`` it is
    #: :class:`gan_lab.nets.BatchNormGenerator` (widths ``g_hidden``, batch norm and ReLU).
    g_arch: str = "mlp"
    #: The discriminator's architecture, one of :data:`gan_lab.train.D_ARCHS`. With ``"mlp"`` it is
    #: :class:`gan_lab.nets.MLPDiscriminator`; with ``"maxout"`` it is
    #: :class:`gan_lab.nets.MaxoutDiscriminator` (widths ``d_hidden``, ``maxout_pieces`` pieces).
    d_arch: str = "mlp"
    maxout_pieces: int = 5  #: pieces per maxout unit (``d_arch="maxout"``)
    #: How the two networks are updated, one of :data:`gan_lab.train.UPDATES`. With ``"alternating"``,
    #: ``n_critic`` D steps, then a G step on fresh noise against the updated D. With
    #: ``"simultaneous"``, both gradients come from one forward pass on one batch and both
    #: networks step together, as in the PacGAN (and ALI) code; it needs ``n_critic == 1``.
    update: str = "alternating"
    snapshot_every: int | None = None  #: keep a copy of both networks every this many steps
    device: str | None = None  #: ``None``: :func:`gan_lab.profile.device`
    #: CPU threads while training (restored afterwards); ``None`` keeps torch's setting. These
    #: networks are tiny, so extra threads add synchronisation, not speed: on a busy 2-core
    #: machine two threads made training ~8x slower than one.
    cpu_threads: int | None = 1

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` naming the first field that is out of range."""
        if self.loss not in losses.KINDS:
            raise ValueError(f"loss must be one of {losses.KINDS}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("steps", "seeds", "batch_size", "z_dim", "n_critic", "pack", "maxout_pieces"):
            val = getattr(self, name)
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        for name in ("lr_g", "lr_d"):
            val = getattr(self, name)
            if not (isinstance(val, (int, float)) and np.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {val!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        for name, allowed in (("g_arch", G_ARCHS), ("d_arch", D_ARCHS), ("update", UPDATES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.update == "simultaneous" and self.n_critic != 1:
            raise ValueError(f"update='simultaneous' needs n_critic == 1, got n_critic={self.n_critic!r}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}")
        if not (isinstance(self.penalty_weight, (int, float)) and np.isfinite(self.penalty_weight)
                and self.penalty_weight > 0):
            raise ValueError(f"penalty_weight must be a finite number > 0, got {self.penalty_weight!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be None or > 0, got {self.clip!r}")
        if self.cpu_threads is not None and (not isinstance(self.cpu_threads, int) or self.cpu_threads < 1):
            raise ValueError(f"cpu_threads must be None or a positive int, got {self.cpu_threads!r}")
        if self.snapshot_every is not None and (not isinstance(self.snapshot_every, int) or self.snapshot_every < 1):
            raise ValueError(f"snapshot_every must be None or a positive int, got {self.snapshot_every!r}")
        return self


@dataclass
class Snapshot:
    """Both networks' weights (on the CPU) after ``step`` generator steps."""

    step: int
    generator: dict
    discriminator: dict


class SeedBatchedEvaluation:
    """Device-safe evaluation shared by :class:`Run` and :class:`CriticRun`.

    Every method takes CPU tensors of the natural shape, runs the network on the run's
    device without gradients (in evaluation mode, then back to its previous mode), and
    returns CPU tensors; see :mod:`gan_lab.devices`.
    """

    _HINT = "run.logits(x), run.probabilities(x), run.generate(z), run.sample(n) or run.weights()"

    def _net(self, which: str) -> torch.nn.Module:
        if which not in ("generator", "discriminator"):
            raise ValueError(f"which must be 'generator' or 'discriminator', got {which!r}")
        net = unwrap(getattr(self, which, None))
        if net is None:
            raise ValueError(f"this run has no {which}")
        return net

    @torch.no_grad()
    def _evaluate(self, which: str, x: torch.Tensor) -> torch.Tensor:
        net = self._net(which)
        was_training = net.training
        net.eval()
        try:
            return net(x.to(module_device(net))).float().cpu()
        finally:
            net.train(was_training)

    def logits(self, x) -> torch.Tensor:
        """The discriminator's logits (a critic's values) at CPU points ``x``.

        Args:
            x: ``(n, d)`` points, evaluated by every seed's discriminator, or ``(seeds, n, d)``,
                one set per seed (``d`` is the discriminator's input width: ``pack * dim`` when packed).

        Returns:
            A CPU tensor ``(seeds, n)`` (``(seeds, n, h)`` for an MMD GAN's feature map).
        """
        D = self._net("discriminator")
        return self._evaluate("discriminator", as_input("x", x, None, D.n_seeds))

    def probabilities(self, x) -> torch.Tensor:
        """``D(x) = sigmoid(logit)``, the discriminator's probability that ``x`` is real: CPU ``(seeds, n)``."""
        return torch.sigmoid(self.logits(x))

    def weights(self, which: str = "discriminator") -> np.ndarray:
        """All of one network's parameters, flattened per seed: a NumPy array ``(seeds, P)``."""
        return flat_weights(self._net(which))


@dataclass
class Run(SeedBatchedEvaluation):
    """The result of :func:`fit`: trained networks, history and snapshots.

    Chapters evaluate the networks through the device-safe methods (:meth:`sample`,
    :meth:`generate`, and from :class:`SeedBatchedEvaluation` ``logits``, ``probabilities`` and
    ``weights``), which take and
    return CPU tensors wherever the run trained. In device-check mode
    (:mod:`gan_lab.devices`) the ``generator`` and ``discriminator`` attributes refuse direct use.

    Attributes:
        config: the :class:`TrainConfig` used.
        data: the data distribution trained on.
        generator: the seed-batched generator, on the run's device.
        discriminator: the seed-batched discriminator (critic), on the run's device; for
            :func:`fit_mmd`, the learned feature map or ``None``.
        history: name -> array of shape ``(steps, seeds)``: ``d_loss`` (without penalty),
            ``penalty`` (the gradient-penalty term added to it, 0 if none), ``g_loss``,
            ``real_logit`` and ``fake_logit`` (batch means of the discriminator's logits,
            taken in the D step), ``g_grad_norm`` (norm of each seed's generator gradient).
        snapshots: copies of the networks every ``config.snapshot_every`` steps (step 0 included).
        seconds: training wall time.
        diverged: seed index -> the first generator step (1-based) at which one of its losses was NaN or infinite
            (empty when every seed stayed finite). Diverged seeds are reported, not dropped:
            their history holds the non-finite values and the other seeds train unaffected.
        resumed_from: the step a checkpoint resumed this run from (0 for a fresh run).
        first_seed: the seed of seed slot 0, ``config.seed`` shifted by the base seed
            (``GAN_LAB_SEED``, :func:`gan_lab.profile.seed_for`).
    """

    config: TrainConfig
    data: object
    generator: MLPGenerator
    discriminator: torch.nn.Module | None
    history: dict = field(default_factory=dict)
    snapshots: list = field(default_factory=list)
    seconds: float = 0.0
    diverged: dict = field(default_factory=dict)
    resumed_from: int = 0
    first_seed: int = 0

    def __post_init__(self) -> None:
        self.generator = guard(self.generator, "run.generator", self._HINT)
        self.discriminator = guard(self.discriminator, "run.discriminator", self._HINT)

    def __repr__(self) -> str:
        c = self.config
        what = f"loss={c.loss!r}" if "d_loss" in self.history or not self.history else "loss='mmd'"
        flags = f", diverged={self.diverged}" if self.diverged else ""
        return (
            f"Run({what}, seeds={c.seeds}, steps={c.steps}, batch_size={c.batch_size}, "
            f"device={self.device}, seconds={self.seconds:.1f}{flags})"
        )

    @property
    def device(self) -> torch.device:
        """The device the networks live on."""
        return module_device(self._net("generator"))

    @property
    def n_seeds(self) -> int:
        return self._net("generator").n_seeds

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent codes ``z ~ N(0, I)`` of shape ``(seeds, n, z_dim)``, on ``generator``'s device (default the CPU)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        dev = generator.device if generator is not None else torch.device("cpu")
        return torch.randn(self.n_seeds, n, self.config.z_dim, generator=generator, device=dev)

    def generate(self, z) -> torch.Tensor:
        """``G(z)`` for CPU codes ``z`` of shape ``(n, z_dim)`` (every seed) or ``(seeds, n, z_dim)``.

        The generator runs in evaluation mode, so a batch-normalised generator uses its running
        averages and each sample is independent of the others drawn with it, as in the PacGAN
        code's evaluation. Returns a CPU tensor ``(seeds, n, d)``; unpacked: packing only changes
        what the discriminator sees.
        """
        z = as_input("z", z, self.config.z_dim, self.n_seeds)
        return self._evaluate("generator", z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated samples per seed: a CPU tensor of shape ``(seeds, n, d)``.

        The codes come from ``generator`` (a ``torch.Generator`` on any device; default torch's
        global CPU generator) and go through :meth:`generate`.
        """
        return self.generate(self.latent(n, generator).cpu())

    def at(self, index: int) -> "Run":
        """A copy of this run whose networks hold snapshot ``index``'s weights."""
        if not self.snapshots:
            raise ValueError("this run kept no snapshots: pass snapshot_every to fit()")
        if not isinstance(index, int) or not -len(self.snapshots) <= index < len(self.snapshots):
            raise ValueError(f"index must be an int in [-{len(self.snapshots)}, {len(self.snapshots)}) "
                             f"(this run kept {len(self.snapshots)} snapshots), got {index!r}")
        snap = self.snapshots[index]
        g, d = copy.deepcopy(self._net("generator")), copy.deepcopy(self._net("discriminator"))
        g.load_state_dict(snap.generator)
        d.load_state_dict(snap.discriminator)
        return Run(self.config, self.data, g, d, self.history, [], self.seconds, dict(self.diverged),
                   self.resumed_from, self.first_seed)


def first_seed(config: TrainConfig) -> int:
    """The seed of a run's slot 0: ``config.seed`` shifted by the base seed (``GAN_LAB_SEED``).

    Slot ``i`` uses seed ``first_seed + i`` (its generator ``2 (first_seed + i)``, its
    discriminator ``2 (first_seed + i) + 1``); the data and noise stream is seeded with it.
    """
    return config.seed + profile.SEED_STRIDE * profile.base_seed()


def _optimizer(name: str, params, lr: float, betas: Sequence[float]) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def _resolve(config: TrainConfig | None, overrides: dict) -> TrainConfig:
    """Merge keyword overrides into a config, normalise tuples, and validate."""
    config = config or TrainConfig()
    unknown = set(overrides) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown TrainConfig field(s) {sorted(unknown)}; valid: {sorted(TrainConfig.__dataclass_fields__)}")
    config = TrainConfig(**{**asdict(config), **overrides})
    for name in ("g_hidden", "d_hidden", "betas"):
        setattr(config, name, tuple(getattr(config, name)))
    return config.validate()


def _discriminator_step(D, opt_d, config: TrainConfig, x_real: torch.Tensor, x_fake: torch.Tensor,
                        rng: torch.Generator):
    """One step on L_D (plus any gradient penalty; then WGAN's weight clipping).

    Returns the per-seed loss without the penalty, the penalty term (zeros if none) and the logits.
    """
    real_logits, fake_logits = D(x_real), D(x_fake)  # (S, B) each
    d_loss = losses.discriminator_loss(config.loss, real_logits, fake_logits, dim=-1)  # (S,)
    penalty = _penalty(D, config, x_real, x_fake, rng, d_loss)
    opt_d.zero_grad(set_to_none=True)
    (d_loss + penalty).sum().backward()  # sum over seeds: each seed gets its own gradient
    opt_d.step()
    if config.clip is not None:
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-config.clip, config.clip)
    return d_loss.detach(), penalty.detach(), real_logits.detach(), fake_logits.detach()


def _penalty(D, config: TrainConfig, x_real, x_fake, rng, d_loss) -> torch.Tensor:
    """The gradient-penalty term of the critic's loss, per seed ``(S,)`` (zeros if none)."""
    if config.penalty == "wgan-gp":
        return config.penalty_weight * losses.gradient_penalty(D, x_real, x_fake, generator=rng)  # (S,)
    if config.penalty == "r1":
        return 0.5 * config.penalty_weight * losses.r1_penalty(D, x_real)  # (S,)
    return torch.zeros_like(d_loss)


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """Group consecutive points into packs: ``(S, B * pack, d) -> (S, B, pack * d)``.

    Pack ``b`` of seed ``s`` is the concatenation ``x[s, b*pack], ..., x[s, b*pack + pack - 1]``;
    with independent points in, the packs hold independent points (PacGAN's packed input).
    """
    if not isinstance(pack, int) or isinstance(pack, bool) or pack < 1:
        raise ValueError(f"pack must be a positive int, got {pack!r}")
    if x.ndim != 3 or x.shape[1] % pack:
        raise ValueError(f"x must have shape (S, n, d) with n a multiple of pack={pack}, got {tuple(x.shape)}")
    S, n, d = x.shape
    return x.reshape(S, n // pack, pack * d)  # (S, B, pack * d)


def _networks(config: TrainConfig, x_dim: int, run_seeds: list, dev: torch.device):
    """The generator (seeds ``2 s``) and discriminator (seeds ``2 s + 1``) that ``config`` asks for."""
    g_seeds, d_seeds = [2 * s for s in run_seeds], [2 * s + 1 for s in run_seeds]
    if config.g_arch == "batchnorm":
        G = BatchNormGenerator(config.z_dim, x_dim, config.g_hidden, g_seeds)
    else:
        G = MLPGenerator(config.z_dim, x_dim, config.g_hidden, g_seeds, config.activation)
    d_in = x_dim * config.pack  # the discriminator sees packs of m points
    if config.d_arch == "maxout":
        D = MaxoutDiscriminator(d_in, config.d_hidden, config.maxout_pieces, d_seeds)
    else:
        D = MLPDiscriminator(d_in, config.d_hidden, d_seeds, config.activation)
    return G.to(dev), D.to(dev)


def _simultaneous_step(G, D, opt_g, opt_d, config: TrainConfig, x_real: torch.Tensor, z: torch.Tensor,
                       rng: torch.Generator):
    """One simultaneous step: L_D and L_G from the same forward pass, then both networks step.

    Returns ``d_loss``, ``penalty``, ``g_loss`` (each ``(S,)``) and the logits ``(S, B)``.
    """
    x_fake = pack_samples(G(z), config.pack)  # (S, B, m * d), keeps G's graph
    real_logits, fake_logits = D(x_real), D(x_fake)  # (S, B) each
    d_loss = losses.discriminator_loss(config.loss, real_logits, fake_logits, dim=-1)  # (S,)
    penalty = _penalty(D, config, x_real, x_fake.detach(), rng, d_loss)
    g_loss = losses.generator_loss(config.loss, fake_logits, dim=-1)  # (S,)
    d_params, g_params = list(D.parameters()), list(G.parameters())
    # each network gets the gradient of its own loss at the current point of both (sum over seeds)
    d_grads = torch.autograd.grad((d_loss + penalty).sum(), d_params, retain_graph=True)
    g_grads = torch.autograd.grad(g_loss.sum(), g_params)
    for p, grad in zip(d_params + g_params, d_grads + g_grads):
        p.grad = grad
    opt_d.step()
    opt_g.step()
    if config.clip is not None:
        with torch.no_grad():
            for p in d_params:
                p.clamp_(-config.clip, config.clip)
    return d_loss.detach(), penalty.detach(), g_loss.detach(), real_logits.detach(), fake_logits.detach()


@contextlib.contextmanager
def _cpu_threads(n: int | None, dev: torch.device):
    """Run the block with ``n`` torch CPU threads (CPU devices only), then restore the old count."""
    if n is None or dev.type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _snapshot(step: int, g: torch.nn.Module, d: torch.nn.Module) -> Snapshot:
    cpu = lambda m: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}  # noqa: E731
    return Snapshot(step, cpu(g), cpu(d))


def fit(data, config: TrainConfig | None = None, *, progress: bool | None = None,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 500, resume: bool = True,
        **overrides) -> Run:
    """Train ``seeds`` GANs together on ``data``.

    Args:
        data: a distribution with ``.sample`` (such as :func:`gan_lab.data.ring`), or a
            reader's own 2-D points: an array/tensor of shape ``(N, 2)`` or a CSV path.
        config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields
            (``fit(data, loss="hinge", steps=500, seeds=4)``).
        progress: show a tqdm progress bar (notebook or terminal); default from
            :func:`gan_lab.profile.progress_enabled`.
        checkpoint: a file to save the whole training state to every ``checkpoint_every``
            steps and at the end, in the format of :mod:`gan_lab.checkpoint` (atomic, SHA-256
            checked, versioned; the history and snapshots are appended to ``checkpoint.log``, so
            saving costs I/O linear in steps). If the file exists and ``resume`` is true, training
            continues from it, and on the CPU the result is bit-identical to an uninterrupted
            run. A checkpoint from another device type (CPU against CUDA), another base seed or
            another format version is refused at once, with an error naming both.
        checkpoint_every: steps between checkpoints.
        resume: continue from an existing ``checkpoint`` (its config must equal this one);
            ``False`` starts afresh and overwrites it.

    Returns:
        A :class:`Run`; ``run.sample(n)`` is ``(seeds, n, d)`` and ``run.history`` holds
        the losses per step and seed.

    Raises:
        TrainingDiverged: a loss became NaN or infinite in a single-seed run (the message names
            the step, the loss and the last finite values), or in every seed of a batched run.
            In a batched run with some healthy seeds, the diverged ones are listed in
            ``run.diverged`` and a ``RuntimeWarning`` names them; the others train on unaffected.
    """
    config = _resolve(config, overrides)
    if not isinstance(checkpoint_every, int) or isinstance(checkpoint_every, bool) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive int, got {checkpoint_every!r}")
    dist = data_mod.as_distribution(data)
    x_dim = dist.dim
    dev = profile.device(config.device)

    S = config.seeds
    first = first_seed(config)
    run_seeds = [first + i for i in range(S)]
    G, D = _networks(config, x_dim, run_seeds, dev)
    opt_g = _optimizer(config.optimizer, G.parameters(), config.lr_g, config.betas)
    opt_d = _optimizer(config.optimizer, D.parameters(), config.lr_d, config.betas)
    rng = torch.Generator(dev).manual_seed(first)  # data and latent noise

    names = ("d_loss", "penalty", "g_loss", "real_logit", "fake_logit", "g_grad_norm")
    hist = {k: torch.zeros(config.steps, S, device=dev) for k in names}  # (steps, S), filled in place
    snaps = [_snapshot(0, G, D)] if config.snapshot_every else []
    state = _TrainState(G, D, opt_g, opt_d, rng, hist, snaps)
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state.load(checkpoint, config)
    resumed_from = state.step
    start = time.perf_counter() - state.seconds

    def after_step(step: int) -> None:  # step: generator steps done so far
        state.step = step
        if step % CHECK_EVERY == 0 or step == config.steps:
            _check_divergence(hist, state, step, S)
        if checkpoint is not None and (step % checkpoint_every == 0 or step == config.steps):
            state.seconds = time.perf_counter() - start
            state.save(checkpoint, config)

    with _cpu_threads(config.cpu_threads, dev):
        _train_loop(config, dist, G, D, opt_g, opt_d, rng, hist, snaps, progress, resumed_from, after_step)
    seconds = time.perf_counter() - start
    history = {k: v.cpu().numpy() for k, v in hist.items()}
    return Run(config, dist, G, D, history, snaps, seconds, dict(state.diverged), resumed_from, first)


def _train_loop(config, dist, G, D, opt_g, opt_d, rng, hist, snaps, progress, first=0, after_step=None) -> None:
    S, B, kind, dev = config.seeds, config.batch_size, config.loss, rng.device
    bar = profile.progress_bar(range(first, config.steps), f"{kind} x{S} seeds", progress)
    m = config.pack  # packing: B packs of m points each; m = 1 is an ordinary GAN
    for step in bar:
        if config.update == "simultaneous":
            x_real = pack_samples(dist.sample((S, B * m), generator=rng), m)  # (S, B, m * d)
            z = torch.randn(S, B * m, config.z_dim, generator=rng, device=dev)
            d_loss, penalty, g_loss, real_logits, fake_logits = _simultaneous_step(G, D, opt_g, opt_d, config,
                                                                                   x_real, z, rng)
            hist["g_grad_norm"][step] = per_seed_grad_norm(G)
        else:
            # D step(s): minimise L_D with G frozen (n_critic of them)
            for _ in range(config.n_critic):
                x_real = pack_samples(dist.sample((S, B * m), generator=rng), m)  # (S, B, m * d)
                z = torch.randn(S, B * m, config.z_dim, generator=rng, device=dev)
                with torch.no_grad():
                    x_fake = pack_samples(G(z), m)  # (S, B, m * d)
                d_loss, penalty, real_logits, fake_logits = _discriminator_step(D, opt_d, config, x_real, x_fake,
                                                                                rng)
            # G step: minimise L_G with D frozen
            z = torch.randn(S, B * m, config.z_dim, generator=rng, device=dev)
            D.requires_grad_(False)  # gradients flow through D to G, but D's weights need none
            g_loss = losses.generator_loss(kind, D(pack_samples(G(z), m)), dim=-1)  # (S,)
            opt_g.zero_grad(set_to_none=True)
            g_loss.sum().backward()
            D.requires_grad_(True)
            hist["g_grad_norm"][step] = per_seed_grad_norm(G)
            opt_g.step()
            g_loss = g_loss.detach()

        hist["d_loss"][step] = d_loss
        hist["penalty"][step] = penalty
        hist["g_loss"][step] = g_loss
        hist["real_logit"][step] = real_logits.mean(-1)
        hist["fake_logit"][step] = fake_logits.mean(-1)
        if config.snapshot_every and (step + 1) % config.snapshot_every == 0:
            snaps.append(_snapshot(step + 1, G, D))
        if after_step is not None:
            after_step(step + 1)
    bar.close()


_WATCHED = ("d_loss", "penalty", "g_loss")  # the losses whose finiteness is checked


def _check_divergence(hist: dict, state: "_TrainState", step: int, n_seeds: int) -> None:
    """Flag seeds whose losses became non-finite in the steps since the last check.

    A single-seed run (or a batched run in which every seed has diverged) raises
    :class:`TrainingDiverged`; otherwise newly diverged seeds get a ``RuntimeWarning``.
    """
    lo = state.checked
    state.checked = step
    block = torch.stack([hist[k][lo:step] for k in _WATCHED])  # (3, T, S)
    bad = ~torch.isfinite(block).all(0)  # (T, S)
    if not bool(bad.any()):
        return
    bad, new = bad.cpu(), []
    for s in range(n_seeds):
        rows = bad[:, s].nonzero()
        if s not in state.diverged and len(rows):
            state.diverged[s] = lo + int(rows[0]) + 1  # 1-based generator step
            new.append(s)
    if n_seeds == 1 or len(state.diverged) == n_seeds:
        s = min(state.diverged, key=state.diverged.get)
        t = state.diverged[s] - 1  # row of the first bad step
        values = {k: float(hist[k][t, s]) for k in _WATCHED}
        which = ", ".join(f"{k} = {v}" for k, v in values.items() if not np.isfinite(v))
        finite = torch.isfinite(torch.stack([hist[k][:t, s] for k in _WATCHED])).all(0).nonzero()
        if len(finite):
            last = int(finite[-1])
            before = ", ".join(f"{k} = {float(hist[k][last, s]):.6g}" for k in _WATCHED)
            before = f"last finite values (step {last + 1}): {before}"
        else:
            before = "no finite step before it"
        scope = "the run" if n_seeds == 1 else f"all {n_seeds} seeds (seed index {s} first)"
        raise TrainingDiverged(f"training diverged at step {t + 1} of {scope}: {which}; {before}. "
                               "Try a smaller learning rate, a gradient penalty, or another loss.")
    if new:
        listed = ", ".join(f"seed index {s} at step {state.diverged[s]}" for s in new)
        warnings.warn(f"training diverged (NaN or inf loss) for {listed}; the other seeds keep training. "
                      "See run.diverged.", RuntimeWarning, stacklevel=5)


@dataclass
class _TrainState:
    """What a checkpoint holds: networks, optimisers, random stream, history and progress.

    Saved through :mod:`gan_lab.checkpoint`: the state file is rewritten, the history rows and
    snapshots since the last save are appended to the log, so saving stays linear in steps.
    """

    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator
    hist: dict
    snaps: list
    step: int = 0  # generator steps done
    checked: int = 0  # steps already checked for divergence
    seconds: float = 0.0
    diverged: dict = field(default_factory=dict)
    saved_step: int = 0  # history rows already in the log
    saved_snaps: int = 0  # snapshots already in the log
    log_bytes: int = 0  # bytes of the log the state file covers

    def state(self, config: TrainConfig) -> dict:
        return {
            "device_type": self.rng.device.type, "torch": str(torch.__version__),
            "config": _config_record(config), "base_seed": profile.base_seed(),
            "step": self.step, "checked": self.checked,
            "seconds": self.seconds, "diverged": [[s, t] for s, t in self.diverged.items()],
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
        }

    def save(self, path, config: TrainConfig) -> None:
        chunk = {
            "start": self.saved_step, "stop": self.step,
            "history": {k: v[self.saved_step: self.step].detach().cpu().clone() for k, v in self.hist.items()},
            "snapshots": [{"step": s.step, "generator": s.generator, "discriminator": s.discriminator}
                          for s in self.snaps[self.saved_snaps:]],
        }
        self.log_bytes = checkpoint_file.save(path, self.state(config), chunk, self.log_bytes)
        self.saved_step, self.saved_snaps = self.step, len(self.snaps)

    def load(self, path, config: TrainConfig) -> None:
        ckpt, chunks = checkpoint_file.load(path)
        record = _config_record(config)
        # the device is compared by type below (any CUDA index resumes a CUDA checkpoint)
        diff = sorted(k for k in ckpt["config"] if k != "device" and ckpt["config"][k] != record.get(k))
        if diff:
            raise ValueError(f"checkpoint {path} was written by a run with a different config "
                             f"(fields {diff}); pass resume=False to start afresh")
        if ckpt["base_seed"] != profile.base_seed():
            raise ValueError(f"checkpoint {path} was written with base seed GAN_LAB_SEED={ckpt['base_seed']}, "
                             f"this run has {profile.base_seed()}; set it back or pass resume=False")
        dev = self.rng.device
        if ckpt["device_type"] != dev.type:
            raise ValueError(f"checkpoint {path} was written on a {ckpt['device_type']} device (torch "
                             f"{ckpt['torch']}) and cannot resume on {dev}: the random stream of one device "
                             f"type does not carry over to another. Resume on {ckpt['device_type']} "
                             f"(device={ckpt['device_type']!r} or GAN_LAB_DEVICE), or pass resume=False.")
        self.G.load_state_dict(ckpt["generator"])
        self.D.load_state_dict(ckpt["discriminator"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.rng.set_state(ckpt["rng"])
        self.step, self.checked, self.seconds = ckpt["step"], ckpt["checked"], ckpt["seconds"]
        self.diverged = {int(s): int(t) for s, t in ckpt["diverged"]}
        done = 0
        self.snaps.clear()
        for chunk in chunks:
            if chunk["start"] != done:
                raise ValueError(f"checkpoint log of {path} is inconsistent: a chunk starts at step "
                                 f"{chunk['start']}, expected {done}")
            for k, rows in chunk["history"].items():
                self.hist[k][chunk["start"]: chunk["stop"]] = rows.to(dev)
            self.snaps.extend(Snapshot(s["step"], s["generator"], s["discriminator"]) for s in chunk["snapshots"])
            done = chunk["stop"]
        if done != self.step:
            raise ValueError(f"checkpoint log of {path} covers {done} steps, its state {self.step}")
        self.saved_step, self.saved_snaps, self.log_bytes = self.step, len(self.snaps), ckpt["log_bytes"]


def _config_record(config: TrainConfig) -> dict:
    """The config as plain Python values (what a checkpoint can store and compare)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and verify a checkpoint written by :func:`fit` (:mod:`gan_lab.checkpoint`).

    Returns its state (``format``, ``device_type``, ``torch``, ``config``, ``step``, networks,
    optimisers, ...) with the log's ``history`` (name -> tensor ``(step, seeds)``) and
    ``snapshots`` assembled; loads with ``weights_only=True``.
    """
    state, chunks = checkpoint_file.load(path)
    history = {k: torch.cat([c["history"][k] for c in chunks]) for k in (chunks[0]["history"] if chunks else ())}
    return {**state, "history": history, "snapshots": [s for c in chunks for s in c["snapshots"]]}


@dataclass
class CriticRun(SeedBatchedEvaluation):
    """The result of :func:`fit_discriminator`: a trained seed-batched discriminator.

    Evaluate it with ``logits``, ``probabilities`` and ``weights`` (CPU in, CPU out; see
    :class:`SeedBatchedEvaluation`).

    Attributes:
        config: the :class:`TrainConfig` used (generator fields unused).
        discriminator: the seed-batched discriminator (critic), on the run's device.
        history: ``d_loss`` (without penalty), ``penalty``, ``real_logit``, ``fake_logit``,
            each ``(steps, seeds)``.
        seconds: training wall time.
    """

    config: TrainConfig
    discriminator: MLPDiscriminator
    history: dict
    seconds: float

    _HINT = "run.logits(x), run.probabilities(x) or run.weights()"

    def __post_init__(self) -> None:
        self.discriminator = guard(self.discriminator, "run.discriminator", self._HINT)

    @property
    def device(self) -> torch.device:
        """The device the critic lives on."""
        return module_device(self._net("discriminator"))

    @property
    def n_seeds(self) -> int:
        return self._net("discriminator").n_seeds

    def __repr__(self) -> str:
        c = self.config
        return f"CriticRun(loss={c.loss!r}, seeds={c.seeds}, steps={c.steps}, seconds={self.seconds:.1f})"


def fit_discriminator(p_data, p_model, config: TrainConfig | None = None, *, progress: bool | None = None,
                      **overrides) -> CriticRun:
    """Train only the discriminator, against a *fixed* model distribution (the game's inner max).

    Each of ``steps`` iterations is one D step of :func:`fit` with ``p_model``'s samples in
    place of ``G(z)``. Used to watch a discriminator approach its optimum ``D*``.

    Args:
        p_data: the data distribution (anything :func:`fit` accepts).
        p_model: the fixed model distribution, same dimension.
        config: a :class:`TrainConfig` (``loss``, ``steps``, ``seeds``, ``batch_size``,
            ``d_hidden``, ``lr_d``, ``optimizer``, ``betas``, ``clip`` apply); keyword overrides replace fields.
        progress: show a progress bar.
    """
    config = _resolve(config, overrides)
    real, fake = data_mod.as_distribution(p_data, None), data_mod.as_distribution(p_model, None)
    if real.dim != fake.dim:
        raise ValueError(f"p_data and p_model must have the same dimension, got {real.dim} and {fake.dim}")
    dev = profile.device(config.device)
    S, B, first = config.seeds, config.batch_size, first_seed(config)
    D = MLPDiscriminator(real.dim, config.d_hidden, [2 * (first + i) + 1 for i in range(S)],
                         config.activation).to(dev)
    opt_d = _optimizer(config.optimizer, D.parameters(), config.lr_d, config.betas)
    rng = torch.Generator(dev).manual_seed(first)
    hist = {k: torch.zeros(config.steps, S, device=dev) for k in ("d_loss", "penalty", "real_logit", "fake_logit")}

    start = time.perf_counter()
    bar = profile.progress_bar(range(config.steps), f"D only ({config.loss})", progress)
    with _cpu_threads(config.cpu_threads, dev):
        for step in bar:
            x_real, x_fake = real.sample((S, B), generator=rng), fake.sample((S, B), generator=rng)  # (S, B, d)
            d_loss, penalty, real_logits, fake_logits = _discriminator_step(D, opt_d, config, x_real, x_fake, rng)
            hist["d_loss"][step] = d_loss
            hist["penalty"][step] = penalty
            hist["real_logit"][step] = real_logits.mean(-1)
            hist["fake_logit"][step] = fake_logits.mean(-1)
    bar.close()
    seconds = time.perf_counter() - start
    return CriticRun(config, D, {k: v.cpu().numpy() for k, v in hist.items()}, seconds)


def fit_mmd(data, config: TrainConfig | None = None, *, bandwidths=(0.05, 0.1, 0.2, 0.5, 1.0),
            features: int | None = None, progress: bool | None = None, **overrides) -> Run:
    r"""Train generators by minimising an MMD, many seeds at once.

    With ``features=None`` this is a generative moment-matching network (Li et al. 2015;
    Dziugaite et al. 2015): each generator step minimises the unbiased
    :math:`\mathrm{MMD}^2` between a data batch and a generated batch under a fixed Gaussian
    kernel with the given ``bandwidths`` (summed). With ``features=h`` it is an MMD GAN
    (Li et al. 2017): the kernel acts on a learned feature map ``(S, n, d) -> (S, n, h)`` (an
    MLP of width ``config.d_hidden``, stored as ``run.discriminator``), which ``n_critic``
    steps per generator step train to *maximise* that MMD, its weights clipped to
    ``[-clip, clip]`` (``config.clip``, default 0.01 here) as in Li et al.; their autoencoder
    term is left out. Clipping makes the features tiny (their scale is set by ``clip``, not by
    the data), so with a feature map the ``bandwidths`` are *relative*: each MMD evaluation
    uses :math:`\sigma = b \cdot m` for each ``b`` in ``bandwidths``, where :math:`m` is the
    median heuristic (:func:`gan_lab.losses.median_heuristic`, detached) on the pooled real and
    generated features of that seed's first critic batch, measured once per generator step
    and used by that step's critic and generator updates. The learned kernel is then invariant to the
    features' overall scale, and the clipping bounds the family of feature maps without
    making the kernel constant. The fixed-kernel path uses ``bandwidths`` as absolute.

    Args:
        data: anything :func:`fit` accepts.
        config: a :class:`TrainConfig` (``loss`` is ignored); keyword overrides replace fields.
        bandwidths: the Gaussian kernel's bandwidths, summed: absolute with ``features=None``,
            multiples of the features' median pairwise distance with a feature map.
        features: ``None`` for a fixed kernel on the data, or the feature map's output size.
        progress: show a progress bar.

    Returns:
        A :class:`Run` whose ``history`` has ``mmd2`` (the generator's loss) per step and seed,
        plus ``critic_mmd2`` with a feature map; ``run.discriminator`` is the feature map or ``None``.
    """
    from .nets import SeedMLP

    if features is not None and "clip" not in overrides and (config is None or config.clip is None):
        overrides["clip"] = 0.01
    config = _resolve(config, overrides)
    if features is not None and (not isinstance(features, int) or features < 1):
        raise ValueError(f"features must be None or a positive int, got {features!r}")
    losses.gaussian_kernel(torch.zeros(1, 1), torch.zeros(1, 1), bandwidths)  # validates bandwidths
    dist = data_mod.as_distribution(data)
    dev = profile.device(config.device)
    S, B, first = config.seeds, config.batch_size, first_seed(config)
    run_seeds = [first + i for i in range(S)]
    G = MLPGenerator(config.z_dim, dist.dim, config.g_hidden, [2 * s for s in run_seeds], config.activation).to(dev)
    opt_g = _optimizer(config.optimizer, G.parameters(), config.lr_g, config.betas)
    F = None
    if features is not None:
        F = SeedMLP(dist.dim, features, config.d_hidden, [2 * s + 1 for s in run_seeds], config.activation).to(dev)
        opt_f = _optimizer(config.optimizer, F.parameters(), config.lr_d, config.betas)
    rel_bw = torch.as_tensor(bandwidths, dtype=torch.float32, device=dev).reshape(-1)  # (k,)

    def feature_mmd2(x_real, x_fake, scale=None):  # (S,) MMD^2 of the features, and the scale (S, 1) used
        f_real, f_fake = F(x_real), F(x_fake)  # (S, B, h)
        if scale is None:  # median heuristic on the pooled features, detached
            scale = losses.median_heuristic(f_real, f_fake).clamp_min(1e-12)
        return losses.mmd2(f_real, f_fake, scale * rel_bw.to(scale)), scale  # bandwidths (S, k)

    rng = torch.Generator(dev).manual_seed(first)
    names = ("mmd2", "g_grad_norm") + (("critic_mmd2",) if F is not None else ())
    hist = {k: torch.zeros(config.steps, S, device=dev) for k in names}
    start = time.perf_counter()
    with _cpu_threads(config.cpu_threads, dev):
        for step in profile.progress_bar(range(config.steps), f"mmd x{S} seeds", progress):
            if F is not None:
                scale = None  # the features' scale: measured on this step's first critic batch
                for _ in range(config.n_critic):  # critic: maximise MMD^2 of the features
                    x_real = dist.sample((S, B), generator=rng)
                    with torch.no_grad():
                        x_fake = G(torch.randn(S, B, config.z_dim, generator=rng, device=dev))
                    critic_mmd2, scale = feature_mmd2(x_real, x_fake, scale)  # (S,), (S, 1)
                    opt_f.zero_grad(set_to_none=True)
                    (-critic_mmd2).sum().backward()
                    opt_f.step()
                    with torch.no_grad():
                        for p in F.parameters():
                            p.clamp_(-config.clip, config.clip)
                hist["critic_mmd2"][step] = critic_mmd2.detach()
                F.requires_grad_(False)
            x_real = dist.sample((S, B), generator=rng)
            x_fake = G(torch.randn(S, B, config.z_dim, generator=rng, device=dev))
            if F is None:
                mmd2 = losses.mmd2(x_real, x_fake, bandwidths)  # (S,): generator minimises
            else:
                mmd2, _ = feature_mmd2(x_real, x_fake, scale)
            opt_g.zero_grad(set_to_none=True)
            mmd2.sum().backward()
            hist["g_grad_norm"][step] = per_seed_grad_norm(G)
            opt_g.step()
            if F is not None:
                F.requires_grad_(True)
            hist["mmd2"][step] = mmd2.detach()
    seconds = time.perf_counter() - start
    return Run(config, dist, G, F, {k: v.cpu().numpy() for k, v in hist.items()}, [], seconds, first_seed=first)
