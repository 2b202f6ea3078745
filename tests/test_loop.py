"""gan_lab.loop (History, State, the divergence check, checkpoints) and fit_discriminator's features."""

import warnings

import numpy as np
import pytest
import torch

from gan_lab import checkpoint, data, devices, loop, step, train
from gan_lab.nets import MaxoutDiscriminator, MLPDiscriminator

CRITIC = dict(steps=30, batch_size=16, d_hidden=(8,), seeds=2, progress=False)


def _p_model():
    return data.GaussianMixture(torch.zeros(1, 2), 0.5)


class Interrupt(Exception):
    """Stands for a crash (or Ctrl-C) in the middle of a fit."""


def _interrupt_after(monkeypatch, module, name, calls):
    """Make ``module.name`` raise :class:`Interrupt` on its call number ``calls + 1``."""
    real, count = getattr(module, name), [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise Interrupt(f"interrupted at call {count[0]}")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def _count_calls(monkeypatch, module, name):
    real, count = getattr(module, name), [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return count


# ---------------------------------------------------------------- History


def test_history_write_rows_and_numpy_shapes():
    h = loop.History(("a", "b", "c"), steps=5, seeds=3, device=torch.device("cpu"), watched=("c", "a"))
    assert h.buffer.shape == (5, 3, 3) and h.watched == [2, 0]
    for t in range(5):
        h.write(t, torch.arange(9, dtype=torch.float32).reshape(3, 3) + 10 * t)
    arrays = h.numpy()
    assert set(arrays) == {"a", "b", "c"} and all(v.shape == (5, 3) for v in arrays.values())
    assert arrays["b"][2].tolist() == [23.0, 24.0, 25.0]  # step 2, row b (3..5) + 20
    squeezed = h.numpy(squeeze_seeds=True)
    assert squeezed["c"].shape == (5,) and squeezed["c"].tolist() == [6.0, 16.0, 26.0, 36.0, 46.0]
    rows = h.rows(1, 3)
    assert rows["a"].shape == (2, 3) and rows["a"][0].tolist() == [10.0, 11.0, 12.0]
    rows["a"][0, 0] = -1.0  # a copy: the buffer is untouched
    assert h.buffer[1, 0, 0] == 10.0
    other = loop.History(("a", "b", "c"), 5, 3, torch.device("cpu"))
    other.load_rows(1, 3, h.rows(1, 3))
    assert torch.equal(other.buffer[1:3], h.buffer[1:3]) and float(other.buffer[0].abs().sum()) == 0
    # a (k,) row of a one-seed history is accepted (one write per step, whatever the stats' shape)
    one = loop.History(("x", "y"), 2, 1, torch.device("cpu"))
    one.write(0, torch.tensor([1.0, 2.0]))
    assert one.numpy(squeeze_seeds=True)["y"].tolist() == [2.0, 0.0]


# ---------------------------------------------------------------- divergence


def _state(names, steps, seeds, watched):
    hist = loop.History(names, steps, seeds, torch.device("cpu"), watched=watched)
    return loop.State({}, {}, torch.Generator(), hist, [])


def test_a_planted_nan_in_a_single_seed_run_raises():
    state = _state(("d_loss", "g_loss", "norm"), 30, 1, watched=("d_loss", "g_loss"))
    state.history.buffer[:, 0] = 0.5
    state.history.buffer[:, 1] = torch.linspace(1, 2, 30)[:, None]
    loop.check_divergence(state, 10, 1)  # all finite so far: nothing happens
    assert state.checked == 10 and state.diverged == {}
    state.history.buffer[16, 1, 0] = float("nan")  # g_loss at 1-based step 17
    with pytest.raises(loop.TrainingDiverged) as err:
        loop.check_divergence(state, 20, 1)
    msg = str(err.value)
    assert "step 17" in msg and "g_loss = nan" in msg and "last finite values (step 16)" in msg
    assert state.diverged == {0: 17}
    assert issubclass(loop.TrainingDiverged, FloatingPointError) and train.TrainingDiverged is loop.TrainingDiverged


def test_an_unwatched_nan_is_ignored():
    state = _state(("d_loss", "norm"), 10, 1, watched=("d_loss",))
    state.history.buffer[3, 1, 0] = float("inf")
    loop.check_divergence(state, 10, 1)
    assert state.diverged == {}


def test_a_planted_nan_in_one_of_two_seeds_warns_once_and_keeps_going():
    state = _state(("d_loss", "g_loss"), 40, 2, watched=("d_loss", "g_loss"))
    state.history.buffer[12:, 0, 1] = float("inf")  # seed 1 diverges at step 13 (d_loss)
    with pytest.warns(RuntimeWarning, match="seed index 1 at step 13"):
        loop.check_divergence(state, 25, 2)
    assert state.diverged == {1: 13}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same seed is not reported again
        loop.check_divergence(state, 40, 2)
    state.history.buffer[30, 1, 0] = float("nan")  # now seed 0 too (step 31): every seed is gone
    state.checked = 25
    with pytest.raises(loop.TrainingDiverged, match="all 2 seeds"):
        loop.check_divergence(state, 40, 2)
    assert state.diverged == {1: 13, 0: 31}


def test_a_diverged_critic_seed_is_reported_by_fit_discriminator():
    class Poisoned:
        dim = 2

        def __init__(self):
            self.ring, self.calls = data.ring(), 0

        def sample(self, n, generator=None):
            x = self.ring.sample(n, generator)
            self.calls += 1
            if self.calls > 5:
                x[0] = float("nan")
            return x

    with pytest.warns(RuntimeWarning, match="seed index 0 at step 6"):
        run = train.fit_discriminator(Poisoned(), _p_model(), **CRITIC)
    assert np.isnan(run.history["d_loss"][5:, 0]).all() and np.isfinite(run.history["d_loss"][:, 1]).all()


# ---------------------------------------------------------------- checkpoints


def _same_critic_runs(a, b):
    for k in a.history:
        assert np.array_equal(a.history[k], b.history[k]), k
    assert np.array_equal(a.weights(), b.weights())


def test_fit_discriminator_resumes_bit_for_bit_after_an_interruption(tmp_path, monkeypatch):
    cfg = dict(CRITIC, loss="wasserstein", penalty="wgan-gp", n_critic=2, snapshot_every=10)
    whole = train.fit_discriminator(data.ring(), _p_model(), **cfg)
    ckpt = tmp_path / "critic.ckpt"
    with monkeypatch.context() as m:
        _interrupt_after(m, step, "discriminator_step", 2 * 25 + 1)  # dies inside step 26
        with pytest.raises(Interrupt):
            train.fit_discriminator(data.ring(), _p_model(), **cfg, checkpoint=ckpt, checkpoint_every=10)
    saved = train.load_checkpoint(ckpt)
    assert saved["step"] == 20 and saved["engine"] == "eager"
    assert saved["history"]["d_loss"].shape == (20, 2)
    calls = _count_calls(monkeypatch, step, "discriminator_step")
    resumed = train.fit_discriminator(data.ring(), _p_model(), **cfg, checkpoint=ckpt, checkpoint_every=10)
    assert calls[0] == 2 * (cfg["steps"] - 20)  # it trained only the steps the checkpoint lacked
    assert train.load_checkpoint(ckpt)["step"] == cfg["steps"]
    _same_critic_runs(whole, resumed)
    assert [s.step for s in resumed.snapshots] == [0, 10, 20, 30]
    for s, t in zip(whole.snapshots, resumed.snapshots):
        assert s.generator is None and t.generator is None
        assert all(torch.equal(s.discriminator[k], t.discriminator[k]) for k in s.discriminator)


def test_fit_discriminator_checkpoint_of_a_finished_run_is_reused(tmp_path):
    ckpt = tmp_path / "done.ckpt"
    first = train.fit_discriminator(data.ring(), _p_model(), **CRITIC, checkpoint=ckpt)
    with pytest.MonkeyPatch.context() as m:
        calls = _count_calls(m, step, "discriminator_step")
        again = train.fit_discriminator(data.ring(), _p_model(), **CRITIC, checkpoint=ckpt)
    assert calls[0] == 0  # nothing left to train
    _same_critic_runs(first, again)


def test_an_eager_checkpoint_refuses_the_compiled_engine(tmp_path):
    small = dict(steps=6, batch_size=16, g_hidden=(8,), d_hidden=(8,), progress=False)
    ckpt = tmp_path / "eager.ckpt"
    train.fit(data.ring(), **small, compile=False, checkpoint=ckpt)
    assert checkpoint.read_state(ckpt)["engine"] == "eager"
    with pytest.raises(ValueError, match="compile"):
        train.fit(data.ring(), **small, compile=True, checkpoint=ckpt)
    # the same config, but a checkpoint recorded by the other engine: the engine check itself
    state = checkpoint.read_state(ckpt)
    checkpoint.write_state(ckpt, {**state, "engine": "compiled"})
    with pytest.raises(ValueError, match="compiled step.*eager step"):
        train.fit(data.ring(), **small, compile=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match="compiled step.*eager step"):
        train.fit_discriminator(data.ring(), _p_model(), **small, compile=False,
                                checkpoint=_critic_checkpoint(tmp_path, small))


def _critic_checkpoint(tmp_path, cfg):
    path = tmp_path / "critic-engine.ckpt"
    train.fit_discriminator(data.ring(), _p_model(), **cfg, compile=False, checkpoint=path)
    state = checkpoint.read_state(path)
    checkpoint.write_state(path, {**state, "engine": "compiled"})
    return path


def test_state_save_and_load_round_trip(tmp_path):
    """State by itself: modules, optimisers, the random stream, history and progress come back."""
    net = MLPDiscriminator(2, (4,), 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(2, 3, 2)).sum().backward()
    opt.step()
    rng = torch.Generator().manual_seed(3)
    torch.rand(5, generator=rng)
    hist = loop.History(("a",), 4, 2, torch.device("cpu"))
    hist.write(0, torch.tensor([[1.0, 2.0]]))
    state = loop.State({"d": net}, {"d": opt}, rng, hist, [], step=1, checked=1)
    cfg = train.TrainConfig(steps=4, seeds=2)
    path = tmp_path / "s.ckpt"
    state.save(path, cfg, "eager")

    net2 = MLPDiscriminator(2, (4,), [7, 8])
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
    hist2 = loop.History(("a",), 4, 2, torch.device("cpu"))
    state2 = loop.State({"d": net2}, {"d": opt2}, torch.Generator(), hist2, [])
    state2.load(path, cfg, "eager")
    assert state2.step == 1 and state2.checked == 1
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), net2.parameters()))
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(state2.rng.get_state(), rng.get_state())
    assert torch.equal(hist2.buffer, hist.buffer)
    with pytest.raises(ValueError, match="different config"):
        state2.load(path, train.TrainConfig(steps=5, seeds=2), "eager")


