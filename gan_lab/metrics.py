r"""Sample-quality metrics for generators trained on Gaussian mixtures.

:func:`mode_stats` follows the protocol of VEEGAN (Srivastava et al., 2017) and PacGAN
(Lin et al., 2018) on the ring and grid benchmarks of :mod:`gan_lab.data`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

_CHUNK = 1 << 16  # rows per distance computation, to bound memory at (chunk, K)


def _as_samples(samples, dim: int) -> tuple[torch.Tensor, bool]:
    """Samples as a float64 CPU tensor of shape ``(seeds, n, d)``, and whether they came batched."""
    if isinstance(samples, torch.Tensor):
        x = samples.detach().to("cpu", torch.float64)
    else:
        x = torch.as_tensor(np.asarray(samples, dtype=np.float64))
    if x.ndim not in (2, 3) or x.shape[-1] != dim:
        raise ValueError(f"samples must have shape (n, {dim}) or (seeds, n, {dim}) for this mixture, got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"samples must not be empty, got shape {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError("samples must not contain NaN")
    return (x, True) if x.ndim == 3 else (x[None], False)


def mode_stats(samples, mixture, threshold: float = 3.0) -> dict:
    r"""Modes captured, fraction of high-quality samples and reverse KL over modes.

    Each sample :math:`x` is assigned to the mode with the smallest scaled distance
    :math:`r_k(x) = \lVert x - \mu_k \rVert / \sigma_k` (ties go to the lower index). It is
    *high quality* when that distance is below ``threshold`` (strictly: a sample exactly at
    ``threshold`` standard deviations is not). A mode is *captured* when at least one
    high-quality sample is assigned to it. With :math:`c_k` high-quality samples at mode
    :math:`k` and :math:`\hat p_k = c_k / \sum_j c_j`, the reverse KL is the divergence of
    that histogram from the uniform distribution over the :math:`K` modes,

    .. math:: \mathrm{KL}(\hat p \,\|\, U) = \sum_k \hat p_k \log(K \hat p_k), \qquad 0 \log 0 = 0,

    which is 0 when every mode holds the same share and :math:`\log K` when all
    high-quality samples sit at one mode. When no sample is high quality the histogram is
    undefined; the reverse KL is then set to :math:`\log K`, the worst value a histogram can
    reach, so that a run with no good samples ranks no better than a fully collapsed one and
    averages over seeds stay finite. (``modes == 0`` tells the two cases apart.)

    Args:
        samples: generated points, shape ``(n, d)`` or ``(seeds, n, d)``, a tensor or an
            array. Infinite coordinates are allowed (such samples are never high quality);
            NaN is not.
        mixture: the target, with ``means`` of shape ``(K, d)`` and isotropic ``stds`` of
            shape ``(K,)``, such as :func:`gan_lab.data.ring` or :func:`gan_lab.data.grid`.
        threshold: the high-quality radius, in standard deviations of the mode; > 0.

    Returns:
        A dict with ``modes`` (modes captured), ``high_quality`` (fraction of samples in
        :math:`[0, 1]`), ``reverse_kl`` (nats) and ``counts`` (high-quality samples per mode).
        For ``(n, d)`` samples these are an ``int``, two ``float`` and an int64 array of
        shape ``(K,)``; for ``(seeds, n, d)`` samples, arrays of shape ``(seeds,)`` and
        ``(seeds, K)``.

    Raises:
        TypeError: if ``mixture`` has no ``means`` and ``stds``.
        ValueError: for samples of the wrong shape, empty or containing NaN, or a
            threshold that is not > 0.
    """
    if not (hasattr(mixture, "means") and hasattr(mixture, "stds")):
        raise TypeError(f"mixture must have means and stds, got {type(mixture).__name__}")
    means = torch.as_tensor(mixture.means, dtype=torch.float64)  # (K, d)
    stds = torch.as_tensor(mixture.stds, dtype=torch.float64).reshape(-1)  # (K,)
    k = means.shape[0]
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold > 0:
        raise ValueError(f"threshold must be a number > 0, got {threshold!r}")
    x, batched = _as_samples(samples, means.shape[1])  # (S, n, d)
    seeds, n = x.shape[:2]

    flat = x.reshape(-1, x.shape[-1])  # (S * n, d)
    nearest, nearest_r = [], []
    for chunk in flat.split(_CHUNK):
        # direct differences, not the |x|^2 + |mu|^2 - 2 x.mu expansion, so distances are exact
        r = torch.cdist(chunk, means, compute_mode="donot_use_mm_for_euclid_dist") / stds  # (chunk, K)
        r = torch.nan_to_num(r, nan=math.inf)  # an infinite coordinate is infinitely far
        r_min, idx = r.min(dim=1)
        nearest_r.append(r_min)
        nearest.append(idx)
    r_min, idx = torch.cat(nearest_r).reshape(seeds, n), torch.cat(nearest).reshape(seeds, n)
    high = r_min < threshold  # (S, n)

    counts = torch.zeros(seeds, k, dtype=torch.int64).scatter_add_(1, idx, high.to(torch.int64))  # (S, K)
    total = counts.sum(1, keepdim=True)  # (S, 1)
    hist = counts.double() / total.clamp(min=1)  # (S, K)
    reverse_kl = torch.special.xlogy(hist, hist * k).sum(1)  # 0 log 0 = 0
    reverse_kl = torch.where(total[:, 0] > 0, reverse_kl, torch.full_like(reverse_kl, math.log(k)))

    modes = (counts > 0).sum(1).numpy()
    high_quality = (total[:, 0].double() / n).numpy()
    if batched:
        return {"modes": modes, "high_quality": high_quality, "reverse_kl": reverse_kl.numpy(), "counts": counts.numpy()}
    return {
        "modes": int(modes[0]),
        "high_quality": float(high_quality[0]),
        "reverse_kl": float(reverse_kl[0]),
        "counts": counts[0].numpy(),
    }
