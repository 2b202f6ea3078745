"""An interactive explorer: pick a loss, learning rates, ``n_critic`` and a data set, press Train.

In a live Jupyter or Colab kernel :func:`explorer` shows ipywidgets controls and a Train
button. Training starts only when the button is pressed, never on a slider move: a run of
a thousand steps takes seconds on a CPU. Where no controls can be shown (the built website,
``GAN_LAB_STATIC=1``, no ipywidgets, no kernel) it trains once with the arguments given
and returns a static figure instead.

Each run is one seed of :func:`gan_lab.train.fit`; the figure is GAN Lab's picture
(:func:`gan_lab.plots.plot_gan_lab`) beside the two losses (:func:`gan_lab.plots.plot_history`).
"""

from __future__ import annotations

import base64
import io
import math
import os

import matplotlib.pyplot as plt
import numpy as np

from . import distributions
from . import losses, plots, train

#: The data sets :func:`explorer` offers (two Gaussian mixtures, then three point clouds).
DATASETS = ("ring", "grid", "spiral", "moons", "smiley")


def _arc(angles: np.ndarray, radius: float = 1.0, centre=(0.0, 0.0)) -> np.ndarray:
    """Points ``(n, 2)`` at ``angles`` on a circle."""
    return np.c_[centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)]


def _noisy(points: np.ndarray, rng: np.random.Generator, std: float = 0.02) -> distributions.PointCloud:
    return distributions.PointCloud(points + rng.normal(0, std, points.shape))


def make_data(name: str):
    """The distribution behind a :data:`DATASETS` name (point clouds are fixed: NumPy seed 0)."""
    if name not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {name!r}")
    if name == "ring":
        return distributions.ring(n_modes=8, radius=1.0, std=0.05)  # chapter 2's ring
    if name == "grid":
        return distributions.grid(side=5, spacing=2.0, std=0.05)
    rng = np.random.default_rng(0)
    if name == "spiral":  # t in [2.1, 3 pi]: ~1.2 turns, roughly uniform in arc length
        t = 3 * np.pi * np.sqrt(rng.uniform(0.05, 1.0, 2000))
        return _noisy(np.c_[t * np.cos(t), t * np.sin(t)] / (3 * np.pi), rng)
    if name == "moons":  # two interleaved half circles
        upper = _arc(rng.uniform(0, np.pi, 1000), centre=(-0.5, -0.25))
        lower = _arc(rng.uniform(np.pi, 2 * np.pi, 1000), centre=(0.5, 0.25))
        return _noisy(np.r_[upper, lower], rng)
    # smiley: the face, two eyes and a mouth, four separate pieces
    face = _arc(rng.uniform(0, 2 * np.pi, 1200))
    eyes = np.r_[rng.normal((-0.35, 0.35), 0.06, (200, 2)), rng.normal((0.35, 0.35), 0.06, (200, 2))]
    mouth = _arc(rng.uniform(1.2 * np.pi, 1.8 * np.pi, 400), radius=0.55, centre=(0.0, 0.05))
    return _noisy(np.r_[face, eyes, mouth], rng)


def train_setting(data: str = "ring", loss: str = "ns", lr_g: float = 1e-3, lr_d: float = 1e-3,
                  n_critic: int = 1, steps: int = 1000) -> train.Run:
    """Train one GAN (one seed, progress bar off) in the setting the explorer's controls describe.

    Args:
        data: one of :data:`DATASETS`.
        loss: one of :data:`gan_lab.losses.KINDS`.
        lr_g: the generator's learning rate (Adam).
        lr_d: the discriminator's learning rate (Adam).
        n_critic: discriminator steps per generator step (chapter 2's :math:`k`).
        steps: generator steps.

    Returns:
        The :class:`gan_lab.train.Run`.
    """
    config = _check(data, loss, lr_g, lr_d, n_critic, steps)
    return train.fit(make_data(data), config, progress=False)


def _check(data, loss, lr_g, lr_d, n_critic, steps) -> train.TrainConfig:
    """Validate every setting before any work; the errors name the parameter."""
    if data not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {data!r}")
    if loss not in losses.KINDS:
        raise ValueError(f"loss must be one of {losses.KINDS}, got {loss!r}")
    # TrainConfig checks lr_g, lr_d > 0 and finite, n_critic and steps positive ints
    return train.TrainConfig(loss=loss, lr_g=lr_g, lr_d=lr_d, n_critic=n_critic, steps=steps, seeds=1).validate()


def draw(run: train.Run, data: str | None = None):
    """GAN Lab's picture of a run (left) and its two losses (right); returns the closed figure."""
    c = run.config
    fig, (ax_lab, ax_loss) = plt.subplots(1, 2, figsize=(9.5, 4.2), gridspec_kw={"width_ratios": (1, 1.3)})
    plots.plot_gan_lab(ax_lab, run, title=f"{data or 'data'}, step {c.steps}")
    ax_lab.set(xlabel="$x_1$", ylabel="$x_2$")
    smooth = max(1, c.steps // 40)
    plots.plot_history(ax_loss, run, "d_loss", label="$L_D$", smooth=smooth)
    plots.plot_history(ax_loss, run, "g_loss", label="$J_G$", smooth=smooth)  # chapter 2's cost
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize=9)
    ax_loss.set_title(f"loss {c.loss!r}, lr_G {c.lr_g:.1e}, lr_D {c.lr_d:.1e}, "
                      f"n_critic {c.n_critic} ({run.seconds:.1f} s)", fontsize=9)
    fig.tight_layout()
    plt.close(fig)  # shown once, by whoever displays the returned figure
    return fig