# ---------------------------------------------------------------- fit_discriminator's features


def test_fit_discriminator_with_pack_judges_packed_inputs():
    run = train.fit_discriminator(data.ring(), _p_model(), **CRITIC, pack=2)
    D = devices.unwrap(run.discriminator)
    assert D.x_dim == 4
    assert run.logits(torch.zeros(5, 4)).shape == (2, 5)  # a pack of two 2-D points
    with pytest.raises(ValueError):
        run.logits(torch.zeros(5, 2))
    assert run.weights().shape[1] == sum(p[0].numel() for p in D.parameters())


def test_fit_discriminator_with_a_maxout_critic():
    run = train.fit_discriminator(data.ring(), _p_model(), **CRITIC, d_arch="maxout", maxout_pieces=3)
    D = devices.unwrap(run.discriminator)
    assert isinstance(D, MaxoutDiscriminator)
    # one maxout layer 2 -> 8 x 3 pieces, then 8 -> 1: (2*24 + 24) + (8 + 1) parameters per seed
    assert run.weights().shape == (2, 2 * 24 + 24 + 8 + 1)
    assert run.logits(torch.zeros(3, 2)).shape == (2, 3)


def test_fit_discriminator_n_critic_multiplies_the_optimiser_steps(tmp_path):
    counts = {}
    for n in (1, 2):
        ckpt = tmp_path / f"n{n}.ckpt"
        train.fit_discriminator(data.ring(), _p_model(), **CRITIC, n_critic=n, checkpoint=ckpt)
        opt_state = train.load_checkpoint(ckpt)["optimizers"]["discriminator"]["state"]
        counts[n] = {int(s["step"]) for s in opt_state.values()}
    assert counts == {1: {CRITIC["steps"]}, 2: {2 * CRITIC["steps"]}}


