"""Figures: GAN Lab's visual layers as a Python API, and training animations.

The layers, each drawn on a matplotlib ``Axes`` for one seed of a seed-batched run:

* :func:`plot_discriminator` - the discriminator's output over the plane as a heat map;
* :func:`plot_samples` - real and generated samples;
* :func:`plot_generator_gradients` - arrows at generated points along the direction in
  which the generator's loss pushes them, :math:`-\\nabla_x L_G`;
* :func:`plot_manifold` - the generator manifold: the image of a regular latent grid.

:func:`plot_gan_lab` stacks them; :func:`animate` replays a run's snapshots as a
``FuncAnimation`` whose ``to_jshtml()`` plays on a static web page. :func:`image_grid`
tiles digits into one picture for ``imshow``.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from . import checks, losses, profile
from .devices import module_device, unwrap

LAYERS = ("discriminator", "manifold", "real", "fake", "gradients")
REAL_COLOR, FAKE_COLOR = "#1b9e77", "#d95f02"


#: The random streams (purposes of :func:`gan_lab.profile.rng`) behind the figures' own samples:
#: the 900s are left to the library, so they follow the base seed without meeting a chapter's.
FIGURE_STREAMS = {"layers": 901, "animation": 902, "seeds_real": 903, "seeds_fake": 904}


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _pick_seed(points, seed: int) -> np.ndarray:
    """``(S, n, 2)`` -> seed's ``(n, 2)``; ``(n, 2)`` passes through."""
    arr = _np(points)
    if arr.ndim == 3:
        if not 0 <= seed < arr.shape[0]:
            raise ValueError(f"seed must be in [0, {arr.shape[0]}), got {seed}")
        arr = arr[seed]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2) or (seeds, n, 2), got {arr.shape}")
    return arr


def _net_device(net: torch.nn.Module) -> torch.device:
    return module_device(net)


def _network(net, which: str) -> torch.nn.Module:
    """The network itself, given the network, its device-check stand-in, or a run holding it."""
    net = unwrap(net)
    if isinstance(net, torch.nn.Module):
        return net
    return unwrap(getattr(net, which))  # a run (Run, CriticRun): its network, unwrapped from the guard


