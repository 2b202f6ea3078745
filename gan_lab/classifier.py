"""The evaluation classifier for MNIST: a small CNN, its training, its cache, and its features.

:class:`MNISTClassifier` is a small CNN whose penultimate layer gives the features of
:func:`gan_lab.metrics.classifier_fid` (:func:`classifier_features`);
:func:`train_classifier` trains it, or loads it from the cache after checking its SHA-256.
:func:`predict` and :func:`accuracy` evaluate it on uint8 digits or floats in ``[-1, 1]``.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Sequence

import torch
from torch import nn

from . import checks, devices, mnist, profile
from .loop import cpu_threads
from .results import load_json, save_json, write_checked


class MNISTClassifier(nn.Module):
    """A small CNN for 28 x 28 digits in ``[-1, 1]``: logits ``(N, 10)``; :meth:`features` ``(N, hidden)``.

    Two 3 x 3 convolutions with ReLU and 2 x 2 max pooling (28 -> 14 -> 7), a hidden layer
    of ``hidden`` units (the features of :func:`gan_lab.metrics.classifier_fid`), dropout,
    and a linear layer to ten logits.
    """

    def __init__(self, channels: Sequence[int] = (16, 32), hidden: int = 128, dropout: float = 0.3):
        super().__init__()
        c1, c2 = channels
        self.config = {"channels": [c1, c2], "hidden": hidden, "dropout": dropout}
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, c2, 7, 7)
            nn.Flatten(),
            nn.Linear(c2 * 49, hidden), nn.ReLU(),  # (N, hidden): the features
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer, ``(N, hidden)``, for images ``(N, 1, 28, 28)`` in ``[-1, 1]``."""
        return self.body(as_float_images(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (N, 10)


def as_float_images(x: torch.Tensor) -> torch.Tensor:
    """Images as floats ``(N, 1, 28, 28)`` in ``[-1, 1]``: uint8 0..255 is rescaled, floats pass as they are."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        x = mnist.to_signed_unit(x)
    elif not x.is_floating_point():
        raise TypeError(f"images must be uint8 (0..255) or floating point ([-1, 1]), got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(x.shape)}")
    return x


def _shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels in each direction (background -1 fills in)."""
    n, s = x.shape[0], max_shift
    padded = nn.functional.pad(x, (s, s, s, s), value=-1.0)  # (N, 1, 28 + 2s, 28 + 2s)
    dy, dx = torch.randint(0, 2 * s + 1, (2, n), generator=g)  # (N,) each
    rows = dy[:, None] + torch.arange(28)  # (N, 28)
    cols = dx[:, None] + torch.arange(28)
    return padded[torch.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]  # (N, 1, 28, 28)


@torch.no_grad()
def predict(classifier: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes ``(N,)`` (int64, CPU) for images (uint8 or floats in ``[-1, 1]``)."""
    batch_size = checks.positive_int("batch_size", batch_size)
    classifier.eval()
    dev = next(classifier.parameters()).device
    x = as_float_images(images)
    return torch.cat([classifier(chunk.to(dev)).argmax(1).cpu() for chunk in x.split(batch_size)])


def accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    labels = torch.as_tensor(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
    return float((predict(classifier, images) == labels.cpu()).double().mean())


def _cache_key(images: torch.Tensor, labels: torch.Tensor, settings: dict) -> str:
    h = hashlib.sha256()
    h.update(images.contiguous().numpy().tobytes())
    h.update(labels.to(torch.int64).contiguous().numpy().tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def _load_cached(pt, meta) -> dict | None:
    """The state dict at ``pt`` if ``meta`` records its SHA-256 and the bytes match; else None (and say why)."""
    if not (pt.is_file() and meta.is_file()):
        return None
    raw = pt.read_bytes()
    try:
        recorded = load_json(meta)["sha256"]
    except (ValueError, KeyError, TypeError):
        print(f"classifier cache: {meta.name} is unreadable; retraining")
        return None
    if hashlib.sha256(raw).hexdigest() != recorded:
        print(f"classifier cache: {pt.name} does not match its recorded SHA-256; not used, retraining")
        return None
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)


def train_classifier(images, labels=None, *, epochs: int = 12, batch_size: int = 64, lr: float = 2e-3,
                     max_shift: int = 2, seed: int = 0, device: str | torch.device | None = None,
                     cache: bool = True, cache_root=None, progress: bool | None = None) -> MNISTClassifier:
    """Train :class:`MNISTClassifier` on labelled digits, or load the one trained before from the cache.

    Adam with a learning rate decayed linearly to 0, cross-entropy, and random translations
    of up to ``max_shift`` pixels as augmentation. The state dict is cached under
    ``<cache>/classifiers/`` with a name derived from the SHA-256 of the training data and
    these settings, written atomically, its SHA-256 recorded in a JSON file beside it; a
    cached file is used only if its bytes match that record, and is loaded with
    ``torch.load(..., weights_only=True)``.

    Args:
        images: uint8 digits ``(N, 28, 28)``, or an :class:`gan_lab.mnist.MNIST` (then ``labels`` is omitted).
        labels: int64 classes ``(N,)``.
        epochs: passes over the data.
        batch_size: images per step.
        lr: Adam's initial learning rate.
        max_shift: largest random translation in pixels (0: no augmentation).
        seed: initialisation, order and augmentation seed.
        device: where to train (default :func:`gan_lab.profile.device`).
        cache: read and write the cache.
        cache_root: the cache directory (default :func:`gan_lab.mnist.cache_dir`).
        progress: show a progress bar.

    Returns:
        The classifier in eval mode, on ``device``; ``classifier.source`` is ``"cache"`` or ``"trained"``.
    """
    if isinstance(images, mnist.MNIST):
        images, labels = images.images, images.labels
    images = mnist.as_uint8_images(images)
    if labels is None or torch.as_tensor(labels).shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {getattr(labels, 'shape', labels)!r}")
    labels = torch.as_tensor(labels).to(torch.int64)
    epochs, batch_size = checks.positive_int("epochs", epochs), checks.positive_int("batch_size", batch_size)
    seed, max_shift = checks.non_negative_int("seed", seed), checks.non_negative_int("max_shift", max_shift)
    lr = checks.positive_number("lr", lr)
    dev = profile.device(device)
    settings = {"version": 1, "epochs": epochs, "batch_size": batch_size, "lr": lr, "max_shift": max_shift,
                "seed": seed, **MNISTClassifier().config}
    key = _cache_key(images, labels, settings)
    folder = mnist.cache_dir(cache_root) / "classifiers"
    pt, meta = folder / f"mnist-cnn-{key[:16]}.pt", folder / f"mnist-cnn-{key[:16]}.json"
    with devices.seeded(seed):  # initialisation (on the CPU)
        net = MNISTClassifier()
    state = _load_cached(pt, meta) if cache else None
    if state is not None:
        net.load_state_dict(state)
        net.source = "cache"
        return net.to(dev).eval()

    g = torch.Generator().manual_seed(seed)
    x_all = mnist.to_signed_unit(images)  # (N, 1, 28, 28) on the CPU
    net = net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    per_epoch = len(images) // batch_size
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / (epochs * per_epoch))
    loss_fn = nn.CrossEntropyLoss()
    with cpu_threads(1, dev), devices.seeded(seed + 1, dev):  # dropout masks (on dev)
        for _ in profile.progress_bar(range(epochs), "classifier epochs", progress):
            order = torch.randperm(len(images), generator=g)
            for i in range(per_epoch):
                idx = order[i * batch_size:(i + 1) * batch_size]
                x = _shift(x_all[idx], max_shift, g) if max_shift else x_all[idx]
                loss = loss_fn(net(x.to(dev)), labels[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    net.eval()
    if cache:
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
        raw = buffer.getvalue()
        digest = hashlib.sha256(raw).hexdigest()
        write_checked(pt, raw, digest)  # the weights first: without the record they are never trusted
        save_json(meta, {"sha256": digest, "settings": settings, "n_train": len(images)})
    net.source = "trained"
    return net


@torch.no_grad()
def classifier_features(images, classifier, batch_size: int = 500) -> torch.Tensor:
    """The classifier's penultimate-layer features of ``images``: a float64 CPU tensor ``(N, h)``.

    ``classifier`` needs a ``features`` method (:class:`MNISTClassifier`);
    ``images`` are uint8 (0..255) or floats in ``[-1, 1]``, ``(N, 28, 28)`` or ``(N, 1, 28, 28)``.
    """
    if not callable(getattr(classifier, "features", None)):
        raise TypeError(f"classifier must have a features() method, got {type(classifier).__name__}")
    batch_size = checks.positive_int("batch_size", batch_size)
    x = as_float_images(images)
    if len(x) < 2:
        raise ValueError(f"need at least 2 images, got {len(x)}")
    classifier.eval()
    dev = next(classifier.parameters()).device
    return torch.cat([classifier.features(chunk.to(dev)).double().cpu() for chunk in x.split(batch_size)])
