"""The Dirac-GAN at the authors' notebook settings, against an independent
re-implementation of their update rule.

The oracle below is written from a reading of LMescheder/GAN_stability,
notebooks/diracgan/gans.py (each class's field, its constructor arguments
and defaults), notebooks/diracgan/simulate.py (trajectory_simgd,
trajectory_altgd) and notebooks/DiracGAN.ipynb (plot_configs, h, start,
steps). The notebook stores no numbers to compare with: its outputs are
PNG figures and progress bars only, so the published values are what the
oracle computes.
"""

import functools
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from gan_lab import dynamics as dy

H, STEPS, START = 0.2, 500, (1.0, 1.0)  # DiracGAN.ipynb, code cell 2
# their rules by output folder: None = simultaneous, else d steps per g step
RULES = {"simgd": None, "altgd1": 1, "altgd5": 5}
# the notebook's plot_configs, as written there: class and arguments
NOTEBOOK = {
    "gan": ("GAN",),
    "nsgan": ("NSGAN",),
    "wgan": ("WGAN", 1.0),
    "wgan_gp": ("WGAN_GP", 0.7, 1.0),
    "gan_instnoise": ("GAN_InstNoise", 0.7),
    "gan_gradpen": ("GAN_GradPenalty", 0.3),
    "gan_gradpen_critical": ("GAN_GradPenalty", 1.0),
    "gan_consensus": ("GAN_Consensus", 1.0),
}
# gan_lab's methods as the authors' classes at their constructor defaults;
# GAN_InstNoise's default std is 1, the notebook's (and gan_lab's) 0.7
AT_DEFAULTS = {
    "gan": ("GAN",),
    "nsgan": ("NSGAN",),
    "wgan": ("WGAN",),
    "wgan_gp": ("WGAN_GP",),
    "instance_noise": ("GAN_InstNoise", 0.7),
    "gradient_penalty": ("GAN_GradPenalty",),
    "consensus": ("GAN_Consensus",),
}


def _sigmoid(x):
    if isinstance(x, float):  # the scalar runs: plain floats are faster
        e = math.exp(-abs(x))
        return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)
    x = np.asarray(x, dtype=float)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _fp(t):  # f'(t) for f(t) = -log(1 + exp(-t))
    return _sigmoid(-t)


def _fpp(t):
    return -_sigmoid(-t) * _sigmoid(t)


def _noise_mean(std, n=801):
    """Trapezoid nodes and weights for E over N(0, std^2), on +-10 std."""
    eps = np.linspace(-10 * std, 10 * std, n)
    w = np.exp(-0.5 * (eps / std) ** 2) * (eps[1] - eps[0])
    return eps, w / (std * math.sqrt(2 * math.pi))


def their_class(name, *args, chain=0.5, noise=None):
    """The field and the clip of one of the authors' classes, built with
    positional ``args`` (their defaults where left out).

    ``chain`` is the factor of the consensus term's chain-rule part: 0.5
    in their code, 1.0 for the gradient of |v|^2 / 2. ``noise``, for
    GAN_InstNoise: ``None`` for the exact expectation (trapezoid rule),
    else ``(rng, n)`` to draw n samples a call as their code does.
    """

    def arg(i, default):
        return args[i] if len(args) > i else default

    if name == "GAN":
        return lambda t, s: (-s * _fp(s * t), t * _fp(s * t)), None
    if name == "NSGAN":
        return lambda t, s: (-s * _fp(-s * t), t * _fp(s * t)), None
    if name == "WGAN":
        return lambda t, s: (-s, t), arg(0, 0.3)
    if name == "WGAN_GP":
        reg, target = arg(0, 1.0), arg(1, 0.3)
        return (
            lambda t, s: (-s, t - reg * (abs(s) - target) * np.sign(s)),
            None,
        )
    if name == "GAN_GradPenalty":
        reg = arg(0, 0.3)
        return lambda t, s: (-s * _fp(s * t), t * _fp(s * t) - reg * s), None
    if name == "GAN_Consensus":
        reg = arg(0, 0.3)

        def field(t, s):
            a, b, r2 = _fp(s * t), _fpp(s * t), s**2 + t**2
            g_t = t * a**2 + chain * s * r2 * a * b
            g_s = s * a**2 + chain * t * r2 * a * b
            return -s * a - reg * g_t, t * a - reg * g_s

        return field, None
    if name == "GAN_InstNoise":
        std = arg(0, 1.0)
        if noise is None:
            eps, w = _noise_mean(std)

            def field(t, s):
                fake = t + eps  # generator sample blurred, real data eps
                v1 = (w * -s * _fp(s * fake)).sum()
                v2 = (w * (fake * _fp(s * fake) - eps * _fp(-eps * s))).sum()
                return v1, v2
        else:
            rng, n = noise

            def field(t, s):  # t, s: (R,) runs; n fresh draws each
                fake = t[:, None] + std * rng.standard_normal((len(t), n))
                real = std * rng.standard_normal((len(t), n))
                s = s[:, None]
                v1 = (-s * _fp(s * fake)).mean(1)
                v2 = (fake * _fp(s * fake) - real * _fp(-real * s)).mean(1)
                return v1, v2

        return field, None
    raise KeyError(name)


