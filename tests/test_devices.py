"""Device safety: CPU in and CPU out, device-check mode, the precision policy, seeding."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gan_lab import data, devices, images, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(steps=5, seeds=3, batch_size=16, g_hidden=(8,), d_hidden=(8,), progress=False)


@pytest.fixture(scope="module")
def run():
    return train.fit(data.ring(), **TINY, snapshot_every=5)


def test_check_mode_is_on_in_the_tests_and_parses_its_variable(monkeypatch):
    assert devices.check_mode()  # tests/conftest.py turns it on
    for off in ("0", "false", "off", ""):
        monkeypatch.setenv("GAN_LAB_DEVICE_CHECK", off)
        assert not devices.check_mode()
    monkeypatch.setenv("GAN_LAB_DEVICE_CHECK", "maybe")
    with pytest.raises(ValueError, match="GAN_LAB_DEVICE_CHECK must be 0 or 1"):
        devices.check_mode()


def test_a_runs_networks_refuse_direct_use_in_check_mode(run):
    x = torch.zeros(3, 4, 2)
    with pytest.raises(devices.DeviceMixingError, match=r"run\.discriminator\(\.\.\.\).*run\.logits"):
        run.discriminator(x)
    with pytest.raises(devices.DeviceMixingError, match=r"run\.generator\.parameters"):
        run.generator.parameters()
    with pytest.raises(devices.DeviceMixingError, match="state_dict"):
        run.discriminator.state_dict()
    assert run.discriminator.n_seeds == 3 and "run.logits" in repr(run.discriminator)
    assert isinstance(devices.unwrap(run.discriminator), torch.nn.Module)
    critic = train.fit_discriminator(data.ring(), data.grid(), **{**TINY, "steps": 2})
    with pytest.raises(devices.DeviceMixingError):
        critic.discriminator(x)


def test_without_check_mode_the_networks_are_plain_modules(monkeypatch):
    monkeypatch.setenv("GAN_LAB_DEVICE_CHECK", "0")
    plain = train.fit(data.ring(), **TINY)
    assert isinstance(plain.discriminator, torch.nn.Module)
    assert plain.discriminator(torch.zeros(3, 4, 2)).shape == (3, 4)


def test_device_safe_methods_match_the_networks_and_return_cpu(run):
    D, G = devices.unwrap(run.discriminator), devices.unwrap(run.generator)
    x = torch.randn(3, 7, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = D(x)
    assert_close(run.logits(x), expected)
    assert_close(run.logits(x[0]), D(x[0].expand(3, -1, -1)).detach())  # (n, d): every seed, same points
    assert_close(run.probabilities(x), torch.sigmoid(expected))
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_close(run.generate(z), G(z.expand(3, -1, -1)))
    for out in (run.logits(x), run.generate(z), run.sample(4)):
        assert out.device.type == "cpu" and not out.requires_grad
    w = run.weights("discriminator")
    assert isinstance(w, np.ndarray) and w.shape == (3, sum(p[0].numel() for p in D.parameters()))
    assert_close(torch.from_numpy(w[1]), torch.cat([p[1].detach().flatten() for p in D.parameters()]))
    assert run.at(0).logits(x).shape == (3, 7)
    assert run.latent(5).device.type == "cpu"


@pytest.mark.parametrize(
    "call, error, match",
    [(lambda r: r.logits(torch.zeros(2, 4, 2)), ValueError, r"shape \(n, 2\) or \(3, n, 2\)"),
     (lambda r: r.logits([[0.0, 0.0]]), TypeError, "x must be a tensor"),
     (lambda r: r.logits(torch.zeros(4, 2, device="meta")), ValueError, "must be a CPU tensor"),
     (lambda r: r.generate(torch.zeros(4, 3)), ValueError, "z must have shape"),
     (lambda r: r.weights("critic"), ValueError, "which must be"),
     (lambda r: r.latent(0), ValueError, "n must be a positive int")],
)
def test_device_safe_methods_reject_bad_input(run, call, error, match):
    with pytest.raises(error, match=match):
        call(run)


def test_image_run_methods(mnist_offline):
    digits = data.load_mnist("train")
    run = images.fit_images(digits.images[:64], steps=1, batch_size=8, width=8, z_dim=4, n_fixed=4,
                            progress=False)
    with pytest.raises(devices.DeviceMixingError):
        run.discriminator(torch.zeros(1, 1, 28, 28))
    D = devices.unwrap(run.discriminator).eval()
    with torch.no_grad():
        expected = D(data.to_signed_unit(digits.images[:5]).reshape(5, 1, 28, 28))
    assert_close(run.logits(digits.images[:5]), expected)
    assert run.weights("generator").ndim == 1
    assert run.generate(torch.zeros(2, 4)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="CPU tensor"):
        run.logits(torch.zeros(2, 28, 28, device="meta"))


# ---------------------------------------------------------------- the precision policy


def test_precision_policy(monkeypatch):
    assert not devices.bf16_supported(torch.device("cpu"))
    assert devices.autocast_dtype(torch.device("cpu")) == torch.float32
    cuda = torch.device("cuda", 0)
    for capability, native in (((7, 5), False), ((7, 0), False), ((8, 0), True), ((9, 0), True)):
        # emulate a T4 / V100 / A100 / H100 (torch without including_emulation: the capability decides)
        def no_kw(*args, **kwargs):
            raise TypeError("unexpected keyword argument 'including_emulation'")

        monkeypatch.setattr(torch.cuda, "is_bf16_supported", no_kw)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda dev=None, c=capability: c)
        assert devices.bf16_supported(cuda) is native
        assert devices.autocast_dtype(cuda) == (torch.bfloat16 if native else torch.float32)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, n=native: n)
        assert devices.bf16_supported(cuda) is native
    assert not devices.autocast(torch.device("cpu"))._enabled


def test_seeded_forks_and_seeds_only_the_cpu_generator():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    with devices.seeded(7):
        a = torch.rand(3)
    assert torch.equal(torch.random.get_rng_state(), before)  # restored
    with devices.seeded(7):
        assert torch.equal(a, torch.rand(3))


# ---------------------------------------------------------------- chapters: static and live checks

# What a chapter cell must not do itself: evaluate or read a run's network, move tensors
# between devices, or seed its own generators (profile.rng gives the generator for purpose i).
FORBIDDEN = {
    "evaluates a run's network directly": r"\.(?:discriminator|generator|ema_generator)\s*\(",
    "reads a run's network weights": r"\.(?:discriminator|generator)\s*\.\s*(?:parameters|named_parameters|"
                                     r"state_dict|weight|layers)\b",
    "moves tensors between devices": r"\.(?:cuda|to)\s*\(\s*(?:[^)]*device|run\.|['\"]cuda|['\"]cpu)|\.cuda\(\)",
    "seeds its own generator": r"(?:torch\.Generator\s*\([^)]*\)\s*\.manual_seed|torch\.manual_seed|"
                               r"np\.random\.(?:seed|default_rng)\s*\(\s*\d)",
}


def device_problems(code: str) -> list:
    """The forbidden patterns (see FORBIDDEN) found in a chapter cell's code, comments dropped."""
    text = "\n".join(line.split("#", 1)[0] for line in code.splitlines() if not line.lstrip().startswith("%"))
    return [what for what, pattern in FORBIDDEN.items() if re.search(pattern, text)]


