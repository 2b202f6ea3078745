"""gan_lab.compiled: the functional, compiled iteration equals the eager step of gan_lab.step.

The comparisons run torch.compile with the ``eager`` backend (``GAN_LAB_COMPILE_BACKEND``): Dynamo
still traces the whole functional iteration (torch.func.grad, the hand-written optimiser
updates), but no C++ is compiled, so each compiled fit costs about a second. One test,
``test_inductor_compiles_and_matches_eager``, runs the real inductor backend (~30 s on a 2-core
CPU; ``-k "not inductor"`` leaves it out).

Each test starts from a fresh Dynamo cache (``torch._dynamo.reset()``), so it does not depend
on how many compiled fits ran before it in the process; see
``test_many_compiled_fits_in_one_process_stay_compiled`` for why that matters.
"""

import warnings

import numpy as np
import pytest
import torch

from gan_lab import checkpoint, compiled, data, devices, train
from gan_lab.nets import SeedBatchNorm

SMALL = dict(steps=20, batch_size=32, g_hidden=(16,), d_hidden=(16,), seeds=2, progress=False)
TOL = 1e-5


@pytest.fixture(autouse=True)
def _eager_backend(monkeypatch):
    monkeypatch.setenv(compiled.BACKEND_VARIABLE, "eager")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _pre_batchnorm_biases(net):
    """Names of linear biases followed by batch norm: their true gradient is 0 (the norm removes any
    shift), so Adam turns pure rounding noise into +-lr steps there; both engines leave them arbitrary."""
    mods = list(net.layers)
    return {f"layers.{i}.bias" for i in range(len(mods) - 1) if isinstance(mods[i + 1], SeedBatchNorm)}


def _max_difference(a, b):
    """The largest difference between two runs: history, both networks' parameters, and (MLP generators) samples."""
    diffs = {f"history.{k}": np.abs(a.history[k] - b.history[k]).max() / (1 + np.abs(a.history[k]).max())
             for k in a.history}
    for which in ("generator", "discriminator"):
        net_a, net_b = devices.unwrap(getattr(a, which, None)), devices.unwrap(getattr(b, which, None))
        if net_a is None:
            continue
        skip = _pre_batchnorm_biases(net_a) if which == "generator" and a.config.g_arch == "batchnorm" else set()
        pb = dict(net_b.named_parameters())
        for name, p in net_a.named_parameters():
            if name not in skip:
                diffs[f"{which}.{name}"] = float((p - pb[name]).detach().abs().max())
    if hasattr(a, "sample") and a.config.g_arch == "mlp":
        rng = lambda: torch.Generator().manual_seed(3)  # noqa: E731
        diffs["samples"] = float((a.sample(64, rng=rng()) - b.sample(64, rng=rng())).abs().max())
    worst = max(diffs, key=diffs.get)
    return diffs[worst], worst