def their_run(field, clip, dsteps, theta=START[0], psi=START[1], steps=STEPS):
    """trajectory_simgd (dsteps None) or trajectory_altgd with one
    generator step: the path, (steps + 1, 2) or (steps + 1, R, 2)."""

    def post(p):  # their postprocess: clip psi (WGAN only)
        return p if clip is None else np.clip(p, -clip, clip)

    psi = post(psi)
    path = [(theta, psi)]
    for _ in range(steps):
        if dsteps is None:
            v1, v2 = field(theta, psi)
            theta, psi = theta + H * v1, post(psi + H * v2)
        else:
            theta = theta + H * field(theta, psi)[0]
            psi = post(psi)
            for _ in range(dsteps):
                psi = post(psi + H * field(theta, psi)[1])
        path.append((theta, psi))
    return np.array(path, dtype=float)


@functools.cache
def their_final(cls, rule, chain=0.5):
    """The final (theta, psi) of their run of class ``cls`` (a tuple)."""
    field, clip = their_class(*cls, chain=chain)
    return their_run(field, clip, RULES[rule])[-1]


def their_radius(cls, rule, chain=0.5):
    return float(np.hypot(*their_final(cls, rule, chain)))


@pytest.fixture(scope="module")
def rows():
    return dy.radius_table()


def _authors_row(rows, name):
    (row,) = [r for r in rows if name in (r["name"] or "").split(", ")]
    return row


def test_settings_are_the_notebooks():
    run = {"steps": STEPS, "h": H, "theta0": START[0], "psi0": START[1]}
    assert dy.AUTHORS_RUN == run
    assert dy.AUTHORS_UPDATES == {
        "simgd": ("simultaneous", 1, 1),
        "altgd1": ("alternating", 1, 1),
        "altgd5": ("alternating", 1, 5),
    }
    assert set(dy.AUTHORS_SETTINGS) == set(NOTEBOOK)
    assert {s["method"] for s in dy.AUTHORS_SETTINGS.values()} == set(
        dy.METHODS
    )


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("name", NOTEBOOK)
def test_authors_settings_reproduce_their_code(rows, name, rule):
    """Every radius at the authors' settings is their code's, to 1e-9."""
    row = _authors_row(rows, name)
    setting = dy.AUTHORS_SETTINGS[name]
    assert row["method"] == setting["method"]
    theirs = their_radius(NOTEBOOK[name], rule)
    assert theirs > 0
    if setting["method"] == "consensus":  # documented: chain factor 1/2
        assert_allclose(row["authors_radius"][rule], theirs, rtol=1e-9)
        exact = their_radius(NOTEBOOK[name], rule, chain=1.0)
        assert_allclose(row["radius"][rule], exact, rtol=1e-9)
    else:  # atol: instance noise's altgd5 run ends at a rounding floor
        assert_allclose(row["radius"][rule], theirs, rtol=1e-9, atol=1e-15)
        if setting["method"] != "instance_noise":
            assert row["authors_radius"][rule] == row["radius"][rule]
    # the final state itself (gan_lab's field: the exact consensus term)
    ref = their_final(NOTEBOOK[name], rule, chain=1.0)
    tol = 1e-9 * np.hypot(*ref) + 1e-15
    assert_allclose(row["state"][rule], ref, rtol=0, atol=tol)
    if setting["method"] == "consensus":
        ref = their_final(NOTEBOOK[name], rule)
        tol = 1e-9 * np.hypot(*ref)
        assert_allclose(row["authors_state"][rule], ref, rtol=0, atol=tol)


@pytest.mark.parametrize("method", dy.METHODS)
def test_class_defaults_are_their_constructor_defaults(rows, method):
    (row,) = [
        r
        for r in rows
        if r["method"] == method and r["setting"] in ("defaults", "both")
    ]
    assert (row["name"] is None) == (row["setting"] == "defaults")
    for rule in RULES:
        exact = their_radius(AT_DEFAULTS[method], rule, chain=1.0)
        assert_allclose(row["radius"][rule], exact, rtol=1e-9, atol=1e-15)
        if method not in ("consensus", "instance_noise"):
            assert row["authors_radius"][rule] == row["radius"][rule]