def _code_cells(path):
    cells = json.loads(path.read_text())["cells"][1:]  # the hidden install cell is not a chapter cell
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", sorted((ROOT / "book").glob("ch*.ipynb")), ids=lambda p: p.stem)
def test_chapter_cells_use_only_device_safe_calls(path):
    found = [(i, device_problems(code)) for i, code in enumerate(_code_cells(path))]
    assert not [f for f in found if f[1]], f"{path.name}: {[f for f in found if f[1]]}"


PLANTED = """\
from gan_lab import data, profile, train
run = train.fit(data.ring(), steps=3, seeds=2, batch_size=8, g_hidden=(8,), d_hidden=(8,))
x = data.ring().sample(16, rng=profile.rng(0))
logits = run.discriminator(x.expand(2, -1, -1))  # the mistake: a CPU tensor into the network
"""


def test_a_planted_device_mixing_cell_is_caught(tmp_path):
    """The static check flags the planted cell, and executing it (as nbval does, in a real
    kernel with GAN_LAB_DEVICE_CHECK=1) fails with DeviceMixingError; the corrected cell passes both."""
    assert device_problems(PLANTED) == ["evaluates a run's network directly"]
    fixed = PLANTED.replace("run.discriminator(x.expand(2, -1, -1))", "run.logits(x)")
    assert device_problems(fixed) == []
    for cell in ("torch.Generator().manual_seed(3)", "x.to(run.device)", "critic.discriminator.parameters()"):
        assert device_problems(cell), cell
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    env = {**os.environ, "GAN_LAB_DEVICE_CHECK": "1", "GAN_LAB_PROGRESS": "0"}
    for code, fails in ((PLANTED, True), (fixed, False)):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
        old = dict(os.environ)
        os.environ.update(env)
        try:
            if fails:
                with pytest.raises(nbclient.exceptions.CellExecutionError, match="DeviceMixingError"):
                    client.execute()
            else:
                client.execute()
        finally:
            os.environ.clear()
            os.environ.update(old)
