"""Training 2-D GANs, many seeds at once: the config and the fits.

One call to :func:`fit` trains ``seeds`` independent GANs together: every network holds all
seeds' parameters (see :mod:`gan_lab.nets`), each seed's loss is the mean over its own batch,
and the seeds' losses are *summed* before ``backward`` so every seed receives exactly the
gradient it would get alone. Adam and RMSProp act element-wise, so the update of each seed is
the one a separate run would make.

Each of the ``steps`` iterations does ``n_critic`` discriminator steps, then one generator
step::

    D step: minimise L_D = discriminator_loss(loss, D(x), D(G(z)))   # G frozen
    G step: minimise L_G = generator_loss(loss, D(G(z)))              # D frozen

:func:`fit_discriminator` trains only the critic against a fixed distribution and
:func:`fit_mmd` trains generators on an MMD. All three build their networks from the
registries of :mod:`gan_lab.nets`, take their steps from :mod:`gan_lab.step` (or, compiled,
:mod:`gan_lab.compiled`) and run in the one loop of :mod:`gan_lab.loop`, so every feature
(``n_critic``, clipping, penalties, packing, snapshots, checkpoints, divergence handling,
progress) works the same in each, or is refused with an error saying why.
"""

from __future__ import annotations

import os
import torch

from . import checkpoint as checkpoint_file
from . import checks, compiled, loop, profile
from . import distributions as dist_mod
from . import step as step_mod
from .config import (AUTO_COMPILE_MAX_SEEDS, AUTO_COMPILE_STEPS, CHECK_EVERY,  # noqa: F401
                     D_ARCHS, G_ARCHS, HISTORY, UPDATES, TrainConfig, build_critic, first_seed, optimizers, resolve, snapshot, step_spec, use_compiled)
