r"""Sample-quality metrics for generators trained on Gaussian mixtures.

:func:`mode_stats` follows the protocol of VEEGAN (Srivastava et al., 2017) and PacGAN
(Lin et al., 2018) on the ring and grid benchmarks of :mod:`gan_lab.data`.
:func:`wasserstein1` and :func:`mmd_permutation_test` compare two samples directly.
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


# --- distances between samples: exact W1 and an MMD two-sample test ------------------------


def _as_point_sets(name: str, samples) -> tuple[torch.Tensor, bool]:
    """Points as a float64 CPU tensor of shape ``(seeds, n, d)`` (``(n,)`` is n points in 1-D), and whether batched."""
    if isinstance(samples, torch.Tensor):
        x = samples.detach().to("cpu", torch.float64)
    else:
        x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float64))  # also reversed views
    if x.ndim == 1:
        x = x[:, None]  # plain 1-D points
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (n,), (n, d) or (seeds, n, d), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    return (x, True) if x.ndim == 3 else (x[None], False)


def _pair(x, y) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Both samples as ``(S, n, d)`` and ``(S, m, d)``, a single ``(n, d)`` set broadcast over seeds."""
    (xs, x_batched), (ys, y_batched) = _as_point_sets("x", x), _as_point_sets("y", y)  # (Sx, n, d), (Sy, m, d)
    if xs.shape[-1] != ys.shape[-1]:
        raise ValueError(
            f"x and y must have the same dimension d (last axis), got shapes {tuple(xs.shape)} and {tuple(ys.shape)}"
        )
    if xs.shape[0] != ys.shape[0] and 1 not in (xs.shape[0], ys.shape[0]):
        raise ValueError(f"x and y must have the same number of seeds, got {xs.shape[0]} and {ys.shape[0]}")
    seeds = max(xs.shape[0], ys.shape[0])
    return xs.expand(seeds, -1, -1), ys.expand(seeds, -1, -1), x_batched or y_batched


def wasserstein1(x, y):
    r"""The exact Wasserstein-1 distance between two empirical distributions of equal size.

    For :math:`\hat P = \frac1n \sum_i \delta_{x_i}` and :math:`\hat Q = \frac1n \sum_j \delta_{y_j}`
    an optimal transport plan can be taken to be a permutation (Birkhoff), so

    .. math:: W_1(\hat P, \hat Q) = \min_{\pi} \frac1n \sum_i \lVert x_i - y_{\pi(i)} \rVert_2 .

    In one dimension the sorted matching is optimal:
    :math:`\frac1n \sum_i |x_{(i)} - y_{(i)}|`. In :math:`d > 1` dimensions the assignment
    problem on the Euclidean cost matrix is solved exactly by
    :func:`scipy.optimize.linear_sum_assignment`, in :math:`O(n^3)` time (about a second for
    :math:`n = 2000`). Computed in float64 on the CPU.

    Args:
        x: points, shape ``(n,)`` (1-D), ``(n, d)`` or ``(seeds, n, d)``; a tensor or an array.
        y: points, shape ``(n,)``, ``(n, d)`` or ``(seeds, n, d)``; a single ``(n, d)`` set
            is compared with every seed of the other argument.

    Returns:
        A ``float``, or an array of shape ``(seeds,)`` when either input has a seed axis.

    Raises:
        ValueError: if the samples differ in size (the distance here is between
            equal-size samples), in dimension or in number of seeds, or are empty or not
            finite.
    """
    xs, ys, batched = _pair(x, y)  # (S, n, d), (S, m, d)
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(
            f"x and y must be equal-size samples, got {xs.shape[1]} points in x and {ys.shape[1]} points in y"
        )
    if xs.shape[-1] == 1:
        xs_sorted, ys_sorted = xs[..., 0].sort(dim=1).values, ys[..., 0].sort(dim=1).values  # (S, n)
        w1 = (xs_sorted - ys_sorted).abs().mean(1).numpy()  # (S,)
    else:
        from scipy.optimize import linear_sum_assignment

        w1 = np.empty(xs.shape[0])
        for s in range(xs.shape[0]):
            cost = torch.cdist(xs[s], ys[s], compute_mode="donot_use_mm_for_euclid_dist").numpy()  # (n, n)
            rows, cols = linear_sum_assignment(cost)
            w1[s] = cost[rows, cols].mean()
    return w1 if batched else float(w1[0])


