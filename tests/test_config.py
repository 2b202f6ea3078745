"""gan_lab.config: TrainConfig's validation, resolve, first_seed, the engine choice, reuse_fake."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_lab import config as config_mod
from gan_lab import data, devices, profile, train
from gan_lab.config import TrainConfig
from gan_lab.nets import build_discriminator, build_generator

SMALL = dict(steps=12, batch_size=16, g_hidden=(8,), d_hidden=(8,), seeds=2, progress=False)


# ---------------------------------------------------------------- the engine


CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_use_compiled_follows_auto_compile_steps():
    steps = config_mod.AUTO_COMPILE_STEPS
    assert set(steps) >= {"cpu", "cuda"} and all(n > 0 for n in steps.values())
    for dev in (CPU, CUDA):
        n = steps[dev.type]
        assert config_mod.use_compiled(TrainConfig(steps=n), dev) is True
        assert config_mod.use_compiled(TrainConfig(steps=n - 1), dev) is False
        assert config_mod.use_compiled(TrainConfig(steps=1, compile=True), dev) is True
        assert config_mod.use_compiled(TrainConfig(steps=10 * n, compile=False), dev) is False
    many = config_mod.AUTO_COMPILE_MAX_SEEDS + 1  # on the CPU, many seeds stay eager however long
    assert config_mod.use_compiled(TrainConfig(steps=10 * steps["cpu"], seeds=many), CPU) is False
    assert config_mod.use_compiled(TrainConfig(steps=steps["cpu"], seeds=many - 1), CPU) is True
    assert config_mod.use_compiled(TrainConfig(steps=steps["cuda"], seeds=many), CUDA) is True
    assert config_mod.use_compiled(TrainConfig(steps=1, seeds=many, compile=True), CPU) is True
    # without a device, the config's own device decides
    assert config_mod.use_compiled(TrainConfig(steps=steps["cpu"], device="cpu")) is True


def test_auto_compile_threshold_is_read_at_call_time(monkeypatch):
    monkeypatch.setitem(config_mod.AUTO_COMPILE_STEPS, "cpu", 5)
    assert config_mod.use_compiled(TrainConfig(steps=5), CPU) is True
    assert config_mod.use_compiled(TrainConfig(steps=4), CPU) is False


def test_a_short_run_with_compile_none_is_eager():
    run = train.fit(data.ring(), **SMALL)  # compile=None, far below AUTO_COMPILE_STEPS
    assert run.config.compile is None and run.engine == "eager" and run.compile_seconds == 0.0


def test_reuse_fake_with_compile_none_picks_eager(monkeypatch):
    """reuse_fake exists only on the eager step, so the automatic choice must not pick the compiled
    one for it: a long run with the defaults plus reuse_fake=True should train, not raise."""
    monkeypatch.setitem(config_mod.AUTO_COMPILE_STEPS, "cpu", SMALL["steps"])
    assert config_mod.use_compiled(TrainConfig(steps=SMALL["steps"]), CPU) is True  # the default is compiled...
    assert config_mod.use_compiled(TrainConfig(steps=SMALL["steps"], reuse_fake=True), CPU) is False  # ...not this
    run = train.fit(data.ring(), **SMALL, reuse_fake=True)
    assert run.engine == "eager"


@pytest.mark.parametrize("field, value", [("compile", "yes"), ("compile", "auto"), ("compile", 2),
                                          ("reuse_fake", None), ("reuse_fake", "no"), ("reuse_fake", 2)])
def test_bad_compile_and_reuse_fake_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value}).validate()
    with pytest.raises(ValueError, match=field):
        train.fit(data.ring(), **SMALL, **{field: value})


def test_reuse_fake_with_simultaneous_is_rejected():
    with pytest.raises(ValueError, match="reuse_fake"):
        TrainConfig(update="simultaneous", reuse_fake=True).validate()
    with pytest.raises(ValueError, match="reuse_fake"):
        train.fit(data.ring(), **SMALL, update="simultaneous", reuse_fake=True)


def test_reuse_fake_with_compile_true_is_rejected_at_fit():
    TrainConfig(reuse_fake=True, compile=True).validate()  # a valid config...
    with pytest.raises(ValueError, match="reuse_fake.*compile=False"):  # ...that fit cannot run compiled
        train.fit(data.ring(), **SMALL, reuse_fake=True, compile=True)


# ---------------------------------------------------------------- reuse_fake: another algorithm


def _first_iteration_by_hand(reuse_fake):
    """The first iteration of fit (ns loss, Adam, one seed) written out: D step on G(z_d), then a G
    step on G(z_d) (reuse_fake) or on fresh codes z_g drawn after the D step's draws."""
    settings = {k: v for k, v in SMALL.items() if k != "progress"}
    cfg = config_mod.resolve(None, {**settings, "seeds": 1, "steps": 1, "reuse_fake": reuse_fake})
    first = config_mod.first_seed(cfg)
    G = build_generator(cfg, 2, [2 * first])
    D = build_discriminator(cfg, 2, [2 * first + 1])
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    rng = torch.Generator().manual_seed(first)
    ring = data.ring()
    x_real = ring.sample((1, cfg.batch_size), rng=rng)
    z_d = torch.randn(1, cfg.batch_size, cfg.z_dim, generator=rng)
    with torch.no_grad():
        x_fake = G(z_d)
    d_loss = F.softplus(-D(x_real)).mean() + F.softplus(D(x_fake)).mean()
    d_loss.backward()
    opt_d.step()
    z_g = z_d if reuse_fake else torch.randn(1, cfg.batch_size, cfg.z_dim, generator=rng)
    with torch.no_grad():
        g_loss = F.softplus(-D(G(z_g))).mean()
    return float(d_loss.detach()), float(g_loss)


