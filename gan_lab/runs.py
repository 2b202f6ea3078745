"""What a 2-D fit returns: the run objects and their device-safe evaluation methods.

:class:`Run` (from :func:`gan_lab.train.fit` and :func:`gan_lab.train.fit_mmd`) and
:class:`CriticRun` (from :func:`gan_lab.train.fit_discriminator`) keep their networks on the
device they trained on. Their methods take CPU tensors, evaluate without gradients and
return CPU tensors (:mod:`gan_lab.devices`), so a chapter never moves a tensor itself.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from .checks import positive_int, renamed
from .devices import as_input, flat_weights, guard, module_device, unwrap

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
    """The result of :func:`gan_lab.train.fit`: trained networks, history and snapshots.

    Chapters evaluate the networks through the device-safe methods (:meth:`sample`,
    :meth:`generate`, and from :class:`SeedBatchedEvaluation` ``logits``, ``probabilities`` and
    ``weights``), which take and
    return CPU tensors wherever the run trained. In device-check mode
    (:mod:`gan_lab.devices`) the ``generator`` and ``discriminator`` attributes refuse direct use.

    Attributes:
        config: the :class:`gan_lab.config.TrainConfig` used.
        data: the data distribution trained on.
        generator: the seed-batched generator, on the run's device.
        discriminator: the seed-batched discriminator (critic), on the run's device; for
            :func:`gan_lab.train.fit_mmd`, the learned feature map or ``None``.
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
        engine: the step that trained it, ``"eager"`` or ``"compiled"`` (``TrainConfig.compile``).
        compile_seconds: seconds the compiled step's first call took (compiling it); 0 for eager.
    """

    config: object
    data: object
    generator: torch.nn.Module
    discriminator: torch.nn.Module | None
    history: dict = field(default_factory=dict)
    snapshots: list = field(default_factory=list)
    seconds: float = 0.0
    diverged: dict = field(default_factory=dict)
    resumed_from: int = 0
    first_seed: int = 0
    engine: str = "eager"
    compile_seconds: float = 0.0

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

    @renamed(generator="rng")
    def latent(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """Latent codes ``z ~ N(0, I)`` of shape ``(seeds, n, z_dim)``, on ``rng``'s device (default the CPU).

        ``rng`` is the random generator (``generator=`` is accepted too).
        """
        positive_int("n", n)
        dev = rng.device if rng is not None else torch.device("cpu")
        return torch.randn(self.n_seeds, n, self.config.z_dim, generator=rng, device=dev)

    def generate(self, z) -> torch.Tensor:
        """``G(z)`` for CPU codes ``z`` of shape ``(n, z_dim)`` (every seed) or ``(seeds, n, z_dim)``.

        The generator runs in evaluation mode, so a batch-normalised generator uses its running
        averages and each sample is independent of the others drawn with it, as in the PacGAN
        code's evaluation. Returns a CPU tensor ``(seeds, n, d)``; unpacked: packing only changes
        what the discriminator sees.
        """
        z = as_input("z", z, self.config.z_dim, self.n_seeds)
        return self._evaluate("generator", z)

    @renamed(generator="rng")
    def sample(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated samples per seed: a CPU tensor of shape ``(seeds, n, d)``.

        The codes come from ``rng``, the random generator (a ``torch.Generator`` on any device;
        default torch's global CPU generator; ``generator=`` is accepted too), and go through
        :meth:`generate`.
        """
        return self.generate(self.latent(n, rng).cpu())

    def at(self, index: int) -> "Run":
        """A copy of this run whose networks hold snapshot ``index``'s weights."""
        if not self.snapshots:
            raise ValueError("this run kept no snapshots: pass snapshot_every to fit()")
        if not isinstance(index, int) or not -len(self.snapshots) <= index < len(self.snapshots):
            raise ValueError(f"index must be an int in [-{len(self.snapshots)}, {len(self.snapshots)}) "
                             f"(this run kept {len(self.snapshots)} snapshots), got {index!r}")
        snap = self.snapshots[index]
        g = copy.deepcopy(self._net("generator"))
        g.load_state_dict(snap.generator)
        d = None  # an MMD run without a feature map has no discriminator
        if snap.discriminator is not None:
            d = copy.deepcopy(self._net("discriminator"))
            d.load_state_dict(snap.discriminator)
        return Run(self.config, self.data, g, d, self.history, [], self.seconds, dict(self.diverged),
                   self.resumed_from, self.first_seed, self.engine, self.compile_seconds)



@dataclass
class CriticRun(SeedBatchedEvaluation):
    """The result of :func:`gan_lab.train.fit_discriminator`: a trained seed-batched discriminator.

    Evaluate it with ``logits``, ``probabilities`` and ``weights`` (CPU in, CPU out; see
    :class:`SeedBatchedEvaluation`).

    Attributes:
        config: the :class:`gan_lab.config.TrainConfig` used (generator fields unused).
        discriminator: the seed-batched discriminator (critic), on the run's device.
        history: ``d_loss`` (without penalty), ``penalty``, ``real_logit``, ``fake_logit``,
            each ``(steps, seeds)``.
        seconds: training wall time.
        snapshots: the critic's weights every ``config.snapshot_every`` steps (step 0 included),
            as :class:`Snapshot` objects whose ``generator`` is ``None``.
        engine, compile_seconds: as for :class:`Run`.
    """

    config: object
    discriminator: torch.nn.Module
    history: dict
    seconds: float
    snapshots: list = field(default_factory=list)
    engine: str = "eager"
    compile_seconds: float = 0.0

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