CASES = {
    "ns": dict(),
    "wgan-gp, n_critic=3": dict(loss="wasserstein", penalty="wgan-gp", n_critic=3),
    "r1, pack=2": dict(penalty="r1", penalty_weight=1.0, pack=2),
    "simultaneous, clip": dict(update="simultaneous", loss="wasserstein", clip=0.05),
    "batchnorm G, maxout D": dict(g_arch="batchnorm", d_arch="maxout", maxout_pieces=3),
    "rmsprop": dict(optimizer="rmsprop", lr_d=5e-4, lr_g=5e-4),
    "sgd": dict(optimizer="sgd", lr_d=0.05, lr_g=0.05),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_fit_equals_eager_fit(case):
    cfg = {**SMALL, **CASES[case]}
    eager = train.fit(data.ring(), **cfg, compile=False)
    comp = train.fit(data.ring(), **cfg, compile=True)
    assert eager.engine == "eager" and eager.compile_seconds == 0.0
    assert comp.engine == "compiled" and comp.compile_seconds > 0
    assert set(comp.history) == set(eager.history)
    assert all(v.shape == (SMALL["steps"], SMALL["seeds"]) for v in comp.history.values())
    diff, where = _max_difference(eager, comp)
    assert diff <= TOL, f"{case}: compiled and eager differ by {diff:.3g} at {where}"
    if CASES[case].get("penalty"):
        assert float(np.abs(comp.history["penalty"]).min()) > 0  # the penalty really ran


def test_the_comparison_detects_another_config():
    """The control: a run with another learning rate is far outside the tolerance."""
    comp = train.fit(data.ring(), **SMALL, compile=True)
    other = train.fit(data.ring(), **SMALL, lr_d=1.2e-3, compile=False)
    diff, _ = _max_difference(other, comp)
    assert diff > 100 * TOL
    other_seed = train.fit(data.ring(), **SMALL, seed=1, compile=False)
    assert _max_difference(other_seed, comp)[0] > 100 * TOL


def test_compiled_fit_discriminator_equals_eager():
    cfg = dict(steps=15, batch_size=32, d_hidden=(16,), seeds=2, progress=False, loss="wasserstein",
               penalty="wgan-gp", n_critic=2, pack=2)
    p_data, p_model = data.ring(), data.GaussianMixture(torch.zeros(1, 2), 0.5)
    eager = train.fit_discriminator(p_data, p_model, **cfg, compile=False)
    comp = train.fit_discriminator(p_data, p_model, **cfg, compile=True)
    assert comp.engine == "compiled" and comp.compile_seconds > 0 and eager.engine == "eager"
    assert set(comp.history) == {"d_loss", "penalty", "real_logit", "fake_logit"}
    diff, where = _max_difference(eager, comp)
    assert diff <= TOL, f"differ by {diff:.3g} at {where}"


def test_compiled_checkpoint_resumes_bit_for_bit(tmp_path):
    cfg = {**SMALL, "compile": True}
    whole = train.fit(data.ring(), **cfg)
    ckpt = tmp_path / "c.ckpt"
    train.fit(data.ring(), **{**cfg, "steps": 10}, checkpoint=ckpt)
    assert checkpoint.read_state(ckpt)["engine"] == "compiled"
    state = checkpoint.read_state(ckpt)
    state["config"]["steps"] = cfg["steps"]
    checkpoint.write_state(ckpt, state)
    resumed = train.fit(data.ring(), **cfg, checkpoint=ckpt)
    assert resumed.resumed_from == 10 and resumed.engine == "compiled"
    for k in whole.history:
        assert np.array_equal(whole.history[k], resumed.history[k]), k
    assert np.array_equal(whole.weights("generator"), resumed.weights("generator"))
    assert np.array_equal(whole.weights(), resumed.weights())


def test_reuse_fake_is_refused_by_the_compiled_step():
    with pytest.raises(ValueError, match="reuse_fake.*compile=False"):
        train.fit(data.ring(), **SMALL, reuse_fake=True, compile=True)


def _failing_compile(f, device, tensors=()):
    def broken(*args):
        raise RuntimeError("no C++ compiler")
    return broken


def test_a_failed_compile_warns_once_and_trains_eagerly(monkeypatch):
    monkeypatch.setattr(compiled, "compile_iteration", _failing_compile)
    monkeypatch.setattr(compiled, "_WARNED", set())  # a fresh process: nothing warned yet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train.fit(data.ring(), **SMALL, compile=True)
    ours = [w for w in caught if issubclass(w.category, RuntimeWarning) and "torch.compile" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert "no C++ compiler" in str(ours[0].message) and "eager" in str(ours[0].message)
    assert run.engine == "eager"
    eager = train.fit(data.ring(), **SMALL, compile=False)
    diff, where = _max_difference(eager, run)
    assert diff <= TOL, f"differ by {diff:.3g} at {where}"


def test_a_failed_compile_of_fit_discriminator_falls_back_too(monkeypatch):
    monkeypatch.setattr(compiled, "compile_iteration", _failing_compile)
    monkeypatch.setattr(compiled, "_WARNED", set())
    cfg = dict(steps=10, batch_size=16, d_hidden=(8,), progress=False)
    with pytest.warns(RuntimeWarning, match="torch.compile"):
        run = train.fit_discriminator(data.ring(), data.GaussianMixture(torch.zeros(1, 2), 0.5), **cfg,
                                      compile=True)
    assert run.engine == "eager"


def test_many_compiled_fits_in_one_process_stay_compiled(monkeypatch):
    """Every fit compiles a new closure of the same code object, so Dynamo adds one cache entry per
    fit and, at its recompile limit (8 by default), fails with ``fullgraph=True``: the 9th
    ``fit(compile=True)`` of a process (a chapter, a benchmark's repeats) then silently trains
    eagerly, with a warning that torch.compile "is not available here". The limit is lowered to 2
    here so that the third fit shows it quickly."""
    monkeypatch.setattr(compiled, "_WARNED", set())
    cfg = dict(steps=2, batch_size=16, g_hidden=(8,), d_hidden=(8,), progress=False, compile=True)
    engines = []
    with torch._dynamo.config.patch(recompile_limit=2), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            engines.append(train.fit(data.ring(), **cfg).engine)
    assert engines == ["compiled"] * 3


def test_inductor_compiles_and_matches_eager(monkeypatch):
    """THE ONE SLOW TEST (~30 s): the real default backend (inductor, C++ codegen) on a tiny config."""
    monkeypatch.delenv(compiled.BACKEND_VARIABLE)
    cfg = dict(steps=30, batch_size=16, g_hidden=(8,), d_hidden=(8,), seeds=2, progress=False)
    comp = train.fit(data.ring(), **cfg, compile=True)
    assert comp.engine == "compiled", "inductor could not compile here (see the RuntimeWarning)"
    assert comp.compile_seconds > 0
    eager = train.fit(data.ring(), **cfg, compile=False)
    diff, where = _max_difference(eager, comp)
    assert diff <= TOL, f"inductor and eager differ by {diff:.3g} at {where}"
