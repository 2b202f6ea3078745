"""Training generators on an MMD (generative moment matching and MMD GANs), many seeds at once."""

from __future__ import annotations

import os

import torch

from . import checks, loop, mmd, profile
from . import distributions as dist_mod
from . import step as step_mod
from .config import TrainConfig, first_seed, optimizers, resolve, snapshot
from .nets import SeedMLP, build_generator
from .runs import Run, Snapshot


def fit_mmd(data, config: TrainConfig | None = None, *, bandwidths=(0.05, 0.1, 0.2, 0.5, 1.0),
            features: int | None = None, progress: bool | None = None, checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int = 500, resume: bool = True, **overrides) -> Run:
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
    median heuristic (:func:`gan_lab.mmd.median_heuristic`, detached) on the pooled real and
    generated features of that seed's first critic batch, measured once per generator step
    and used by that step's critic and generator updates. The learned kernel is then
    invariant to the features' overall scale only approximately: the scale is frozen while the
    critic's updates change the features (their gradients do not see the bandwidth follow a
    rescaling, and the generator step uses the scale measured before those updates); the
    clipping bounds the family of feature maps without making the kernel constant. The
    fixed-kernel path uses ``bandwidths`` as absolute.

    The loop, snapshots, checkpoints, divergence handling and ``g_arch`` work as in
    :func:`gan_lab.train.fit`. What has no meaning for an MMD is refused: a ``loss`` other than
    the default, a ``penalty``, ``pack > 1``, ``update="simultaneous"``, ``reuse_fake``,
    ``d_arch`` other than ``"mlp"``, ``compile=True`` (the MMD step runs eagerly) and, without
    a feature map, ``n_critic > 1`` or ``clip``.

    Args:
        data: anything :func:`gan_lab.train.fit` accepts.
        config: a :class:`gan_lab.config.TrainConfig`; keyword overrides replace fields.
        bandwidths: the Gaussian kernel's bandwidths, summed: absolute with ``features=None``,
            multiples of the features' median pairwise distance with a feature map.
        features: ``None`` for a fixed kernel on the data, or the feature map's output size.
        progress: show a progress bar.
        checkpoint, checkpoint_every, resume: as for :func:`gan_lab.train.fit`.

    Returns:
        A :class:`gan_lab.runs.Run` whose ``history`` has ``mmd2`` (the generator's loss) and ``g_grad_norm``
        per step and seed, plus ``critic_mmd2`` with a feature map; ``run.discriminator`` is the
        feature map or ``None``.
    """
    if features is not None and "clip" not in overrides and (config is None or config.clip is None):
        overrides["clip"] = 0.01
    config = resolve(config, overrides)
    checks.positive_int("checkpoint_every", checkpoint_every)
    _check_mmd_config(config, features)
    mmd.gaussian_kernel(torch.zeros(1, 1), torch.zeros(1, 1), bandwidths)  # validates bandwidths
    dist = dist_mod.as_distribution(data)
    dev = profile.device(config.device)
    S, first = config.seeds, first_seed(config)
    seeds = [first + i for i in range(S)]
    G = build_generator(config, dist.dim, [2 * s for s in seeds]).to(dev)
    nets = {"generator": G}
    if features is not None:
        nets["discriminator"] = SeedMLP(dist.dim, features, config.d_hidden, [2 * s + 1 for s in seeds],
                                        config.activation).to(dev)
    F = nets.get("discriminator")
    opts = optimizers(config, dev, **nets)
    rng = torch.Generator(dev).manual_seed(first)
    iteration = _mmd_iteration(config, dist, G, F, opts, rng, bandwidths)
    names = ("mmd2", "g_grad_norm") + (("critic_mmd2",) if F is not None else ())
    state = loop.State(nets, opts, rng, loop.History(names, config.steps, S, dev, watched=("mmd2",)), [], Snapshot)
    seconds = loop.run(iteration, state, config, steps=config.steps, n_seeds=S, progress=progress,
                       label=f"mmd x{S} seeds", snapshot=lambda t: snapshot(t, G, F),
                       snapshot_every=config.snapshot_every, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, resume=resume, threads=config.cpu_threads)
    return Run(config, dist, G, F, state.history.numpy(), state.snapshots, seconds, dict(state.diverged),
               state.resumed_from, first)


def _check_mmd_config(config: TrainConfig, features) -> None:
    default = TrainConfig()
    refused = {"loss": config.loss != default.loss, "penalty": config.penalty is not None,
               "pack": config.pack != 1, "update": config.update != "alternating",
               "reuse_fake": config.reuse_fake, "d_arch": config.d_arch != "mlp", "compile": config.compile is True,
               "spectral_norm": config.spectral_norm}
    if features is None:  # no feature map: nothing for critic steps or clipping to act on
        refused.update(n_critic=config.n_critic != 1, clip=config.clip is not None)
    bad = [k for k, v in refused.items() if v]
    if bad:
        raise ValueError(f"fit_mmd does not use {bad} (its loss is the MMD, its critic a clipped feature map "
                         "if features is set, its step eager): leave them at their defaults")
    if features is not None:
        checks.positive_int("features", features)


def _mmd_iteration(config, dist, G, F, opts, rng, bandwidths):
    """One MMD iteration: ``n_critic`` feature-map steps (with a feature map), one generator step."""
    S, B, dev = config.seeds, config.batch_size, rng.device
    opt_g = opts["generator"]
    rel_bw = torch.as_tensor(bandwidths, dtype=torch.float32, device=dev).reshape(-1)  # (k,)
    f_params = list(F.parameters()) if F is not None else []
    g_params = list(G.parameters())

    def feature_mmd2(x_real, x_fake, scale=None):  # (S,) MMD^2 of the features, and the scale (S, 1) used
        f_real, f_fake = F(x_real), F(x_fake)  # (S, B, h)
        if scale is None:  # median heuristic on the pooled features, detached
            scale = mmd.median_heuristic(f_real, f_fake).clamp_min(1e-12)
        return mmd.mmd2(f_real, f_fake, scale * rel_bw.to(scale)), scale  # bandwidths (S, k)

    def iteration(i: int) -> torch.Tensor:
        rows = []
        if F is not None:
            scale = None  # the features' scale: measured on this step's first critic batch
            for _ in range(config.n_critic):  # critic: maximise MMD^2 of the features
                x_real = dist.sample((S, B), rng)
                with torch.no_grad():
                    x_fake = G(torch.randn(S, B, config.z_dim, generator=rng, device=dev))
                critic_mmd2, scale = feature_mmd2(x_real, x_fake, scale)  # (S,), (S, 1)
                opts["discriminator"].zero_grad(set_to_none=True)
                (-critic_mmd2).sum().backward(inputs=f_params)
                opts["discriminator"].step()
                step_mod.clip_(f_params, config.clip)
            rows = [critic_mmd2.detach()]
        x_real = dist.sample((S, B), rng)
        x_fake = G(torch.randn(S, B, config.z_dim, generator=rng, device=dev))
        mmd2 = mmd.mmd2(x_real, x_fake, bandwidths) if F is None else feature_mmd2(x_real, x_fake, scale)[0]
        opt_g.zero_grad(set_to_none=True)
        mmd2.sum().backward(inputs=g_params)  # the generator minimises
        norm = step_mod.grad_norm(g_params, True)
        opt_g.step()
        return torch.stack([mmd2.detach(), norm, *rows])

    return iteration
