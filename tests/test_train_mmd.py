"""gan_lab.train_mmd.fit_mmd: refusals, g_arch, snapshots, checkpoints, and a hand-written first step."""

import numpy as np
import pytest
import torch

from gan_lab import config as config_mod
from gan_lab import data, devices, step, train
from gan_lab.nets import BatchNormGenerator, MLPGenerator, build_generator

MMD = dict(steps=20, batch_size=16, g_hidden=(8,), d_hidden=(8,), seeds=2, progress=False)
BANDWIDTHS = (0.1, 0.5, 1.0)


class Interrupt(Exception):
    """Stands for a crash in the middle of a fit."""


def _patch_calls(monkeypatch, module, name, fail_after=None):
    """Count the calls of ``module.name``; from call ``fail_after + 1`` on, raise :class:`Interrupt`."""
    real, count = getattr(module, name), [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if fail_after is not None and count[0] > fail_after:
            raise Interrupt(f"interrupted at call {count[0]}")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return count


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("field, value", [("loss", "hinge"), ("penalty", "r1"), ("penalty", "wgan-gp"), ("pack", 2),
                                          ("update", "simultaneous"), ("reuse_fake", True), ("d_arch", "maxout"),
                                          ("compile", True)])
@pytest.mark.parametrize("features", [None, 4])
def test_fit_mmd_refuses_what_it_cannot_use_naming_the_field(field, value, features):
    with pytest.raises(ValueError, match=f"fit_mmd does not use .*'{field}'"):
        train.fit_mmd(data.ring(), **MMD, features=features, **{field: value})


def test_fit_mmd_names_every_refused_field_at_once():
    with pytest.raises(ValueError) as err:
        train.fit_mmd(data.ring(), **MMD, loss="hinge", pack=2)
    assert "'loss'" in str(err.value) and "'pack'" in str(err.value)


@pytest.mark.parametrize("field, value", [("n_critic", 3), ("clip", 0.5)])
def test_fit_mmd_without_a_feature_map_refuses_critic_settings(field, value):
    """With ``features=None`` there is no critic: ``n_critic`` and ``clip`` have no effect, and the
    design says a feature either works or is refused, never silently ignored."""
    with pytest.raises(ValueError, match=field):
        train.fit_mmd(data.ring(), **MMD, bandwidths=BANDWIDTHS, **{field: value})


def test_fit_mmd_accepts_the_eager_engine_and_the_default():
    for compile_ in (False, None):
        run = train.fit_mmd(data.ring(), **{**MMD, "steps": 2}, compile=compile_)
        assert run.engine == "eager"


def test_fit_mmd_rejects_bad_features_and_bandwidths():
    with pytest.raises(ValueError, match="features"):
        train.fit_mmd(data.ring(), **MMD, features=0)
    with pytest.raises(ValueError, match="bandwidths"):
        train.fit_mmd(data.ring(), **MMD, bandwidths=(0.1, -1.0))


# ---------------------------------------------------------------- a hand-written first step


def _mmd2_by_hand(x, y, bandwidths):
    def k(a, b):
        sq = ((a[:, :, None, :] - b[:, None, :, :]) ** 2).sum(-1)  # (S, n, m)
        return sum(torch.exp(-sq / (2 * s * s)) for s in bandwidths)

    n, m = x.shape[1], y.shape[1]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = lambda K: K.sum((1, 2)) - torch.diagonal(K, dim1=1, dim2=2).sum(-1)  # noqa: E731
    return off(kxx) / (n * (n - 1)) + off(kyy) / (m * (m - 1)) - 2 * kxy.mean((1, 2))


def test_fit_mmd_first_step_equals_a_hand_written_gmmn_step():
    run = train.fit_mmd(data.ring(), **{**MMD, "steps": 1}, bandwidths=BANDWIDTHS)
    cfg = config_mod.resolve(None, {k: v for k, v in {**MMD, "steps": 1}.items() if k != "progress"})
    first = config_mod.first_seed(cfg)
    S, B = cfg.seeds, cfg.batch_size
    G = build_generator(cfg, 2, [2 * (first + i) for i in range(S)])
    opt = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    rng = torch.Generator().manual_seed(first)
    x_real = data.ring().sample((S, B), rng=rng)
    x_fake = G(torch.randn(S, B, cfg.z_dim, generator=rng))
    mmd2 = _mmd2_by_hand(x_real, x_fake, BANDWIDTHS)
    mmd2.sum().backward()
    norm = torch.stack([sum((p.grad[s] ** 2).sum() for p in G.parameters()).sqrt() for s in range(S)])
    opt.step()
    np.testing.assert_allclose(run.history["mmd2"][0], mmd2.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run.history["g_grad_norm"][0], norm.detach().numpy(), rtol=1e-5, atol=1e-7)
    want = torch.cat([p.detach().reshape(S, -1) for p in G.parameters()], 1).numpy()
    np.testing.assert_allclose(run.weights("generator"), want, rtol=0, atol=1e-6)
    assert run.discriminator is None and set(run.history) == {"mmd2", "g_grad_norm"}


def test_fit_mmd_reduces_the_mmd():
    run = train.fit_mmd(data.ring(), **{**MMD, "steps": 150, "seeds": 1, "lr_g": 1e-2}, bandwidths=BANDWIDTHS)
    h = run.history["mmd2"][:, 0]
    assert h[-20:].mean() < 0.5 * h[:5].mean()


# ---------------------------------------------------------------- g_arch, snapshots, the feature map


def test_fit_mmd_with_a_batchnorm_generator():
    run = train.fit_mmd(data.ring(), **MMD, g_arch="batchnorm", bandwidths=BANDWIDTHS)
    G = devices.unwrap(run.generator)
    assert isinstance(G, BatchNormGenerator)
    assert all(np.isfinite(v).all() for v in run.history.values())
    samples = run.sample(32, rng=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 32, 2) and torch.isfinite(samples).all()
    mlp = train.fit_mmd(data.ring(), **MMD, bandwidths=BANDWIDTHS)
    assert isinstance(devices.unwrap(mlp.generator), MLPGenerator)
    assert not np.allclose(run.history["mmd2"], mlp.history["mmd2"])


@pytest.mark.parametrize("features", [None, 4])
def test_fit_mmd_snapshots(features):
    run = train.fit_mmd(data.ring(), **MMD, features=features, snapshot_every=5)
    assert [s.step for s in run.snapshots] == [0, 5, 10, 15, 20]
    G = devices.unwrap(run.generator)
    last = run.snapshots[-1]
    assert all(torch.equal(last.generator[k], v) for k, v in G.state_dict().items())
    assert not torch.equal(run.snapshots[0].generator["layers.0.weight"], last.generator["layers.0.weight"])
    if features is None:
        assert all(s.discriminator is None for s in run.snapshots)
    else:
        F = devices.unwrap(run.discriminator)
        assert all(torch.equal(last.discriminator[k], v) for k, v in F.state_dict().items())
    # an earlier snapshot, through Run.at (a GMMN has no discriminator to restore)
    early = run.at(1)
    assert np.array_equal(early.weights("generator")[0],
                          torch.cat([v[0].reshape(-1) for v in run.snapshots[1].generator.values()]).numpy())
    assert early.sample(8, rng=torch.Generator().manual_seed(0)).shape == (2, 8, 2)
    if features is None:
        assert early.discriminator is None


def test_fit_mmd_feature_map_is_clipped_and_trained():
    run = train.fit_mmd(data.ring(), **MMD, features=4, n_critic=2)
    assert run.config.clip == 0.01  # the MMD GAN's default clipping
    F = devices.unwrap(run.discriminator)
    assert all(float(p.detach().abs().max()) <= 0.01 for p in F.parameters())
    assert set(run.history) == {"mmd2", "g_grad_norm", "critic_mmd2"}
    assert run.logits(torch.zeros(3, 2)).shape == (2, 3, 4)


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("features", [None, 4])
def test_fit_mmd_resumes_bit_for_bit_after_an_interruption(tmp_path, monkeypatch, features):
    cfg = dict(MMD, snapshot_every=10, **({"n_critic": 2} if features else {}))
    whole = train.fit_mmd(data.ring(), **cfg, features=features)
    ckpt = tmp_path / "mmd.ckpt"
    with monkeypatch.context() as m:
        _patch_calls(m, step, "grad_norm", fail_after=15)  # one call per generator step: dies in step 16
        with pytest.raises(Interrupt):
            train.fit_mmd(data.ring(), **cfg, features=features, checkpoint=ckpt, checkpoint_every=5)
    saved = train.load_checkpoint(ckpt)
    assert saved["step"] == 15 and set(saved["modules"]) == ({"generator", "discriminator"} if features else
                                                               {"generator"})
    with monkeypatch.context() as m:
        calls = _patch_calls(m, step, "grad_norm")
        resumed = train.fit_mmd(data.ring(), **cfg, features=features, checkpoint=ckpt, checkpoint_every=5)
    assert calls[0] == cfg["steps"] - 15 and resumed.resumed_from == 15
    for k in whole.history:
        assert np.array_equal(whole.history[k], resumed.history[k]), k
    assert np.array_equal(whole.weights("generator"), resumed.weights("generator"))
    if features:
        assert np.array_equal(whole.weights(), resumed.weights())
    rng = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    assert torch.equal(whole.sample(32, rng=rng()), resumed.sample(32, rng=rng()))
    assert [s.step for s in resumed.snapshots] == [0, 10, 20]


def test_fit_mmd_checkpoint_of_another_config_is_refused(tmp_path):
    ckpt = tmp_path / "mmd.ckpt"
    train.fit_mmd(data.ring(), **{**MMD, "steps": 3}, checkpoint=ckpt)
    with pytest.raises(ValueError, match="different config"):
        train.fit_mmd(data.ring(), **{**MMD, "steps": 3}, lr_g=5e-3, checkpoint=ckpt)
    fresh = train.fit_mmd(data.ring(), **{**MMD, "steps": 3}, lr_g=5e-3, checkpoint=ckpt, resume=False)
    assert fresh.resumed_from == 0