def _eval_one_seed(net: torch.nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    """Run a seed-batched net on ``x`` of shape ``(n, k)`` for one seed only (on the net's device)."""
    n_seeds = net.n_seeds
    if not 0 <= seed < n_seeds:
        raise ValueError(f"seed must be in [0, {n_seeds}), got {seed}")
    x = x.to(_net_device(net))
    batched = x.expand(n_seeds, *x.shape)  # (S, n, k): every slot sees the same points
    return net(batched)[seed]


def data_extent(points, margin: float = 0.25) -> tuple[float, float, float, float]:
    """A square ``(xmin, xmax, ymin, ymax)`` around points ``(n, 2)``, a point cloud, or a mixture's means."""
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if hasattr(points, "means"):
        arr = _np(points.means)
        pad = float(_np(points.stds).max()) * 4
    elif hasattr(points, "points"):  # a PointCloud
        arr, pad = _np(points.points), 0.0
    else:
        arr = _pick_seed(points, 0) if _np(points).ndim == 3 else _np(points)
        pad = 0.0
    if arr.size == 0 or arr.ndim != 2 or arr.shape[-1] != 2:
        raise ValueError(f"points must be a non-empty set of 2-D points (n, 2) or (seeds, n, 2), got shape {arr.shape}")
    lo, hi = arr.min(0) - pad, arr.max(0) + pad
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2
    half = half * (1 + margin) + 1e-6  # relative margin: scales with the data
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _grid(extent, resolution: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    xs = np.linspace(extent[0], extent[1], resolution)
    ys = np.linspace(extent[2], extent[3], resolution)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)  # (R*R, 2)
    return gx, gy, pts


@torch.no_grad()
def plot_discriminator(ax, discriminator, extent, *, seed: int = 0, resolution: int = 80,
                       probability: bool = True, cmap: str = "RdBu_r", alpha: float = 0.8):
    """Heat map of the discriminator over the plane.

    Args:
        ax: matplotlib axes.
        discriminator: a seed-batched discriminator (logits ``(S, n)``), or a run holding one.
        extent: ``(xmin, xmax, ymin, ymax)``.
        seed: which seed to show.
        resolution: grid points per axis.
        probability: show :math:`D(x) = \\sigma(\\text{logit})` on [0, 1]; ``False`` shows the raw
            critic value (for Wasserstein critics).
    """
    gx, gy, pts = _grid(extent, resolution)
    out = _eval_one_seed(_network(discriminator, "discriminator"), pts, seed)
    vals = torch.sigmoid(out) if probability else out
    img = _np(vals).reshape(gx.shape)
    kw = dict(vmin=0.0, vmax=1.0) if probability else {}
    return ax.imshow(img, extent=extent, origin="lower", cmap=cmap, alpha=alpha, aspect="auto", **kw)


def plot_samples(ax, real=None, fake=None, *, seed: int = 0, size: float = 6.0):
    """Scatter real samples (green) and generated samples (orange) of one seed."""
    artists = []
    if real is not None:
        r = _pick_seed(real, seed)
        artists.append(ax.scatter(r[:, 0], r[:, 1], s=size, c=REAL_COLOR, label="real", linewidths=0))
    if fake is not None:
        f = _pick_seed(fake, seed)
        artists.append(ax.scatter(f[:, 0], f[:, 1], s=size, c=FAKE_COLOR, label="generated", linewidths=0))
    return artists


def generator_gradients(generator, discriminator, loss: str, z: torch.Tensor, *, seed: int = 0):
    """Generated points and the direction the generator's loss moves them.

    Returns ``(points, directions)``, each ``(n, 2)`` numpy: ``directions`` is
    :math:`-\\nabla_x L_G` at each generated point ``x = G(z)``, the per-sample force that
    backpropagation passes from the discriminator into the generator. ``generator`` and
    ``discriminator`` are networks or runs holding them; ``z`` is a CPU tensor ``(n, z_dim)``.
    """
    generator, discriminator = _network(generator, "generator"), _network(discriminator, "discriminator")
    z = z.to(_net_device(generator))
    with torch.no_grad():
        x = _eval_one_seed(generator, z, seed)  # (n, 2)
    x = x.clone().requires_grad_(True)
    logits = _eval_one_seed(discriminator, x, seed)  # (n,)
    # sum, not mean, so each arrow is that sample's own gradient
    per_sample = losses.generator_loss(loss, logits[:, None], dim=-1)
    (grad,) = torch.autograd.grad(per_sample.sum(), x)
    return _np(x), _np(-grad)


def plot_generator_gradients(ax, generator, discriminator, loss: str, z: torch.Tensor, *, seed: int = 0,
                             max_arrows: int = 150, color: str = "black"):
    """Arrows along :math:`-\\nabla_x L_G` at generated points (length normalised per frame)."""
    pts, dirs = generator_gradients(generator, discriminator, loss, z[:max_arrows], seed=seed)
    scale = np.abs(dirs).max() + 1e-12
    return ax.quiver(pts[:, 0], pts[:, 1], dirs[:, 0] / scale, dirs[:, 1] / scale, color=color,
                     angles="xy", scale_units="xy", scale=1.0 / (0.08 * _span(ax)), width=0.004, alpha=0.7)


def _span(ax) -> float:
    x0, x1 = ax.get_xlim()
    return abs(x1 - x0)


@torch.no_grad()
def plot_manifold(ax, generator, *, seed: int = 0, z_range: float = 2.5, lines: int = 11,
                  resolution: int = 60, color: str = "0.25", linewidth: float = 0.6):
    """The generator manifold: images of the lines of a regular grid in a 2-D latent space.

    Args:
        ax: matplotlib axes.
        generator: a seed-batched generator with ``z_dim == 2``, or a run holding one.
        z_range: the grid covers ``[-z_range, z_range]^2`` (a few standard deviations of N(0, I)).
        lines: grid lines per axis.
        resolution: points along each line.
    """
    generator = _network(generator, "generator")
    if getattr(generator, "z_dim", 2) != 2:
        raise ValueError(f"plot_manifold needs a 2-D latent space, generator has z_dim={generator.z_dim}")
    ticks = torch.linspace(-z_range, z_range, lines)
    t = torch.linspace(-z_range, z_range, resolution)
    artists = []
    for c in ticks:
        for z in (torch.stack([t, c.expand_as(t)], 1), torch.stack([c.expand_as(t), t], 1)):  # (R, 2)
            x = _np(_eval_one_seed(generator, z, seed))
            artists += ax.plot(x[:, 0], x[:, 1], color=color, lw=linewidth, alpha=0.6)
    return artists


def plot_gan_lab(ax, run, *, seed: int = 0, n: int = 300, extent=None, layers: Sequence[str] = LAYERS,
                 z: torch.Tensor | None = None, real: torch.Tensor | None = None, title: str | None = None):
    """All of GAN Lab's layers for one seed of a :class:`gan_lab.train.Run` on one axes."""
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise ValueError(f"layers must be drawn from {LAYERS}, got unknown {sorted(unknown)}")
    g, d, kind = _network(run, "generator"), _network(run, "discriminator"), run.config.loss
    extent = extent or data_extent(run.data)
    rng = profile.rng(FIGURE_STREAMS["layers"])
    if z is None:
        z = torch.randn(n, g.z_dim, generator=rng)
    if real is None and "real" in layers:
        real = run.data.sample(n, rng)
    ax.clear()
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    if "discriminator" in layers:
        plot_discriminator(ax, d, extent, seed=seed, probability=kind not in ("wasserstein", "hinge"))
    if "manifold" in layers and g.z_dim == 2:
        plot_manifold(ax, g, seed=seed)
    if "real" in layers:
        plot_samples(ax, real=real, seed=seed)
    if "fake" in layers:
        with torch.no_grad():
            fake = _eval_one_seed(g, z, seed)
        plot_samples(ax, fake=fake, seed=seed)
    if "gradients" in layers:
        plot_generator_gradients(ax, g, d, kind, z, seed=seed)
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def animate(run, *, seed: int = 0, n: int = 300, extent=None, layers: Sequence[str] = LAYERS,
            interval: int = 200, figsize=(4.5, 4.5), dpi: int = 72) -> animation.FuncAnimation:
    """Replay a run's snapshots: one frame per snapshot, the same latent codes throughout.

    Display in a notebook with ``IPython.display.HTML(animation_html(anim))``: the frames are
    embedded as images with play controls, so it plays on the static website.
    """
    if len(run.snapshots) < 2:
        raise ValueError("run needs at least 2 snapshots to animate: pass snapshot_every to fit()")
    extent = extent or data_extent(run.data)
    rng = profile.rng(FIGURE_STREAMS["animation"])
    z = torch.randn(n, run.config.z_dim, generator=rng)
    real = run.data.sample(n, rng)
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)

    def frame(i):
        snap = run.at(i)
        plot_gan_lab(ax, snap, seed=seed, extent=extent, layers=layers, z=z, real=real,
                     title=f"{run.config.loss}, step {run.snapshots[i].step}")
        return ()

    anim = animation.FuncAnimation(fig, frame, frames=len(run.snapshots), interval=interval, blit=False)
    plt.close(fig)  # the animation holds the figure; do not also show its last frame
    return anim


