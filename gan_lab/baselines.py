"""Plain training loops, the references that :mod:`gan_lab.bench` measures the engine against.

Each loop here trains the same networks with the same losses and optimisers as the engine, but
written the obvious way, as a reader would after the pytorch/examples GAN scripts: one
``nn.Module`` per network, ``F.binary_cross_entropy_with_logits`` for the non-saturating loss,
``zero_grad`` / ``backward`` / ``step`` per network, the global random stream, and a
``loss.item()`` per step for the usual logging (which forces a host synchronisation on a GPU).
None of them batches seeds: ``K`` seeds are ``K`` calls. They are not used by the chapters.

* :func:`plain_mlp_gan` -- the 2-D MLP GAN (``nn.Sequential`` of ``nn.Linear`` + ``LeakyReLU(0.2)``).
* :func:`plain_pacgan` -- PacGAN's 2-D networks (batch-norm generator, maxout discriminator),
  simultaneous updates as in the PacGAN code.
* :func:`plain_dcgan` -- the MNIST DCGAN step over a ``torch.utils.data.DataLoader``.
* :func:`jax_mlp_gan` -- the optional JAX + optax peer (jitted, optionally ``vmap`` over seeds),
  only where ``jax`` and ``optax`` are installed (never a dependency of gan_lab).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from . import data as data_mod


@dataclass
class PlainRun:
    """What a plain loop returns: the networks, the per-step losses (Python floats) and its wall time."""

    generator: nn.Module
    discriminator: nn.Module
    d_loss: list = field(default_factory=list)
    g_loss: list = field(default_factory=list)
    seconds: float = 0.0


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (``None``: unchanged), then restore the old count.

    :func:`gan_lab.train.fit` trains with ``TrainConfig.cpu_threads`` threads (1 by default); the
    benchmark runs the plain loops under the same count, so the comparison is like for like.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(checks.positive_int("cpu_threads", n))
    try:
        yield
    finally:
        torch.set_num_threads(old)

def plain_step(run: "PlainRun", opt_g, opt_d, x: torch.Tensor, z_dim: int) -> None:
    """One D step, then one G step on fresh noise, written the usual way (the non-saturating loss
    through ``F.binary_cross_entropy_with_logits``); both losses are logged with ``.item()``."""
    G, D, n, dev = run.generator, run.discriminator, len(x), x.device
    fake = G(torch.randn(n, z_dim, device=dev))
    real_logits, fake_logits = D(x), D(fake.detach())
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    logits = D(G(torch.randn(n, z_dim, device=dev)))
    g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    run.d_loss.append(d_loss.item())
    run.g_loss.append(g_loss.item())


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """``nn.Linear`` layers of widths ``sizes`` with ``LeakyReLU(0.2)`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def sync(dev: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a wall-clock reading covers it; no-op on the CPU."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def plain_mlp_gan(steps: int, *, seed: int = 0, batch_size: int = 256, hidden: Sequence[int] = (64, 64),
                  z_dim: int = 2, lr: float = 1e-3, betas=(0.5, 0.999), dist=None,
                  device: str = "cpu") -> PlainRun:
    """The 2-D GAN written the obvious way (pytorch/examples style); the reference for ``fit``.

    ``G = nn.Sequential(Linear(z_dim, 64), LeakyReLU(0.2), Linear(64, 64), LeakyReLU(0.2), Linear(64, 2))``
    and ``D`` likewise to one logit; Adam(``lr``, ``betas``) for each. Every step draws a fresh batch
    of ``batch_size`` points from ``dist`` (default :func:`gan_lab.data.ring`), takes one D step
    (``BCE(D(x), 1) + BCE(D(G(z).detach()), 0)``), then one G step on fresh noise
    (``BCE(D(G(z)), 1)``, the non-saturating loss), and logs both losses with ``.item()``.

    Returns:
        A :class:`PlainRun`; ``seconds`` covers the loop only (network construction excluded).
    """
    steps, batch_size, z_dim = (checks.positive_int(n, v) for n, v in
                                (("steps", steps), ("batch_size", batch_size), ("z_dim", z_dim)))
    dist = data_mod.ring() if dist is None else dist
    dev = torch.device(device)
    torch.manual_seed(seed)
    G = mlp((z_dim, *hidden, dist.dim)).to(dev)
    D = mlp((dist.dim, *hidden, 1)).to(dev)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    run = PlainRun(G, D)
    start = time.perf_counter()
    for _ in range(steps):
        x = dist.sample(batch_size).to(dev)
        plain_step(run, opt_g, opt_d, x, z_dim)
    sync(dev)
    run.seconds = time.perf_counter() - start
    return run


class Maxout(nn.Module):
    """A maxout layer written plainly: ``nn.Linear(a, b * pieces)``, then the max over each unit's pieces."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 5):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features * pieces)
        self.out_features, self.pieces = out_features, pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.out_features, self.pieces).max(dim=-1).values


def pacgan_networks(z_dim: int = 2, x_dim: int = 2, g_hidden=(400,) * 4, d_hidden=(200,) * 3, pieces: int = 5,
                    pack: int = 1) -> tuple[nn.Sequential, nn.Sequential]:
    """PacGAN's 2-D networks as plain modules (weights ``N(0, 0.02^2)``, biases 0, as in the PacGAN code).

    Generator: ``Linear + BatchNorm1d(momentum=0.05) + ReLU`` per hidden layer, then ``Linear`` to
    ``x_dim``. Discriminator: :class:`Maxout` layers, then ``Linear`` to one logit, on packs of
    ``pack`` points (input width ``pack * x_dim``).
    """
    g_layers: list[nn.Module] = []
    for a, b in zip((z_dim, *g_hidden[:-1]), g_hidden):
        g_layers += [nn.Linear(a, b), nn.BatchNorm1d(b, momentum=0.05), nn.ReLU()]
    G = nn.Sequential(*g_layers, nn.Linear(g_hidden[-1], x_dim))
    sizes = (pack * x_dim, *d_hidden)
    D = nn.Sequential(*[Maxout(a, b, pieces) for a, b in zip(sizes[:-1], sizes[1:])],
                      nn.Linear(d_hidden[-1], 1))
    for m in (*G.modules(), *D.modules()):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return G, D


def plain_pacgan(steps: int, *, seed: int = 0, batch_size: int = 100, pack: int = 1, z_dim: int = 2,
                 lr: float = 1e-4, betas=(0.8, 0.999), dist=None, device: str = "cpu") -> PlainRun:
    """PacGAN's 2-D training step written plainly; the reference for ``fit(**PACGAN_ARCH, **PACGAN_TRAIN)``.

    The networks of :func:`pacgan_networks`, Adam(1e-4, betas (0.8, 0.999)), ``batch_size`` packs of
    ``pack`` points per step, the non-saturating loss, and *simultaneous* updates as in the PacGAN
    code: one forward pass, each network's gradient of its own loss (``torch.autograd.grad``), then
    both optimisers step. Both losses are logged with ``.item()`` each step.
    """
    steps, batch_size, pack = (checks.positive_int(n, v) for n, v in
                               (("steps", steps), ("batch_size", batch_size), ("pack", pack)))
    dist = data_mod.ring() if dist is None else dist
    dev = torch.device(device)
    torch.manual_seed(seed)
    G, D = (net.to(dev) for net in pacgan_networks(z_dim, dist.dim, pack=pack))
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    run = PlainRun(G, D)
    start = time.perf_counter()
    for _ in range(steps):
        x = dist.sample(batch_size * pack).to(dev).view(batch_size, -1)  # packs of m points
        fake = G(torch.randn(batch_size * pack, z_dim, device=dev)).view(batch_size, -1)
        real_logits, fake_logits = D(x), D(fake)
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        d_grads = torch.autograd.grad(d_loss, list(D.parameters()), retain_graph=True)
        g_grads = torch.autograd.grad(g_loss, list(G.parameters()))
        for p, g in zip([*D.parameters(), *G.parameters()], [*d_grads, *g_grads]):
            p.grad = g
        opt_d.step()
        opt_g.step()
        run.d_loss.append(d_loss.item())
        run.g_loss.append(g_loss.item())
    sync(dev)
    run.seconds = time.perf_counter() - start
    return run


def plain_dcgan(images: torch.Tensor, steps: int, *, seed: int = 0, batch_size: int = 128, width: int = 32,
                z_dim: int = 64, lr: float = 2e-4, betas=(0.5, 0.999), device: str = "cpu") -> PlainRun:
    """The MNIST DCGAN loop written the usual way; the reference for :func:`gan_lab.images.fit_images`.

    The networks of :func:`gan_lab.images.build_networks` (same widths and initialisation), a
    :class:`torch.utils.data.DataLoader` over the whole data set converted to float32 in
    ``[-1, 1]`` on the host, shuffled every epoch, each batch copied to the device, the default
    memory format, no autocast, no moving average; one D step then one G step on fresh noise
    (non-saturating loss via ``F.binary_cross_entropy_with_logits``), losses logged with ``.item()``.

    Args:
        images: uint8 tensor ``(N, 28, 28)`` or ``(N, 1, 28, 28)`` with ``N >= batch_size``.
    """
    from . import images as images_mod  # imported here: the 2-D loops do not need the image module

    steps, batch_size = checks.positive_int("steps", steps), checks.positive_int("batch_size", batch_size)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = getattr(images, "dtype", type(images).__name__)
        raise TypeError(f"images must be a uint8 tensor, got {got}")
    images = images[:, None] if images.ndim == 3 else images
    if images.ndim != 4 or len(images) < batch_size:
        raise ValueError(f"images must be (N, 28, 28) or (N, 1, 28, 28) with N >= batch_size={batch_size}, "
                         f"got {tuple(images.shape)}")
    dev = torch.device(device)
    torch.manual_seed(seed)
    config = images_mod.ImageTrainConfig(batch_size=batch_size, width=width, z_dim=z_dim, seed=seed)
    G, D = (net.to(dev) for net in images_mod.build_networks(config))
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    dataset = torch.utils.data.TensorDataset(data_mod.to_signed_unit(images))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    run = PlainRun(G, D)
    start = time.perf_counter()
    while len(run.g_loss) < steps:
        for (x,) in loader:
            plain_step(run, opt_g, opt_d, x.to(dev), z_dim)
            if len(run.g_loss) == steps:
                break
    sync(dev)
    run.seconds = time.perf_counter() - start
    return run


def jax_available() -> str | None:
    """``None`` where ``jax`` and ``optax`` import, else the reason (a sentence) they do not."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as err:
        return f"the JAX peer needs jax and optax, which are not installed here ({err})"
    return None


def jax_mlp_gan(steps: int, *, seeds: int = 1, seed: int = 0, batch_size: int = 256, hidden=(64, 64),
                z_dim: int = 2, lr: float = 1e-3, betas=(0.5, 0.999), n_modes: int = 8, radius: float = 1.0,
                std: float = 0.01) -> dict:
    """The same 2-D GAN step in JAX + optax, jitted; ``seeds > 1`` trains that many under ``jax.vmap``.

    As pyprobml writes its toy GANs: parameters as lists of ``(W, b)``, leaky ReLU (0.2), the
    non-saturating loss via ``optax.sigmoid_binary_cross_entropy``, ``optax.adam`` for each network,
    one D step then one G step on fresh noise, the ring sampled inside the step, the whole step one
    ``jax.jit``. The first call (compilation) is timed apart from the ``steps`` that follow.

    Returns:
        ``{"compile_seconds", "seconds", "steps", "seeds", "seed_steps_per_second", "d_loss", "g_loss"}``
        (the last two: the final step's mean losses). Raises ``ImportError`` without jax/optax.
    """
    import jax
    import jax.numpy as jnp
    import optax

    steps, seeds = checks.positive_int("steps", steps), checks.positive_int("seeds", seeds)
    centres = radius * jnp.stack([jnp.cos(2 * jnp.pi * jnp.arange(n_modes) / n_modes),
                                  jnp.sin(2 * jnp.pi * jnp.arange(n_modes) / n_modes)], axis=1)

    def init(key, sizes):
        params = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            key, kw, kb = jax.random.split(key, 3)
            bound = 1 / a ** 0.5  # as nn.Linear
            params.append((jax.random.uniform(kw, (a, b), minval=-bound, maxval=bound),
                           jax.random.uniform(kb, (b,), minval=-bound, maxval=bound)))
        return params

    def forward(params, x):
        for w, b in params[:-1]:
            x = jax.nn.leaky_relu(x @ w + b, 0.2)
        w, b = params[-1]
        return x @ w + b

    opt_g, opt_d = optax.adam(lr, b1=betas[0], b2=betas[1]), optax.adam(lr, b1=betas[0], b2=betas[1])

    def d_loss_fn(d_params, g_params, x, z):
        real, fake = forward(d_params, x), forward(d_params, jax.lax.stop_gradient(forward(g_params, z)))
        return (optax.sigmoid_binary_cross_entropy(real, jnp.ones_like(real)).mean()
                + optax.sigmoid_binary_cross_entropy(fake, jnp.zeros_like(fake)).mean())

    def g_loss_fn(g_params, d_params, z):
        logits = forward(d_params, forward(g_params, z))
        return optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits)).mean()

    def step(state, _):
        g_params, d_params, g_state, d_state, key = state
        key, k_idx, k_noise, k_z1, k_z2 = jax.random.split(key, 5)
        x = centres[jax.random.randint(k_idx, (batch_size,), 0, n_modes)]
        x = x + std * jax.random.normal(k_noise, (batch_size, 2))
        d_loss, d_grads = jax.value_and_grad(d_loss_fn)(d_params, g_params, x,
                                                        jax.random.normal(k_z1, (batch_size, z_dim)))
        updates, d_state = opt_d.update(d_grads, d_state, d_params)
        d_params = optax.apply_updates(d_params, updates)
        z = jax.random.normal(k_z2, (batch_size, z_dim))  # fresh noise for the G step
        g_loss, g_grads = jax.value_and_grad(g_loss_fn)(g_params, d_params, z)
        updates, g_state = opt_g.update(g_grads, g_state, g_params)
        g_params = optax.apply_updates(g_params, updates)
        return (g_params, d_params, g_state, d_state, key), (d_loss, g_loss)

    def start_state(key):
        kg, kd, kz = jax.random.split(key, 3)
        g_params, d_params = init(kg, (z_dim, *hidden, 2)), init(kd, (2, *hidden, 1))
        return g_params, d_params, opt_g.init(g_params), opt_d.init(d_params), kz

    one = jax.jit(jax.vmap(step) if seeds > 1 else step)
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    state = jax.vmap(start_state)(keys) if seeds > 1 else start_state(keys[0])
    t0 = time.perf_counter()
    state, losses = one(state, None)
    jax.block_until_ready(losses)
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, losses = one(state, None)
    jax.block_until_ready(losses)
    seconds = time.perf_counter() - t0
    return {"compile_seconds": compile_seconds, "seconds": seconds, "steps": steps, "seeds": seeds,
            "seed_steps_per_second": steps * seeds / seconds,
            "d_loss": float(jnp.mean(losses[0])), "g_loss": float(jnp.mean(losses[1]))}
