import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab import data, losses, plots, train


@pytest.fixture(scope="module")
def run():
    return train.fit(data.ring(std=0.05), steps=20, seeds=2, batch_size=32, g_hidden=(16,), d_hidden=(16,),
                     snapshot_every=10, progress=False)


def test_generator_gradients_match_finite_differences_per_sample(run):
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))  # seeded: the test is deterministic
    pts, dirs = plots.generator_gradients(run.generator, run.discriminator, "ns", z, seed=1)
    # oracle: central differences of -log sigmoid(D(x)) at each point alone, through run.logits.
    # D is piecewise linear (leaky ReLU): a small h keeps the stencil off its kinks, and float32
    # rounding (about 1e-7 / h) stays far below the tolerance (h = 2e-3 failed for 1 of 8 seeds)
    h = 5e-4
    for i in range(6):
        steps = torch.eye(2) * h
        x = torch.as_tensor(pts[i]).float()
        plus, minus = run.logits(x + steps)[1], run.logits(x - steps)[1]  # (2,) each: D at x +- h e_k
        loss = lambda logit: losses.generator_loss("ns", logit[:, None], dim=-1)  # noqa: E731
        g = (loss(plus) - loss(minus)) / (2 * h)
        assert_close(torch.as_tensor(dirs[i]), -g, rtol=2e-2, atol=2e-3)


def test_discriminator_heat_map_values(run):
    fig, ax = plt.subplots()
    img = plots.plot_discriminator(ax, run.discriminator, (-2, 2, -2, 2), seed=0, resolution=5)
    arr = np.asarray(img.get_array())
    corner = run.probabilities(torch.tensor([[-2.0, -2.0]]))[0, 0]
    assert arr.shape == (5, 5)
    assert_close(torch.tensor(float(arr[0, 0])), corner, atol=1e-6, rtol=0)
    plt.close(fig)


def test_manifold_lines_lie_on_generator_image(run):
    fig, ax = plt.subplots()
    lines = plots.plot_manifold(ax, run.generator, seed=0, lines=3, resolution=4)
    assert len(lines) == 6
    xy = lines[0].get_xydata()
    t = torch.linspace(-2.5, 2.5, 4)
    z = torch.stack([t, torch.full_like(t, -2.5)], 1)
    expected = run.generate(z)[0].numpy()
    np.testing.assert_allclose(xy, expected, rtol=1e-5, atol=1e-6)
    plt.close(fig)


def test_gan_lab_figure_and_animation(run):
    fig, ax = plt.subplots()
    plots.plot_gan_lab(ax, run, seed=1, n=50)
    assert len(ax.images) == 1 and len(ax.collections) >= 3  # heat map; real, fake, arrows
    plt.close(fig)
    anim = plots.animate(run, n=50)
    html = plots.animation_html(anim)
    assert html.count("data:image/png;base64") == len(run.snapshots) == 3
    assert "http" not in html and "font-awesome" not in html  # nothing fetched from elsewhere
    assert html.count("<button") == 9 and html.count('aria-hidden="true"') == 9
    fig = plots.plot_seeds(run, n=50)
    assert len(fig.axes) == 2
    plt.close(fig)
    fig, ax = plt.subplots()
    plots.plot_history(ax, run, "d_loss", smooth=5)
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 16
    plt.close(fig)


def test_data_extent_scales_with_the_data():
    pts = torch.tensor([[-1.0, -0.5], [1.0, 0.5], [0.2, -0.1]])
    assert_close(torch.tensor(plots.data_extent(3 * pts)), 3 * torch.tensor(plots.data_extent(pts)), rtol=1e-5, atol=1e-5)


def test_data_extent_of_a_point_cloud_equals_that_of_its_points():
    pts = np.random.default_rng(0).normal(size=(50, 2))
    assert plots.data_extent(data.PointCloud(pts)) == pytest.approx(plots.data_extent(pts), rel=1e-6)
    run = train.fit(pts, steps=2, batch_size=8, progress=False)
    fig, ax = plt.subplots()
    plots.plot_gan_lab(ax, run, n=20)  # default extent from the point cloud
    plt.close(fig)


def test_data_extent_contains_all_modes():
    g = data.grid()
    x0, x1, y0, y1 = plots.data_extent(g)
    assert x0 < -4 and x1 > 4 and y0 < -4 and y1 > 4


def test_bad_input(run):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="seed"):
        plots.plot_discriminator(ax, run.discriminator, (-1, 1, -1, 1), seed=5)
    with pytest.raises(ValueError, match="layers"):
        plots.plot_gan_lab(ax, run, layers=("heatmap",))
    with pytest.raises(ValueError, match="points"):
        plots.plot_samples(ax, real=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="key"):
        plots.plot_history(ax, run, "loss")
    nosnap = train.fit(data.ring(), steps=2, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="snapshots"):
        plots.animate(nosnap)
    plt.close(fig)


def test_plot_phase_portrait_draws_the_field_and_the_trajectory():
    from gan_lab import dynamics

    path = dynamics.simulate("gan", steps=20)
    seen = []

    def field(t, p):
        seen.append(t.shape)
        return dynamics.vector_field("gan", t, p)

    fig, ax = plt.subplots()
    out = plots.plot_phase_portrait(ax, field, path, extent=(-2, 2, -1, 3), resolution=12)
    assert out is ax and seen == [(12, 12)]
    assert_close(torch.tensor(ax.lines[0].get_xydata()), torch.tensor(path))  # the trajectory, unchanged
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-1.0, 3.0)
    assert len(ax.collections) >= 1  # the streamlines
    with pytest.raises(TypeError, match="field"):
        plots.plot_phase_portrait(ax, None)
    with pytest.raises(ValueError, match="extent"):
        plots.plot_phase_portrait(ax, field, extent=(1, -1, 0, 1))
    with pytest.raises(ValueError, match="trajectory"):
        plots.plot_phase_portrait(ax, field, np.zeros((5, 3)))
    plt.close(fig)


def test_image_grid_places_each_image():
    x = torch.stack([torch.full((28, 28), v, dtype=torch.uint8) for v in (0, 51, 255)])
    grid = plots.image_grid(x, nrow=2, pad=1)
    assert grid.shape == (2 * 29 + 1, 2 * 29 + 1)
    np.testing.assert_allclose(grid[1:29, 1:29], 0.0)
    np.testing.assert_allclose(grid[1:29, 30:58], 0.2, rtol=1e-6)
    np.testing.assert_allclose(grid[30:58, 1:29], 1.0)
    np.testing.assert_allclose(grid[30:58, 30:58], 1.0)  # the empty slot stays white
    floats = plots.image_grid(torch.zeros(1, 1, 28, 28) - 1, nrow=1, pad=0)
    np.testing.assert_allclose(floats, 0.0)
    with pytest.raises(ValueError, match="nrow"):
        plots.image_grid(x, nrow=0)