# matplotlib's player draws its buttons with Font Awesome 4 icons fetched from a CDN; these
# plain characters need no font download, so the player works offline and on a static site.
_PLAYER_ICONS = {
    "fa fa-minus": "&minus;",
    "fa fa-fast-backward": "&#x23EE;",
    "fa fa-step-backward": "&#x23F4;&#x2759;",
    "fa fa-play fa-flip-horizontal": "&#x23F4;",
    "fa fa-pause": "&#x23F8;",
    "fa fa-play": "&#x23F5;",
    "fa fa-step-forward": "&#x2759;&#x23F5;",
    "fa fa-fast-forward": "&#x23ED;",
    "fa fa-plus": "+",
}


def animation_html(anim: animation.Animation) -> str:
    """The animation as self-contained HTML (frames embedded, play controls, no outside requests).

    ``anim.to_jshtml()`` plus two changes: the Font Awesome stylesheet it links from a CDN is
    dropped and the button icons become plain characters, so the player renders offline.
    Display in a notebook with ``IPython.display.HTML(animation_html(anim))``.
    """
    html = anim.to_jshtml()
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    for cls, text in _PLAYER_ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', f'<span aria-hidden="true">{text}</span>')
    leftover = re.findall(r'<i class="fa[^"]*"></i>|https?://', html)
    if leftover:
        raise RuntimeError(f"matplotlib's animation HTML changed; unexpected pieces left: {leftover[:3]}")
    return html