def static_mode(static: bool | None = None) -> bool:
    """Whether :func:`explorer` draws a static figure: ``static`` if given, else ``True`` when
    ``GAN_LAB_STATIC`` is ``1``, ipywidgets is missing, or no IPython kernel is running."""
    if static is not None:
        return bool(static)
    if os.environ.get("GAN_LAB_STATIC", "0").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return True
    return getattr(get_ipython(), "kernel", None) is None  # a terminal IPython cannot show widgets


def explorer(data: str = "ring", loss: str = "ns", lr_g: float = 1e-3, lr_d: float = 1e-3,
             n_critic: int = 1, steps: int = 1000, *, static: bool | None = None):
    """Explore a small GAN's training: controls and a Train button, or one static figure.

    Args:
        data: the data set, one of :data:`DATASETS`.
        loss: one of :data:`gan_lab.losses.KINDS`.
        lr_g: the generator's learning rate.
        lr_d: the discriminator's learning rate.
        n_critic: discriminator steps per generator step.
        steps: generator steps per run.
        static: ``True`` trains once and returns the figure; ``False`` returns the controls;
            ``None`` decides by :func:`static_mode`.

    Returns:
        In static mode the matplotlib figure of :func:`draw`; otherwise an :class:`Explorer`,
        which displays as the controls (the arguments are their starting values).

    Raises:
        ValueError: a setting out of range, named in the message, before anything trains.
    """
    _check(data, loss, lr_g, lr_d, n_critic, steps)
    if static_mode(static):
        return draw(train_setting(data, loss, lr_g, lr_d, n_critic, steps), data)
    return Explorer(data, loss, lr_g, lr_d, n_critic, steps)


def _png_output(fig) -> dict:
    """A figure as a Jupyter ``display_data`` output (what an Output widget stores)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    data = {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": repr(fig)}
    return {"output_type": "display_data", "data": data, "metadata": {}}


class Explorer:
    """The controls, a Train button and an Output widget; pressing Train trains and draws.

    Attributes:
        controls: name -> widget for ``data``, ``loss``, ``lr_g``, ``lr_d``, ``n_critic``, ``steps``.
        button: the Train button.
        status: a label beside the button: training, done (with the time) or the error.
        output: the Output widget that shows the latest figure.
        run: the latest :class:`gan_lab.train.Run` (``None`` before the first press).
        widget: the whole box, shown when the explorer is displayed.
    """

    def __init__(self, data="ring", loss="ns", lr_g=1e-3, lr_d=1e-3, n_critic=1, steps=1000):
        import ipywidgets as w

        _check(data, loss, lr_g, lr_d, n_critic, steps)
        style = {"description_width": "150px"}

        def log_slider(value, description):  # 1e-5 .. 1e-1, widened to hold the value
            e = math.log10(value)
            return w.FloatLogSlider(value=value, base=10, min=min(-5, math.floor(e)), max=max(-1, math.ceil(e)),
                                    step=0.25, readout_format=".1e", description=description, style=style)

        self.controls = {
            "data": w.Dropdown(options=DATASETS, value=data, description="data set", style=style),
            "loss": w.Dropdown(options=losses.KINDS, value=loss, description="loss", style=style),
            "lr_g": log_slider(lr_g, "generator lr"),
            "lr_d": log_slider(lr_d, "discriminator lr"),
            "n_critic": w.IntSlider(value=n_critic, min=1, max=max(10, n_critic), description="D steps per G step",
                                    style=style),
            "steps": w.IntSlider(value=steps, min=min(100, steps), max=max(3000, steps), step=100,
                                 description="generator steps", style=style),
        }
        self.button = w.Button(description="Train", button_style="primary", icon="play")
        self.button.on_click(self.train)
        self.status = w.Label("Set the controls, then press Train.")
        self.output = w.Output()
        self.run = None
        self.widget = w.VBox([*self.controls.values(), w.HBox([self.button, self.status]), self.output])

    def settings(self) -> dict:
        """The controls' current values, as keyword arguments of :func:`train_setting`."""
        return {name: c.value for name, c in self.controls.items()}

    def train(self, _button=None) -> None:
        """Train with the current settings and show the figure (the button's click handler)."""
        settings = self.settings()
        self.button.disabled, self.status.value = True, f"Training {settings['steps']} steps..."
        try:
            self.run = train_setting(**settings)
            self.output.outputs = (_png_output(draw(self.run, settings["data"])),)
            self.status.value = f"Done in {self.run.seconds:.1f} s."
        except Exception as err:  # show the error next to the button, not in a log
            self.status.value = f"Failed: {err}"
            raise
        finally:
            self.button.disabled = False

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)  # displays as the controls

    def __repr__(self) -> str:
        return f"Explorer({', '.join(f'{k}={v!r}' for k, v in self.settings().items())})"