def test_consensus_their_term_differs_only_beyond_first_order(rows):
    """Their consensus term halves the chain-rule part: it is not a
    gradient (curl (theta^2 - psi^2) f' f''), has the same Jacobian at the
    equilibrium, and changes the runs from (1, 1)."""
    rng = np.random.default_rng(0)
    theta, psi = rng.normal(size=8), rng.normal(size=8)
    e = 1e-6
    for fn, factor in (
        (dy.authors_consensus_gradient, 1.0),
        (dy.consensus_gradient, 0.0),
    ):
        d_psi_g_theta = (fn(theta, psi + e)[0] - fn(theta, psi - e)[0]) / (
            2 * e
        )
        d_theta_g_psi = (fn(theta + e, psi)[1] - fn(theta - e, psi)[1]) / (
            2 * e
        )
        curl = (theta**2 - psi**2) * _fp(psi * theta) * _fpp(psi * theta)
        assert_allclose(d_psi_g_theta - d_theta_g_psi, factor * curl, atol=1e-7)
    assert np.abs(curl).max() > 1e-2  # the check above can fail
    # same Jacobian at (0, 0)
    cols = []
    for d in ((e, 0.0), (0.0, e)):
        hi = dy.authors_vector_field("consensus", d[0], d[1], gamma=1.0)
        lo = dy.authors_vector_field("consensus", -d[0], -d[1], gamma=1.0)
        cols.append([(a - b) / (2 * e) for a, b in zip(hi, lo)])
    assert_allclose(np.array(cols).T, dy.jacobian("consensus", gamma=1.0), atol=1e-8)
    # control: the runs differ, at gamma = 1 altgd5 even in kind
    row = _authors_row(rows, "gan_consensus")
    ratio = row["authors_radius"]["simgd"] / row["radius"]["simgd"]
    assert not 0.99 < ratio < 1.01
    assert row["behaviour"]["altgd5"] == "diverging"
    assert row["authors_behaviour"]["altgd5"] == "converging"


def test_instance_noise_their_sampled_runs_scatter_around_the_mean_field():
    """Their code draws 1000 samples a step: the mean over 16 simultaneous
    runs follows gan_lab's exact-expectation path within 4 standard errors,
    while each run stalls at a Monte-Carlo noise floor far above that
    path's radius."""
    runs = 16
    ref = dy.simulate("instance_noise", STEPS, sigma=0.7)  # (501, 2)
    noise = (np.random.default_rng(17), 1000)
    field, _ = their_class("GAN_InstNoise", 0.7, noise=noise)
    start = np.full(runs, 1.0)
    paths = their_run(field, None, None, start, start)  # (501, 2, R)
    paths = paths.transpose(0, 2, 1)  # (501, R, 2)
    mean = paths.mean(1)  # (501, 2)
    se = paths.std(1, ddof=1) / math.sqrt(runs)
    for k in (25, 50, 100, 200, 500):
        assert np.all(np.abs(mean[k] - ref[k]) < 4 * se[k]), k
    # control: the path ten steps later is far outside the band
    assert np.any(np.abs(mean[25] - ref[35]) > 4 * se[25])
    floor = np.median(np.hypot(paths[-1, :, 0], paths[-1, :, 1]))
    assert floor > 100 * np.hypot(*ref[-1])


def test_table_claims(rows):
    """What the chapter states about the authors' settings."""
    authors = {r["name"]: r for r in rows if r["setting"] != "defaults"}
    for rule in RULES:
        for name in ("gan_instnoise", "gan_gradpen", "gan_gradpen_critical"):
            assert authors[name]["behaviour"][rule] == "converging"
        for name in ("nsgan", "wgan", "wgan_gp"):
            assert authors[name]["behaviour"][rule] == "cycling"
    assert authors["gan"]["behaviour"]["simgd"] == "diverging"


def test_format_radius_table(rows):
    text = dy.format_radius_table(rows)
    lines = text.splitlines()
    extra = sum(
        r["method"] in ("consensus", "instance_noise") for r in rows
    )
    assert len(lines) == 1 + len(rows) + extra
    assert max(map(len, lines)) <= 80
    row = _authors_row(rows, "gan_consensus")
    assert f"{row['authors_radius']['altgd5']:7.1e} conv" in text
    assert f"{row['radius']['altgd5']:7.1e} div" in text


def test_bad_input():
    with pytest.raises(ValueError, match="steps"):
        dy.radius_table(steps=3)
    with pytest.raises(TypeError, match="steps"):
        dy.radius_table(steps=2.5)
    with pytest.raises(ValueError, match="updates"):
        dy.radius_table(updates={})
    with pytest.raises(ValueError, match="updates"):
        dy.radius_table(updates={"x": "simultaneous"})
    with pytest.raises(ValueError, match="update must be"):
        dy.radius_table(updates={"x": ("sideways", 1, 1)})
    with pytest.raises(ValueError, match="n_g and n_d"):
        dy.radius_table(updates={"x": ("simultaneous", 1, 5)})
    with pytest.raises(ValueError, match="settings"):
        dy.radius_table(settings={"a": {"method": "gan"}})
    with pytest.raises(TypeError, match="settings"):
        dy.radius_table(settings=[("gan", {})])
    with pytest.raises(ValueError, match="method must be"):
        dy.radius_table(settings={"a": {"method": "lsgan", "params": {}}})
    with pytest.raises(ValueError, match="clip"):
        dy.radius_table(settings={"a": {"method": "wgan", "params": {"clip": -1}}})
    with pytest.raises(ValueError, match="method must be"):
        dy.authors_vector_field("lsgan", 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown parameter"):
        dy.authors_vector_field("consensus", 1.0, 1.0, clip=1.0)
    with pytest.raises(ValueError, match="rows"):
        dy.format_radius_table([])