def mmd_permutation_test(x, y, bandwidths, n_permutations: int = 200, generator: torch.Generator | None = None) -> dict:
    r"""A permutation test of :math:`P = Q` with the unbiased :math:`\widehat{\mathrm{MMD}}{}^2` as statistic.

    Under :math:`H_0: P = Q` the pooled points are exchangeable, so the statistic's null
    distribution is that over random relabellings of the pool into groups of sizes
    :math:`n` and :math:`m` (Gretton et al., 2012). With :math:`B` permutations the p-value

    .. math:: \hat p = \frac{1 + \#\{b : \widehat{\mathrm{MMD}}{}^2_b \ge \widehat{\mathrm{MMD}}{}^2\}}{1 + B}

    is valid at every sample size: :math:`P(\hat p \le \alpha) \le \alpha` under :math:`H_0`.
    The kernel matrix of the pool is computed once and every permutation's statistic is
    read off it, all permutations in one matrix product. The bandwidths must not depend on
    the split into ``x`` and ``y`` (a fixed value, or
    :func:`gan_lab.losses.median_heuristic` of the pool, are fine).

    Args:
        x: samples from :math:`P`, shape ``(n, d)`` or ``(seeds, n, d)``, :math:`n \ge 2`.
        y: samples from :math:`Q`, shape ``(m, d)`` or ``(seeds, m, d)``, :math:`m \ge 2`;
            a single set is compared with every seed of the other argument.
        bandwidths: the kernel's bandwidths, as in :func:`gan_lab.losses.gaussian_kernel`.
        n_permutations: the number :math:`B` of random relabellings, at least 1.
        generator: the random generator for the permutations (a CPU generator).

    Returns:
        A dict with ``mmd2`` (the unbiased statistic) and ``p_value``: ``float`` for
        ``(n, d)`` inputs, arrays of shape ``(seeds,)`` otherwise (each seed tested with
        the same permutations).

    Raises:
        ValueError: if a sample has fewer than 2 points, the dimensions differ, a
            bandwidth is not finite and > 0, or ``n_permutations`` is not a positive int.
    """
    from gan_lab.losses import _bandwidths, _kernel

    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}")
    xs, ys, batched = _pair(x, y)  # (S, n, d), (S, m, d)
    n, m = xs.shape[1], ys.shape[1]
    if min(n, m) < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 points in each sample, got {n} in x and {m} in y")
    pool = torch.cat([xs, ys], dim=1)  # (S, N, d)
    k = _kernel(pool, pool, _bandwidths(bandwidths, pool))  # (S, N, N)
    k.diagonal(dim1=-2, dim2=-1).zero_()  # the U-statistic leaves out k(z_i, z_i)
    total = k.sum((-2, -1))  # (S,)

    # Row 0: the observed split; rows 1..B: random relabellings. is_x[b, i] = 1 if z_i goes to x.
    keys = torch.rand(n_permutations, n + m, generator=generator, dtype=torch.float64)  # (B, N)
    is_x = torch.zeros(n_permutations + 1, n + m, dtype=torch.float64)
    is_x[0, :n] = 1
    is_x[1:].scatter_(1, keys.argsort(dim=1)[:, :n], 1.0)
    row_x = is_x @ k  # (S, B+1, N): sum over i in x of k(z_i, z_j)
    sum_xx = (row_x * is_x).sum(-1)  # (S, B+1)
    sum_xy = (row_x * (1 - is_x)).sum(-1)
    sum_yy = total[:, None] - sum_xx - 2 * sum_xy
    stats = sum_xx / (n * (n - 1)) + sum_yy / (m * (m - 1)) - 2 * sum_xy / (n * m)  # (S, B+1)
    observed = stats[:, 0]
    p_value = (1 + (stats[:, 1:] >= observed[:, None]).sum(1)) / (1 + n_permutations)  # (S,)
    if batched:
        return {"mmd2": observed.numpy(), "p_value": p_value.numpy()}
    return {"mmd2": float(observed[0]), "p_value": float(p_value[0])}
