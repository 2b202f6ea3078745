"""The 2-D training config and what every 2-D fit derives from it.

:class:`TrainConfig` defines a run of :func:`gan_lab.train.fit`,
:func:`gan_lab.train.fit_discriminator` or :func:`gan_lab.train.fit_mmd`. The helpers here
turn it into the run's pieces: the seeds (:func:`first_seed`), the step's settings
(:func:`step_spec`), the optimisers (:func:`optimizers`) and the engine (:func:`use_compiled`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from . import checks, losses, profile, spectral
from . import step as step_mod
from .nets import DISCRIMINATORS, GENERATORS, build_discriminator
from .runs import Snapshot
from .step import PENALTIES

G_ARCHS = tuple(GENERATORS)  #: generator architectures (``TrainConfig.g_arch``)
D_ARCHS = tuple(DISCRIMINATORS)  #: discriminator architectures (``TrainConfig.d_arch``)
UPDATES = ("alternating", "simultaneous")  #: update schemes (``TrainConfig.update``)
CHECK_EVERY = 25  #: steps between checks for non-finite losses on the CPU (each check reads the history)
#: With ``compile=None``, a run is compiled when it has at least this many generator steps on the
#: device type (and, on the CPU, at most :data:`AUTO_COMPILE_MAX_SEEDS` seeds). The CPU line is
#: measured (``python -m gan_lab.bench``; see the README): one seed runs about twice as fast
#: compiled, and 20-40 s of compiling on a 2-core CPU is repaid after some 50,000 steps; with
#: many seeds the step is bound by its matrix products, which compiling does not speed up.
#: The CUDA line is an estimate (a step launch-bound at ~3 ms eager) until a GPU measures it.
AUTO_COMPILE_STEPS = {"cpu": 50_000, "cuda": 20_000}
AUTO_COMPILE_MAX_SEEDS = 4  #: on the CPU, runs with more seeds stay eager (see :data:`AUTO_COMPILE_STEPS`)
HISTORY = ("d_loss", "penalty", "g_loss", "real_logit", "fake_logit", "g_grad_norm")  #: a GAN run's history


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored on the :class:`gan_lab.runs.Run`)."""

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
    #: The generator's architecture, one of :data:`gan_lab.nets.GENERATORS`. With ``"mlp"`` it is
    #: :class:`gan_lab.nets.MLPGenerator`; with ``"batchnorm"`` it is
    #: :class:`gan_lab.nets.BatchNormGenerator` (widths ``g_hidden``, batch norm and ReLU).
    g_arch: str = "mlp"
    #: The discriminator's architecture, one of :data:`gan_lab.nets.DISCRIMINATORS`. With ``"mlp"`` it is
    #: :class:`gan_lab.nets.MLPDiscriminator`; with ``"maxout"`` it is
    #: :class:`gan_lab.nets.MaxoutDiscriminator` (widths ``d_hidden``, ``maxout_pieces`` pieces).
    d_arch: str = "mlp"
    maxout_pieces: int = 5  #: pieces per maxout unit (``d_arch="maxout"``)
    #: How the two networks are updated, one of :data:`UPDATES`. With ``"alternating"``,
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
    #: The step's engine. ``False``: the eager step of :mod:`gan_lab.step`. ``True``: the whole
    #: iteration as one compiled function (:mod:`gan_lab.compiled`; the same random draws, the
    #: same arithmetic up to floating-point rounding). ``None`` (default): compiled only when the
    #: run is long enough to repay compilation (:func:`use_compiled`, :data:`AUTO_COMPILE_STEPS`);
    #: every chapter's runs are shorter, so chapters train eagerly.
    compile: bool | None = None
    #: Reuse the last D step's generated batch for the G step instead of drawing fresh codes
    #: (as pytorch/examples' DCGAN does): one generator forward pass less per step, but a
    #: different algorithm (the G step sees samples D has just been trained on). Off by default.
    reuse_fake: bool = False
    #: Spectral normalisation (Miyato et al. 2018) of every discriminator layer
    #: (:func:`gan_lab.spectral.apply_seed_spectral_norm`: per seed, torch's algorithm, one
    #: power-iteration step per training-mode forward). The step is then eager: the compiled
    #: step has no parametrized weights (``compile=True`` is refused, ``None`` stays eager).
    spectral_norm: bool = False

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` naming the first field that is out of range."""
        checks.one_of("loss", self.loss, losses.KINDS)
        checks.one_of("optimizer", self.optimizer, step_mod.OPTIMIZERS)
        for name in ("steps", "seeds", "batch_size", "z_dim", "n_critic", "pack", "maxout_pieces"):
            checks.positive_int(name, getattr(self, name))
        checks.non_negative_int("seed", self.seed)
        for name in ("lr_g", "lr_d"):
            checks.positive_number(name, getattr(self, name))
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        for name, allowed in (("g_arch", G_ARCHS), ("d_arch", D_ARCHS), ("update", UPDATES)):
            checks.one_of(name, getattr(self, name), allowed)
        if self.update == "simultaneous" and self.n_critic != 1:
            raise ValueError(f"update='simultaneous' needs n_critic == 1, got n_critic={self.n_critic!r}")
        if self.update == "simultaneous" and self.reuse_fake:
            raise ValueError("reuse_fake applies to update='alternating' (a simultaneous step has one batch)")
        checks.one_of("penalty", self.penalty, PENALTIES)
        checks.positive_number("penalty_weight", self.penalty_weight)
        if self.clip is not None and not (isinstance(self.clip, (int, float)) and self.clip > 0):
            raise ValueError(f"clip must be None or > 0, got {self.clip!r}")
        checks.optional_positive_int("cpu_threads", self.cpu_threads)
        checks.optional_positive_int("snapshot_every", self.snapshot_every)
        checks.boolean("compile", self.compile, allow_none=True)
        checks.boolean("reuse_fake", self.reuse_fake)
        checks.boolean("spectral_norm", self.spectral_norm)
        if self.spectral_norm and self.compile:
            raise ValueError("compile=True has no spectral_norm (the compiled step has no parametrized "
                             "weights): use compile=None or False")
        return self


def first_seed(config: TrainConfig) -> int:
    """The seed of a run's slot 0: ``config.seed`` shifted by the base seed (``GAN_LAB_SEED``).

    Slot ``i`` uses seed ``first_seed + i`` (its generator ``2 (first_seed + i)``, its
    discriminator ``2 (first_seed + i) + 1``); the data and noise stream is seeded with it.
    """
    return config.seed + profile.SEED_STRIDE * profile.base_seed()


def merge(cls, config, overrides: dict, tuples=()):
    """``config`` (an instance of the dataclass ``cls``, or ``None`` for its defaults) with the keyword
    ``overrides`` replacing fields (``TypeError`` naming unknown ones), the fields named in
    ``tuples`` made tuples, then validated (``config.validate()``). Used by every fit."""
    config = config or cls()
    fields = cls.__dataclass_fields__
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s) {sorted(unknown)}; valid: {sorted(fields)}")
    config = cls(**{**asdict(config), **overrides})
    for name in tuples:
        setattr(config, name, tuple(getattr(config, name)))
    return config.validate()


def resolve(config: TrainConfig | None, overrides: dict) -> TrainConfig:
    """Merge keyword overrides into a :class:`TrainConfig` (see :func:`merge`), normalise, validate."""
    return merge(TrainConfig, config, overrides, ("g_hidden", "d_hidden", "betas"))


def use_compiled(config: TrainConfig, device: torch.device | None = None) -> bool:
    """Whether a run of ``config`` on ``device`` (default: the config's) takes the compiled step.

    ``config.compile`` if it is set; otherwise the automatic rule of :data:`AUTO_COMPILE_STEPS`.
    """
    if config.compile is not None:
        return config.compile
    if config.reuse_fake or config.spectral_norm:  # the compiled step has neither
        return False
    dev = device if device is not None else profile.device(config.device)
    if dev.type == "cpu" and config.seeds > AUTO_COMPILE_MAX_SEEDS:
        return False
    return config.steps >= AUTO_COMPILE_STEPS.get(dev.type, AUTO_COMPILE_STEPS["cuda"])


def build_critic(config: TrainConfig, in_dim: int, seeds) -> torch.nn.Module:
    """The discriminator of :func:`gan_lab.nets.build_discriminator`, spectrally normalised when
    ``config.spectral_norm`` (the power-iteration vectors of slot ``i`` from ``seeds[i]``)."""
    D = build_discriminator(config, in_dim, seeds)
    if config.spectral_norm:
        spectral.apply_seed_spectral_norm(D, seeds)
    return D


def step_spec(config: TrainConfig) -> step_mod.StepSpec:
    """The settings the step functions need (:class:`gan_lab.step.StepSpec`)."""
    return step_mod.StepSpec(loss=config.loss, penalty=config.penalty, penalty_weight=config.penalty_weight,
                             clip=config.clip, pack=config.pack)


def optimizers(config: TrainConfig, dev, **nets) -> dict:
    """One optimiser per network (keyword: ``generator=G``, ``discriminator=D``), as the config says."""
    lr = {"generator": config.lr_g, "discriminator": config.lr_d}
    return {k: step_mod.make_optimizer(config.optimizer, net.parameters(), lr[k], config.betas, dev)
            for k, net in nets.items()}


def snapshot(step: int, g, d) -> Snapshot:
    """Both networks' weights on the CPU (``None`` for a missing one)."""
    def cpu(m):
        return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()} if m is not None else None

    return Snapshot(step, cpu(g), cpu(d))
