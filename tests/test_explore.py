"""The explorer: static figure, argument checks, and the widgets driven without a frontend."""

import base64
import sys

import matplotlib.figure
import pytest
import torch

from gan_lab import explore, losses, train


@pytest.fixture
def fits(monkeypatch):
    """Record every run that train.fit returns while the test runs."""
    runs, real_fit = [], train.fit

    def spy(*args, **kwargs):
        runs.append(real_fit(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(train, "fit", spy)
    return runs


def test_static_mode_returns_the_figure_of_a_run_with_the_given_settings(fits):
    fig = explore.explorer(data="moons", loss="hinge", lr_g=2e-4, lr_d=5e-3, n_critic=3, steps=60, static=True)
    assert isinstance(fig, matplotlib.figure.Figure)
    lab, loss_ax = fig.axes
    assert lab.get_title() == "moons, step 60"
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["$L_D$", "$J_G$"]
    (run,) = fits
    c = run.config
    assert (c.loss, c.lr_g, c.lr_d, c.n_critic, c.steps, c.seeds) == ("hinge", 2e-4, 5e-3, 3, 60, 1)
    assert run.history["d_loss"].shape == (60, 1)
    assert "n_critic 3" in loss_ax.get_title()
    # both panels have labelled axes (the book's figure convention)
    assert (lab.get_xlabel(), lab.get_ylabel()) == ("$x_1$", "$x_2$")
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel()) == ("generator step", "loss")


def test_static_mode_is_chosen_by_env_without_a_kernel_or_without_ipywidgets(monkeypatch):
    monkeypatch.delenv("GAN_LAB_STATIC", raising=False)
    assert explore.static_mode(True) and not explore.static_mode(False)
    assert explore.static_mode()  # pytest runs no IPython kernel
    monkeypatch.setattr("IPython.get_ipython", lambda: type("Shell", (), {"kernel": object()})())
    assert not explore.static_mode()  # a live kernel shows widgets...
    monkeypatch.setenv("GAN_LAB_STATIC", "1")
    assert explore.static_mode()  # ...unless the book build asks for figures
    monkeypatch.setenv("GAN_LAB_STATIC", "0")
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    assert explore.static_mode()


def test_env_var_alone_gives_a_figure(monkeypatch):
    monkeypatch.setenv("GAN_LAB_STATIC", "1")
    assert isinstance(explore.explorer(steps=20), matplotlib.figure.Figure)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data": "circle"}, r"data must be one of \('ring', 'grid', 'spiral', 'moons', 'smiley'\), got 'circle'"),
        ({"loss": "gan"}, r"loss must be one of \('minimax', 'ns', 'hinge', 'wasserstein', 'lsgan', 'kl', .*\), got 'gan'"),
        ({"lr_g": 0.0}, "lr_g must be a finite number > 0"),
        ({"lr_d": -1e-3}, "lr_d must be a finite number > 0"),
        ({"lr_d": float("nan")}, "lr_d must be a finite number > 0"),
        ({"n_critic": 0}, "n_critic must be a positive int"),
        ({"n_critic": 1.5}, "n_critic must be a positive int"),
        ({"steps": 0}, "steps must be a positive int"),
    ],
)
@pytest.mark.parametrize("static", [True, False])
def test_bad_settings_raise_before_any_training(kwargs, message, static, fits):
    if not static:
        pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError, match=message):
        explore.explorer(static=static, **kwargs)
    assert not fits


@pytest.mark.parametrize("name", explore.DATASETS)
def test_every_data_set_is_a_2d_distribution(name):
    x = explore.make_data(name).sample((2, 5), rng=torch.Generator().manual_seed(0))
    assert x.shape == (2, 5, 2) and torch.isfinite(x).all()


def test_widgets_are_built_with_the_arguments_as_starting_values(fits):
    pytest.importorskip("ipywidgets")
    ex = explore.explorer(data="grid", loss="wasserstein", lr_g=1e-6, lr_d=1e-2, n_critic=5, steps=700, static=False)
    assert isinstance(ex, explore.Explorer)
    c = ex.controls
    assert c["data"].options == explore.DATASETS and c["loss"].options == losses.KINDS
    assert ex.settings() == {"data": "grid", "loss": "wasserstein", "lr_g": 1e-6, "lr_d": 1e-2, "n_critic": 5,
                             "steps": 700}
    assert c["lr_g"].min <= -6 and c["lr_g"].max >= -1  # the log slider widens to hold 1e-6
    assert ex.output.outputs == () and ex.run is None and not fits  # nothing trains until Train is pressed
    c["lr_d"].value = 3e-4
    c["steps"].value = 800
    assert not fits  # moving a slider trains nothing
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()


def test_pressing_train_trains_and_puts_a_figure_in_the_output(fits):
    pytest.importorskip("ipywidgets")
    ex = explore.explorer(static=False)
    ex.controls["loss"].value = "lsgan"
    ex.controls["n_critic"].value = 2
    ex.controls["steps"].value = 100
    ex.button.click()  # calls the on_click handler, as a press in the browser does
    (run,) = fits
    assert ex.run is run and (run.config.loss, run.config.n_critic, run.config.steps) == ("lsgan", 2, 100)
    (out,) = ex.output.outputs
    assert out["output_type"] == "display_data"
    assert base64.b64decode(out["data"]["image/png"]).startswith(b"\x89PNG")
    assert not ex.button.disabled and ex.status.value.startswith("Done in")