from .loop import TrainingDiverged  # noqa: F401  (re-exported: part of train's API)
from .nets import build_discriminator, build_generator  # noqa: F401
from .runs import CriticRun, Run, SeedBatchedEvaluation, Snapshot  # noqa: F401
from .step import OPTIMIZERS, PENALTIES, pack_samples  # noqa: F401
from .train_mmd import fit_mmd  # noqa: F401


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
            run. A checkpoint from another device type (CPU against CUDA), another base seed,
            another engine (eager against compiled) or another format version is refused at
            once, with an error naming both.
        checkpoint_every: steps between checkpoints.
        resume: continue from an existing ``checkpoint`` (its config must equal this one);
            ``False`` starts afresh and overwrites it.

    Returns:
        A :class:`Run`; ``run.sample(n)`` is ``(seeds, n, d)`` and ``run.history`` holds
        the losses per step and seed (see :data:`HISTORY`).

    Raises:
        TrainingDiverged: a loss became NaN or infinite in a single-seed run (the message names
            the step, the loss and the last finite values), or in every seed of a batched run.
            In a batched run with some healthy seeds, the diverged ones are listed in
            ``run.diverged`` and a ``RuntimeWarning`` names them; the others train on unaffected.
    """
    config = resolve(config, overrides)
    checks.positive_int("checkpoint_every", checkpoint_every)
    dist = dist_mod.as_distribution(data)
    dev = profile.device(config.device)
    S, B, m, first = config.seeds, config.batch_size, config.pack, first_seed(config)
    seeds = [first + i for i in range(S)]
    G = build_generator(config, dist.dim, [2 * s for s in seeds]).to(dev)
    D = build_critic(config, dist.dim * m, [2 * s + 1 for s in seeds]).to(dev)  # packs of m points
    opts = optimizers(config, dev, generator=G, discriminator=D)
    rng = torch.Generator(dev).manual_seed(first)  # data and latent noise
    spec = step_spec(config)
    engine = "compiled" if use_compiled(config, dev) else "eager"

    def draw_real():
        return pack_samples(dist.sample((S, B * m), rng), m)  # (S, B, m * d)

    def draw_z():
        return torch.randn(S, B * m, config.z_dim, generator=rng, device=dev)

    if engine == "compiled":
        iteration, comp = _compiled_iteration(config, spec, G, D, opts, rng, draw_real, draw_z)
    else:
        iteration, comp = _eager_iteration(config, spec, G, D, opts, rng, draw_real, draw_z), None
    state = loop.State({"generator": G, "discriminator": D}, opts, rng,
                       loop.History(HISTORY, config.steps, S, dev, watched=("d_loss", "penalty", "g_loss")),
                       [], Snapshot)
    seconds = loop.run(iteration, state, config, steps=config.steps, n_seeds=S, progress=progress,
                       label=f"{config.loss} x{S} seeds", snapshot=lambda t: snapshot(t, G, D),
                       snapshot_every=config.snapshot_every, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, resume=resume, threads=config.cpu_threads,
                       engine=engine, check_every=CHECK_EVERY if dev.type == "cpu" else None)
    return Run(config, dist, G, D, state.history.numpy(), state.snapshots, seconds, dict(state.diverged),
               state.resumed_from, first, *_engine_report(comp))


def _engine_report(comp) -> tuple[str, float]:
    """The engine that ran (``"compiled"``, or ``"eager"`` also after a failed compile) and the compile time."""
    if comp is None:
        return "eager", 0.0
    return ("eager" if comp.eager else "compiled"), comp.seconds


def _eager_iteration(config, spec, G, D, opts, rng, draw_real, draw_z):
    """One iteration of the eager step (:mod:`gan_lab.step`): ``(6, S)`` stats."""
    opt_g, opt_d = opts["generator"], opts["discriminator"]
    reuse = config.reuse_fake

    def iteration(i: int) -> torch.Tensor:
        if config.update == "simultaneous":
            return step_mod.simultaneous_step(
                G, D, opt_g, opt_d, spec, draw_real(), draw_z(), rng)
        for k in range(config.n_critic):  # D steps: minimise L_D, G frozen
            x_real, z = draw_real(), draw_z()
            with torch.set_grad_enabled(reuse and k == config.n_critic - 1):
                x_fake = G(z)
            packed = pack_samples(x_fake.detach(), spec.pack)
            d_stats = step_mod.discriminator_step(
                D, opt_d, spec, x_real, packed, rng)
        # G step: minimise L_G through the updated, frozen D
        g_stats = step_mod.generator_step(
            G, D, opt_g, spec, None if reuse else draw_z(),
            x_fake=x_fake if reuse else None)
        d_terms, logits = d_stats[:2], d_stats[2:]  # loss, penalty; logits
        return torch.cat([d_terms, g_stats[:1], logits, g_stats[1:]])

    return iteration


def _compiled_iteration(config, spec, G, D, opts, rng, draw_real, draw_z, fixed=None):
    """One iteration of the compiled step (:mod:`gan_lab.compiled`), fed the eager step's random draws."""
    if config.reuse_fake:
        raise ValueError("reuse_fake runs on the eager step only: pass compile=False")
    S, B, dev = config.seeds, config.batch_size, rng.device
    opt_g, opt_d = opts.get("generator"), opts["discriminator"]
    comp = compiled.Compiled(lambda: compiled.make_iteration(spec, G, D, opt_g, opt_d, n_critic=config.n_critic,
                                                             update=config.update), dev)
    no_eps = torch.zeros(config.n_critic, 1, 1, 1, device=dev)

    def iteration(i: int) -> torch.Tensor:
        xs, zs, eps = [], [], []
        for _ in range(config.n_critic):  # the eager step's order: data, codes, interpolation weights
            xs.append(draw_real())
            zs.append(draw_z() if fixed is None else fixed())
            if spec.penalty == "wgan-gp":
                eps.append(torch.rand(S, B, 1, generator=rng, device=dev))
        simultaneous = config.update == "simultaneous"
        z_g = zs[0] if simultaneous else (draw_z() if fixed is None else no_eps)
        return comp(torch.stack(xs), torch.stack(zs), torch.stack(eps) if eps else no_eps, z_g)

    return iteration, comp


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and verify a checkpoint written by a fit (:mod:`gan_lab.checkpoint`).

    Returns its state (``format``, ``device_type``, ``torch``, ``config``, ``engine``, ``step``,
    ``modules``, ``optimizers``, ...) with the log's ``history`` (name -> tensor
    ``(step, seeds)``) and ``snapshots`` assembled; loads with ``weights_only=True``.
    """
    state, chunks = checkpoint_file.load(path)
    history = {k: torch.cat([c["history"][k] for c in chunks]) for k in (chunks[0]["history"] if chunks else ())}
    return {**state, "history": history, "snapshots": [s for c in chunks for s in c["snapshots"]]}


def fit_discriminator(p_data, p_model, config: TrainConfig | None = None, *, progress: bool | None = None,
                      checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 500,
                      resume: bool = True, **overrides) -> CriticRun:
    """Train only the discriminator, against a *fixed* model distribution (the game's inner max).

    Each of ``steps`` iterations does ``n_critic`` D steps of :func:`fit` with ``p_model``'s
    samples in place of ``G(z)``. Used to watch a discriminator approach its optimum ``D*``.
    Every discriminator feature of :func:`fit` applies (``loss``, ``d_arch``, ``d_hidden``,
    ``pack``, ``n_critic``, ``clip``, ``penalty``, ``optimizer``, ``lr_d``, ``betas``,
    ``snapshot_every``, ``compile``, checkpoints); the generator's fields do not, and
    ``update="simultaneous"`` or ``reuse_fake`` (which need a generator step) are refused.

    Args:
        p_data: the data distribution (anything :func:`fit` accepts).
        p_model: the fixed model distribution, same dimension.
        config: a :class:`TrainConfig`; keyword overrides replace fields.
        progress: show a progress bar.
        checkpoint, checkpoint_every, resume: as for :func:`fit`.
    """
    config = resolve(config, overrides)
    checks.positive_int("checkpoint_every", checkpoint_every)
    if config.update != "alternating" or config.reuse_fake:
        raise ValueError("fit_discriminator has no generator step: update must be 'alternating' and "
                         f"reuse_fake False, got update={config.update!r}, reuse_fake={config.reuse_fake!r}")
    real, fake = dist_mod.as_distribution(p_data, None), dist_mod.as_distribution(p_model, None)
    if real.dim != fake.dim:
        raise ValueError(f"p_data and p_model must have the same dimension, got {real.dim} and {fake.dim}")
    dev = profile.device(config.device)
    S, B, m, first = config.seeds, config.batch_size, config.pack, first_seed(config)
    D = build_critic(config, real.dim * m, [2 * (first + i) + 1 for i in range(S)]).to(dev)
    opts = optimizers(config, dev, discriminator=D)
    rng = torch.Generator(dev).manual_seed(first)
    spec = step_spec(config)
    engine = "compiled" if use_compiled(config, dev) else "eager"

    def draw_real():
        return pack_samples(real.sample((S, B * m), rng), m)

    def draw_fake():
        return pack_samples(fake.sample((S, B * m), rng), m)

    if engine == "compiled":
        iteration, comp = _compiled_iteration(config, spec, None, D, opts, rng, draw_real, None, fixed=draw_fake)
    else:
        comp = None

        def iteration(i: int) -> torch.Tensor:
            for _ in range(config.n_critic):
                x_real = draw_real()
                stats = step_mod.discriminator_step(D, opts["discriminator"], spec, x_real, draw_fake(), rng)
            return stats
    names = ("d_loss", "penalty", "real_logit", "fake_logit")
    keep = [HISTORY.index(n) for n in names]
    state = loop.State({"discriminator": D}, opts, rng, loop.History(names, config.steps, S, dev,
                                                                      watched=("d_loss", "penalty")), [], Snapshot)
    step_fn = iteration if engine == "eager" else (lambda i: iteration(i)[keep])
    seconds = loop.run(step_fn, state, config, steps=config.steps, n_seeds=S, progress=progress,
                       label=f"D only ({config.loss})", snapshot=lambda t: snapshot(t, None, D),
                       snapshot_every=config.snapshot_every, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, resume=resume, threads=config.cpu_threads, engine=engine)
    return CriticRun(config, D, state.history.numpy(), seconds, state.snapshots, *_engine_report(comp))