def test_fit_discriminator_n_critic_consumes_twice_the_draws():
    """With n_critic=2, step t of the history is the second critic step of iteration t, i.e. the
    (2t + 2)-th critic step of an n_critic=1 run: the same draws, the same updates."""
    one = train.fit_discriminator(data.ring(), _p_model(), **{**CRITIC, "steps": 20})
    two = train.fit_discriminator(data.ring(), _p_model(), **{**CRITIC, "steps": 10}, n_critic=2)
    for k in one.history:
        assert np.array_equal(two.history[k], one.history[k][1::2]), k
    assert np.array_equal(one.weights(), two.weights())


def test_fit_discriminator_snapshots_hold_the_critic_only():
    run = train.fit_discriminator(data.ring(), _p_model(), **CRITIC, snapshot_every=10)
    assert [s.step for s in run.snapshots] == [0, 10, 20, 30]
    assert all(s.generator is None for s in run.snapshots)
    last = run.snapshots[-1].discriminator
    D = devices.unwrap(run.discriminator)
    assert all(torch.equal(last[k], v) for k, v in D.state_dict().items())
    assert not torch.equal(run.snapshots[0].discriminator["layers.0.weight"], last["layers.0.weight"])


def test_fit_discriminator_refuses_the_simultaneous_update():
    with pytest.raises(ValueError, match="simultaneous"):
        train.fit_discriminator(data.ring(), _p_model(), **CRITIC, update="simultaneous")


def test_fit_discriminator_history_and_engine():
    far = data.GaussianMixture(torch.tensor([[3.0, 3.0]]), 0.1)
    run = train.fit_discriminator(data.ring(), far, **CRITIC, lr_d=1e-2)
    assert set(run.history) == {"d_loss", "penalty", "real_logit", "fake_logit"}
    assert all(v.shape == (CRITIC["steps"], 2) for v in run.history.values())
    assert run.engine == "eager" and run.compile_seconds == 0.0
    assert float(np.abs(run.history["penalty"]).max()) == 0.0
    # the critic learns to tell the ring (radius 1) from a blob at (3, 3)
    h = run.history
    assert (h["d_loss"][-5:].mean(0) < h["d_loss"][:5].mean(0) - 0.1).all()
    assert (h["real_logit"][-1] > h["fake_logit"][-1]).all()