@pytest.mark.parametrize("reuse_fake", [False, True])
def test_reuse_fake_first_iteration_matches_a_hand_written_one(reuse_fake):
    run = train.fit(data.ring(), **{**SMALL, "seeds": 1, "steps": 1}, reuse_fake=reuse_fake)
    d_loss, g_loss = _first_iteration_by_hand(reuse_fake)
    assert abs(run.history["d_loss"][0, 0] - d_loss) < 1e-6
    assert abs(run.history["g_loss"][0, 0] - g_loss) < 1e-6


def test_reuse_fake_trains_deterministically_and_differs_from_the_default():
    a = train.fit(data.ring(), **SMALL, reuse_fake=True)
    b = train.fit(data.ring(), **SMALL, reuse_fake=True)
    default = train.fit(data.ring(), **SMALL)
    for k in a.history:
        assert np.array_equal(a.history[k], b.history[k]), k
        assert np.all(np.isfinite(a.history[k])), k
    assert np.array_equal(a.weights("generator"), b.weights("generator"))
    assert not np.allclose(a.history["g_loss"], default.history["g_loss"], atol=1e-4)
    assert np.abs(a.weights("generator") - default.weights("generator")).max() > 1e-4
    # the D step of the very first iteration is the same in both (the same draws, the same nets)
    assert a.history["d_loss"][0].tolist() == default.history["d_loss"][0].tolist()


def test_reuse_fake_with_n_critic_reuses_the_last_critic_batch():
    run = train.fit(data.ring(), **SMALL, reuse_fake=True, n_critic=3)
    assert all(np.all(np.isfinite(v)) for v in run.history.values())
    assert run.engine == "eager"


def test_reuse_fake_is_refused_by_fit_discriminator_and_fit_mmd():
    with pytest.raises(ValueError, match="reuse_fake"):
        train.fit_discriminator(data.ring(), data.ring(), **SMALL, reuse_fake=True)
    with pytest.raises(ValueError, match="reuse_fake"):
        train.fit_mmd(data.ring(), **SMALL, reuse_fake=True)


# ---------------------------------------------------------------- resolve, seeds, the rest


def test_resolve_merges_normalises_and_rejects_unknown_fields():
    base = TrainConfig(loss="hinge", steps=7)
    cfg = config_mod.resolve(base, {"g_hidden": [4, 4], "betas": [0.0, 0.9], "steps": 9})
    assert cfg.loss == "hinge" and cfg.steps == 9 and cfg.g_hidden == (4, 4) and cfg.betas == (0.0, 0.9)
    assert base.steps == 7 and cfg is not base  # the given config is not modified
    assert config_mod.resolve(None, {}) == TrainConfig()
    with pytest.raises(TypeError, match="stesp"):
        config_mod.resolve(None, {"stesp": 3})
    with pytest.raises(ValueError, match="n_critic"):
        config_mod.resolve(None, {"n_critic": 0})


def test_first_seed_shifts_by_the_base_seed(monkeypatch):
    monkeypatch.delenv("GAN_LAB_SEED", raising=False)
    assert config_mod.first_seed(TrainConfig(seed=4)) == 4 + profile.SEED_STRIDE * profile.base_seed()
    monkeypatch.setenv("GAN_LAB_SEED", "3")
    assert profile.base_seed() == 3
    assert config_mod.first_seed(TrainConfig(seed=4)) == 4 + 3 * profile.SEED_STRIDE
    run = train.fit(data.ring(), **{**SMALL, "steps": 1}, seed=4)
    assert run.first_seed == 4 + 3 * profile.SEED_STRIDE


@pytest.mark.parametrize("field, value", [("update", "simultaneous"), ("g_arch", "conv"), ("d_arch", "conv"),
                                          ("optimizer", "adamw"), ("penalty", "gp"), ("maxout_pieces", 0),
                                          ("snapshot_every", 0), ("clip", -1.0), ("betas", (0.5, 1.0))])
def test_validate_names_the_field(field, value):
    extra = {"n_critic": 2} if field == "update" else {}
    with pytest.raises(ValueError, match=field if field != "update" else "n_critic"):
        TrainConfig(**{field: value}, **extra).validate()


def test_step_spec_and_optimizers_follow_the_config():
    cfg = TrainConfig(loss="wasserstein", penalty="r1", penalty_weight=2.0, clip=0.1, pack=3, optimizer="rmsprop",
                      lr_g=1e-4, lr_d=2e-4)
    spec = config_mod.step_spec(cfg)
    assert (spec.loss, spec.penalty, spec.penalty_weight, spec.clip, spec.pack) == ("wasserstein", "r1", 2.0, 0.1, 3)
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opts = config_mod.optimizers(cfg, torch.device("cpu"), generator=G, discriminator=D)
    assert set(opts) == {"generator", "discriminator"}
    assert isinstance(opts["generator"], torch.optim.RMSprop)
    assert opts["generator"].defaults["lr"] == 1e-4 and opts["discriminator"].defaults["lr"] == 2e-4


def test_snapshot_copies_weights_to_the_cpu():
    net = torch.nn.Linear(2, 3)
    snap = config_mod.snapshot(5, None, net)
    assert snap.step == 5 and snap.generator is None
    assert torch.equal(snap.discriminator["weight"], net.weight.detach())
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(snap.discriminator["weight"], net.weight.detach())  # a copy, not a view
    assert devices.unwrap(net) is net
