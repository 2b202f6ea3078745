"""The training loop's reliability: determinism, divergence handling, and checkpoints."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_lab import checkpoint, data, profile, train

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(steps=60, batch_size=32, g_hidden=(16,), d_hidden=(16,), progress=False)


class Poisoned:
    """The ring, except that seed slot ``slot`` gets NaN data from sampling call ``after`` on.

    A controlled divergence of one seed: every other slot sees exactly the data it would
    see without the poison (the random stream is consumed identically).
    """

    dim = 2

    def __init__(self, slot, after):
        self.ring, self.slot, self.after, self.calls = data.ring(), slot, after, 0

    def sample(self, n, generator=None):
        x = self.ring.sample(n, generator)
        self.calls += 1
        if self.slot is not None and self.calls > self.after:
            x[self.slot] = float("nan")
        return x


# ---------------------------------------------------------------- determinism


def _fingerprint(run):
    return {**run.history, "samples": run.sample(64, rng=torch.Generator().manual_seed(1)).numpy()}


def test_same_seed_is_bit_identical_within_a_process():
    a, b = (_fingerprint(train.fit(data.ring(), seeds=2, penalty="wgan-gp", loss="wasserstein", **SMALL))
            for _ in range(2))
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_same_seed_is_bit_identical_across_processes(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from gan_lab import data, train
        run = train.fit(data.ring(), seeds=2, **{SMALL!r})
        np.savez({str(tmp_path / 'out.npz')!r}, samples=run.sample(64, rng=torch.Generator().manual_seed(1)).numpy(),
                 **run.history)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)
    theirs = np.load(tmp_path / "out.npz")
    ours = _fingerprint(train.fit(data.ring(), seeds=2, **SMALL))
    for k in ours:
        assert np.array_equal(ours[k], theirs[k]), k


def test_different_seeds_differ():
    a = train.fit(data.ring(), seed=0, **SMALL).history["g_loss"]
    b = train.fit(data.ring(), seed=1, **SMALL).history["g_loss"]
    assert not np.array_equal(a, b)


def test_seed_all_fixes_the_global_generators():
    import random

    profile.seed_all(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    profile.seed_all(3)
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())


def test_start_chapter_seeds_everything(capsys):
    profile.start_chapter("Test", seed=5)
    a = torch.rand(3)
    profile.start_chapter("Test", seed=5)
    assert torch.equal(a, torch.rand(3))
    assert "Test\nprofile: " in capsys.readouterr().out


# ---------------------------------------------------------------- divergence


def test_a_diverged_seed_is_flagged_and_the_others_train_unaffected():
    with pytest.warns(RuntimeWarning, match="seed index 1 at step 21"):
        poisoned = train.fit(Poisoned(slot=1, after=20), seeds=3, **SMALL)
    clean = train.fit(Poisoned(slot=None, after=20), seeds=3, **SMALL)
    assert poisoned.diverged == {1: 21}
    assert "diverged={1: 21}" in repr(poisoned)
    assert np.isnan(poisoned.history["d_loss"][20:, 1]).all()
    for k in ("d_loss", "g_loss", "g_grad_norm"):  # healthy seeds: bit for bit the clean run
        assert np.array_equal(poisoned.history[k][:, [0, 2]], clean.history[k][:, [0, 2]]), k
    gen = torch.Generator().manual_seed(0)
    assert torch.isfinite(poisoned.sample(100, rng=gen)[[0, 2]]).all()
    assert clean.diverged == {}


def test_a_single_seed_divergence_raises_with_the_step_and_last_finite_values():
    with pytest.raises(train.TrainingDiverged) as err:
        train.fit(Poisoned(slot=0, after=30), seeds=1, **SMALL)
    msg = str(err.value)
    assert "step 31" in msg and "d_loss = nan" in msg and "last finite values (step 30)" in msg


def test_every_seed_diverging_raises():
    with pytest.raises(train.TrainingDiverged, match="all 2 seeds"):
        train.fit(Poisoned(slot=slice(None), after=5), seeds=2, **SMALL)


def test_a_huge_learning_rate_is_caught():
    """A genuinely unstable run (not poisoned data): SGD with an absurd step size overflows."""
    with pytest.raises(train.TrainingDiverged, match="diverged at step"):
        train.fit(data.ring(), optimizer="sgd", lr_d=1e12, lr_g=1e12, **SMALL)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_resume_is_bit_identical(tmp_path):
    cfg = dict(seeds=2, snapshot_every=20, **SMALL)
    ckpt = tmp_path / "run.ckpt"
    whole = train.fit(data.ring(), **cfg)
    # Stop after 40 of 60 steps (a run with steps=40 has the same trajectory up to there)...
    first = train.fit(data.ring(), **{**cfg, "steps": 40}, checkpoint=ckpt, checkpoint_every=20)
    assert train.load_checkpoint(ckpt)["step"] == 40 and first.resumed_from == 0
    # ...then change only the budget: the checkpoint's config must match, so rewrite its steps.
    with pytest.raises(ValueError, match="different config"):
        train.fit(data.ring(), **cfg, checkpoint=ckpt)
    resumed = _resume_with_steps(ckpt, cfg)
    assert resumed.resumed_from == 40
    a, b = _fingerprint(whole), _fingerprint(resumed)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert [s.step for s in resumed.snapshots] == [0, 20, 40, 60]


def _resume_with_steps(ckpt, cfg):
    """Resume a checkpoint under a longer budget (the test's way to 'interrupt' at step 40)."""
    state = checkpoint.read_state(ckpt)
    state["config"]["steps"] = cfg["steps"]
    checkpoint.write_state(ckpt, state)
    return train.fit(data.ring(), **cfg, checkpoint=ckpt)


def test_resume_after_killing_the_process(tmp_path):
    """Kill a training process mid-way (SIGKILL, no clean-up), resume, and match an uninterrupted run."""
    ckpt = tmp_path / "killed.ckpt"
    cfg = dict(seeds=2, steps=3000, batch_size=32, g_hidden=(16,), d_hidden=(16,), progress=False)
    script = textwrap.dedent(f"""
        from gan_lab import data, train
        train.fit(data.ring(), **{cfg!r}, checkpoint={str(ckpt)!r}, checkpoint_every=100)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.kill()
    finally:
        proc.wait(timeout=30)
    stopped_at = train.load_checkpoint(ckpt)["step"]
    assert 0 < stopped_at < cfg["steps"], f"the run was not interrupted mid-way (step {stopped_at})"
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {ckpt.name, checkpoint.log_path(ckpt).name}, left  # no temporary files left behind
    resumed = train.fit(data.ring(), **cfg, checkpoint=ckpt, checkpoint_every=100)
    assert resumed.resumed_from == stopped_at
    whole = train.fit(data.ring(), **cfg)
    for k in whole.history:
        assert np.array_equal(whole.history[k], resumed.history[k]), k
    gen = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    assert torch.equal(whole.sample(50, rng=gen()), resumed.sample(50, rng=gen()))


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path):
    ckpt = tmp_path / "c.ckpt"
    train.fit(data.ring(), **SMALL, checkpoint=ckpt)
    good = ckpt.read_bytes()
    raw = bytearray(good)
    raw[-10] ^= 0xFF  # flip bits in the payload
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        train.fit(data.ring(), **SMALL, checkpoint=ckpt)
    ckpt.write_bytes(good)
    log = checkpoint.log_path(ckpt)
    history = bytearray(log.read_bytes())
    history[-10] ^= 0xFF  # flip bits in the history log
    log.write_bytes(bytes(history))
    with pytest.raises(ValueError, match="log .* corrupt"):
        train.fit(data.ring(), **SMALL, checkpoint=ckpt)
    log.write_bytes(bytes(history[:100]))
    with pytest.raises(ValueError, match="truncated"):
        train.load_checkpoint(ckpt)
    old = f"GANLAB-CHECKPOINT-{checkpoint.FORMAT_VERSION - 1}".encode()
    ckpt.write_bytes(good.replace(f"GANLAB-CHECKPOINT-{checkpoint.FORMAT_VERSION}".encode(), old, 1))
    with pytest.raises(ValueError, match=f"format version {checkpoint.FORMAT_VERSION - 1}"):
        train.fit(data.ring(), **SMALL, checkpoint=ckpt)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad header"):
        train.load_checkpoint(ckpt)
    with pytest.raises(ValueError, match="does not exist"):
        train.load_checkpoint(tmp_path / "missing.ckpt")
    fresh = train.fit(data.ring(), **SMALL, checkpoint=ckpt, resume=False)  # overwrite a bad file
    assert fresh.resumed_from == 0 and train.load_checkpoint(ckpt)["step"] == SMALL["steps"]


def test_checkpoint_io_is_linear_in_steps(tmp_path):
    """Each save appends only the rows since the last one: the log grows by the same amount per
    save (not by the whole history), and the state file keeps one size."""
    ckpt = tmp_path / "lin.ckpt"
    sizes = []
    for steps in (50, 100, 150, 200):
        train.fit(data.ring(), **{**SMALL, "steps": steps}, checkpoint=ckpt, checkpoint_every=50, resume=False)
        sizes.append((ckpt.stat().st_size, checkpoint.log_path(ckpt).stat().st_size))
    state_sizes, log_sizes = zip(*sizes)
    assert max(state_sizes) - min(state_sizes) < 200  # the state does not grow with the history
    growth = np.diff(log_sizes)  # one more 50-step chunk per run
    assert np.ptp(growth) < 0.05 * growth.mean(), log_sizes
    history = train.load_checkpoint(ckpt)["history"]
    assert history["g_loss"].shape == (200, 1)


def test_checkpoint_from_another_device_or_base_seed_is_refused(tmp_path, monkeypatch):
    ckpt = tmp_path / "dev.ckpt"
    train.fit(data.ring(), **SMALL, checkpoint=ckpt)
    state = checkpoint.read_state(ckpt)
    assert state["format"] == checkpoint.FORMAT_VERSION and state["torch"] == torch.__version__
    assert state["device_type"] == "cpu"
    checkpoint.write_state(ckpt, {**state, "device_type": "cuda"})
    with pytest.raises(ValueError, match="written on a cuda device .* cannot resume on cpu"):
        train.fit(data.ring(), **SMALL, checkpoint=ckpt, device="cpu")
    checkpoint.write_state(ckpt, state)
    monkeypatch.setenv("GAN_LAB_SEED", "3")
    with pytest.raises(ValueError, match="base seed"):
        train.fit(data.ring(), **SMALL, checkpoint=ckpt)


def test_checkpoint_every_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every"):
        train.fit(data.ring(), **SMALL, checkpoint=tmp_path / "x", checkpoint_every=0)