def plot_history(ax, run, key: str, *, label: str | None = None, smooth: int = 1, color=None):
    """Mean over seeds of ``run.history[key]`` with the min-max band across seeds."""
    if key not in run.history:
        raise ValueError(f"key must be one of {sorted(run.history)}, got {key!r}")
    if not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"smooth must be a positive int, got {smooth!r}")
    h = run.history[key]  # (steps, S)
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        h = np.stack([np.convolve(h[:, s], kernel, mode="valid") for s in range(h.shape[1])], 1)
    steps = np.arange(h.shape[0]) + smooth
    (line,) = ax.plot(steps, h.mean(1), label=label or key, color=color)
    ax.fill_between(steps, h.min(1), h.max(1), color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("generator step")
    return line


def plot_seeds(run, n: int = 500, *, extent=None, ncols: int | None = None, size: float = 3.0):
    """One panel per seed: the data and that seed's generated samples. Returns the figure."""
    S = run.n_seeds
    ncols = ncols or min(S, 4)
    nrows = -(-S // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows), squeeze=False)
    extent = extent or data_extent(run.data)
    real = run.data.sample(n, profile.rng(FIGURE_STREAMS["seeds_real"]))
    fake = run.sample(n, rng=profile.rng(FIGURE_STREAMS["seeds_fake"]))
    for s, ax in enumerate(axes.ravel()):
        if s >= S:
            ax.axis("off")
            continue
        plot_samples(ax, real=real, fake=fake, seed=s, size=size)
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"seed {run.config.seed + s}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_phase_portrait(ax, field, trajectory=None, *, extent=(-2.0, 2.0, -2.0, 2.0), resolution: int = 30,
                        color="C3", density: float = 0.8):
    r"""Streamlines of a planar vector field with, optionally, a trajectory drawn on top.

    Made for the Dirac-GAN (:mod:`gan_lab.dynamics`): the horizontal axis is the generator's
    ``theta``, the vertical one the discriminator's ``psi``.

    Args:
        ax: a matplotlib ``Axes``.
        field: a callable ``(theta, psi) -> (v_theta, v_psi)`` taking and returning arrays of one
            shape, e.g. ``lambda t, p: dynamics.vector_field("gan", t, p)``.
        trajectory: an optional (T + 1, 2) array of ``(theta, psi)``; drawn as a line with its
            start marked by a dot.
        extent: ``(theta_min, theta_max, psi_min, psi_max)`` of the streamline grid.
        resolution: grid points per axis.
        color: colour of the trajectory.
        density: streamline density passed to ``ax.streamplot``.

    Returns:
        The ``ax``, with the axes labelled and limited to ``extent``.
    """
    if not callable(field):
        raise TypeError(f"field must be a callable (theta, psi) -> (v_theta, v_psi), got {type(field).__name__}")
    extent = tuple(float(e) for e in extent)
    if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(f"extent must be (theta_min, theta_max, psi_min, psi_max) with min < max, got {extent}")
    if not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    theta, psi = np.meshgrid(np.linspace(*extent[:2], resolution), np.linspace(*extent[2:], resolution))
    v_theta, v_psi = (np.broadcast_to(np.asarray(v, dtype=float), theta.shape) for v in field(theta, psi))
    ax.streamplot(theta, psi, v_theta, v_psi, color="0.6", linewidth=0.6, density=density, arrowsize=0.7)
    if trajectory is not None:
        path = np.asarray(trajectory, dtype=float)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"trajectory must be an array (T + 1, 2) of (theta, psi), got shape {path.shape}")
        ax.plot(path[:, 0], path[:, 1], color=color, linewidth=1.0)
        ax.plot(path[:1, 0], path[:1, 1], "o", color=color, markersize=3)
    ax.plot([0.0], [0.0], "k*", markersize=6)  # the equilibrium
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel=r"$\theta$", ylabel=r"$\psi$")
    return ax


def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile images into one grey-scale picture for ``imshow``: a float array in ``[0, 1]``.

    Args:
        x: images ``(N, 28, 28)`` or ``(N, 1, H, W)``, uint8 (0..255) or floats in ``[-1, 1]``.
        nrow: images per row.
        pad: pixels of white between images.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or len(x) < 1:
        raise ValueError(f"x must be a non-empty tensor (N, H, W) or (N, 1, H, W), got {getattr(x, 'shape', x)!r}")
    nrow, pad = checks.positive_int("nrow", nrow), checks.non_negative_int("pad", pad)
    x = x.detach().cpu()
    x = x.float() / 255 if x.dtype == torch.uint8 else (x.float().clamp(-1, 1) + 1) / 2
    x = x.reshape(len(x), *x.shape[-2:])  # (N, H, W) in [0, 1]
    n, h, w = x.shape
    rows = math.ceil(n / nrow)
    grid = torch.ones(rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = x[i]
    return grid.numpy()
