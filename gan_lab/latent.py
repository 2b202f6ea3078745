r"""The latent space: interpolation paths, truncated sampling and the geometry of Gaussian codes.

A generator is sampled by pushing codes ``z ~ N(0, I_d)`` through it. In high dimension
almost all of that prior's mass lies in a thin shell of radius about :math:`\sqrt d`
(:func:`expected_norm`), which decides how to walk between two codes: :func:`lerp` cuts
through the inside of the shell, :func:`slerp` follows a great circle along it
(Shoemake 1985; White 2016, "Sampling generative networks"). :func:`truncated_normal`
draws codes with every coordinate inside ``[-threshold, threshold]`` by resampling, the
"truncation trick" of BigGAN (Brock et al. 2019), which trades diversity for quality.
:func:`classifier_confidence` is the quality probe the chapter measures these with.

All functions take and return tensors; randomness comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import checks


def _check_tensor(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., d) with d >= 1, got {tuple(x.shape)}")
    return x


def _endpoints_and_t(z0, z1, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validated endpoints and ``t`` reshaped to broadcast against them: ``t.shape + (1,) * z.ndim``."""
    z0, z1 = _check_tensor("z0", z0), _check_tensor("z1", z1)
    if z0.shape[-1] != z1.shape[-1]:
        raise ValueError(f"z0 and z1 must have the same last dimension, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    try:
        batch = torch.broadcast_shapes(z0.shape, z1.shape)
    except RuntimeError as err:
        raise ValueError(f"z0 and z1 must broadcast, got {tuple(z0.shape)} and {tuple(z1.shape)}") from err
    if isinstance(t, bool) or not isinstance(t, (int, float, torch.Tensor)):
        raise TypeError(f"t must be a number or a tensor, got {type(t).__name__}")
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    if t.ndim > 1:
        raise ValueError(f"t must be a number or a 1-D tensor of positions, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("t must be finite")
    return z0, z1, t.reshape(t.shape + (1,) * len(batch))


def lerp(z0: torch.Tensor, z1: torch.Tensor, t) -> torch.Tensor:
    r"""Linear interpolation :math:`(1 - t)\, z_0 + t\, z_1`.

    Args:
        z0: start codes ``(..., d)``.
        z1: end codes, broadcastable against ``z0``.
        t: a number, or a 1-D tensor of ``T`` positions (0 gives ``z0``, 1 gives ``z1``).

    Returns:
        ``(..., d)`` for a number ``t``, ``(T, ..., d)`` for a tensor of positions.
    """
    z0, z1, t = _endpoints_and_t(z0, z1, t)
    return (1 - t) * z0 + t * z1


def slerp(
    z0: torch.Tensor, z1: torch.Tensor, t, eps: float = 1e-6
) -> torch.Tensor:
    r"""Spherical linear interpolation (Shoemake 1985), as proposed for
    latent codes by White (2016).

    .. math::

        \operatorname{slerp}(z_0, z_1; t)
        = \frac{\sin((1 - t)\,\omega)}{\sin \omega}\, z_0
        + \frac{\sin(t\,\omega)}{\sin \omega}\, z_1,

    with :math:`\omega` the angle between :math:`z_0` and :math:`z_1`. For
    endpoints of equal norm the path is an arc of a great circle: its norm
    stays constant and the angle moves uniformly, :math:`t\,\omega` from
    :math:`z_0`. The angle is computed as
    :math:`2 \operatorname{atan2}(\lVert u_0 - u_1 \rVert,
    \lVert u_0 + u_1 \rVert)` on the unit vectors :math:`u_i`, which stays
    accurate near 0 and :math:`\pi` where ``arccos`` does not. Where
    :math:`\sin \omega <` ``eps`` (parallel or antiparallel endpoints) the
    formula is 0/0 and the function returns :func:`lerp`, its limit for
    parallel endpoints; for antiparallel ones no great circle is singled
    out and the straight line through the origin is what you get.

    Args:
        z0: start codes ``(..., d)``, none of them zero.
        z1: end codes, broadcastable against ``z0``, none of them zero.
        t: a number, or a 1-D tensor of ``T`` positions (0 gives ``z0``,
            1 gives ``z1``).
        eps: below this :math:`\sin \omega` the linear path is used.

    Returns:
        ``(..., d)`` for a number ``t``, ``(T, ..., d)`` for a tensor of
        positions.
    """
    z0, z1, t = _endpoints_and_t(z0, z1, t)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (
        0 < eps < 1
    ):
        raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
    n0 = torch.linalg.vector_norm(z0, dim=-1, keepdim=True)  # (..., 1)
    n1 = torch.linalg.vector_norm(z1, dim=-1, keepdim=True)
    if (n0 == 0).any() or (n1 == 0).any():
        raise ValueError(
            "z0 and z1 must be non-zero vectors: the angle to a zero "
            "vector is undefined"
        )
    u0, u1 = z0 / n0, z1 / n1
    omega = 2 * torch.atan2(  # (..., 1) in [0, pi]
        torch.linalg.vector_norm(u0 - u1, dim=-1, keepdim=True),
        torch.linalg.vector_norm(u0 + u1, dim=-1, keepdim=True),
    )
    sin_omega = torch.sin(omega)
    degenerate = sin_omega < eps
    # no 0/0 where we fall back to the line
    safe = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
    # (T, ..., 1) or (..., 1)
    w0 = torch.where(degenerate, 1 - t, torch.sin((1 - t) * omega) / safe)
    w1 = torch.where(degenerate, t, torch.sin(t * omega) / safe)
    return w0 * z0 + w1 * z1


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """``steps`` evenly spaced points from ``z0`` to ``z1`` (both included) by ``"lerp"`` or ``"slerp"``.

    Returns:
        ``(steps, ..., d)``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    paths = {"lerp": lerp, "slerp": slerp}
    if method not in paths:
        raise ValueError(f"method must be one of {tuple(paths)}, got {method!r}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype if isinstance(z0, torch.Tensor) else None)
    return paths[method](z0, z1, t)


@checks.renamed(generator="rng")
def truncated_normal(
    n: int,
    dim: int,
    threshold: float,
    rng: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    r"""Codes ``(n, dim)`` with independent coordinates from
    :math:`\mathcal N(0, 1)` conditioned on ``abs(z_i) <= threshold``: the
    truncation trick of BigGAN (Brock et al. 2019).

    Every coordinate outside the interval is redrawn until it falls inside
    (resampling), which gives exactly the truncated normal distribution.
    Each round keeps a fraction :math:`2\Phi(\text{threshold}) - 1` of the
    redrawn values, so very small thresholds need many rounds;
    ``threshold=math.inf`` gives plain :math:`\mathcal N(0, I)` codes.

    Args:
        n: number of codes.
        dim: latent dimension.
        threshold: the truncation point, > 0 (``math.inf`` for no
            truncation).
        rng: the random generator (its device is used); ``None`` uses the
            global one. ``generator=`` is accepted too.
        device: where to create the codes when no ``rng`` is given
            (default CPU).

    Returns:
        A float32 tensor ``(n, dim)``.
    """
    for name, val in (("n", n), ("dim", dim)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not threshold > 0
    ):
        raise ValueError(
            "threshold must be a number > 0 (math.inf for no truncation), "
            f"got {threshold!r}"
        )
    if rng is not None and not isinstance(rng, torch.Generator):
        raise TypeError(
            "rng must be a torch.Generator or None, "
            f"got {type(rng).__name__}"
        )
    dev = rng.device if rng is not None else torch.device(device or "cpu")
    z = torch.randn(n, dim, generator=rng, device=dev)  # (n, dim)
    outside = z.abs() > threshold
    while outside.any():
        # redraw only the rejected coordinates: each keeps its first draw
        # that lands inside
        z[outside] = torch.randn(
            int(outside.sum()), generator=rng, device=dev
        )
        outside = z.abs() > threshold
    return z


def expected_norm(dim: int, scale: float = 1.0) -> float:
    r"""The mean norm of :math:`z \sim \mathcal N(0, \text{scale}^2 I_d)`: the chi distribution's mean,

    .. math::

        \mathbb{E} \lVert z \rVert = \text{scale} \cdot \sqrt 2\, \frac{\Gamma((d + 1)/2)}{\Gamma(d / 2)}
        = \text{scale} \cdot \sqrt{d}\,\bigl(1 - \tfrac{1}{4d} + O(d^{-2})\bigr).

    Computed with ``lgamma``, so it stays finite for large ``dim``.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    return scale * math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))


@torch.no_grad()
def classifier_confidence(images: torch.Tensor, classifier: nn.Module, batch_size: int = 1000) -> torch.Tensor:
    """The classifier's probability of its predicted class, ``max_k softmax(logits)_k``, per image.

    A quality probe: a clear digit gets a confident prediction, a blob between digits does not.
    It says nothing about diversity (a generator that draws one perfect digit scores 1).

    Args:
        images: uint8 (0..255) or floats in ``[-1, 1]``, ``(N, 28, 28)`` or ``(N, 1, 28, 28)``.
        classifier: a network returning logits ``(N, K)`` (:class:`gan_lab.classifier.MNISTClassifier`).
        batch_size: images per forward pass.

    Returns:
        A float32 CPU tensor ``(N,)`` in ``[1/K, 1]``.
    """
    from .classifier import as_float_images

    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be a torch.nn.Module, got {type(classifier).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = as_float_images(images)  # (N, 1, 28, 28)
    classifier.eval()
    dev = next(classifier.parameters()).device
    probs = [torch.softmax(classifier(chunk.to(dev)).float(), dim=1).amax(1).cpu() for chunk in x.split(batch_size)]
    return torch.cat(probs)
