r"""Sample-quality metrics: mode coverage, distances between samples, and image metrics.

:func:`mode_stats` follows the protocol of VEEGAN (Srivastava et al., 2017) and PacGAN
(Lin et al., 2018) on the ring and grid benchmarks of :mod:`gan_lab.distributions`.
:func:`wasserstein1` and :func:`mmd_permutation_test` compare two samples directly.
:func:`classifier_fid`, :func:`class_histogram` and :func:`nearest_neighbours` judge
images through :mod:`gan_lab.classifier`. The critic measurements
(:func:`gan_lab.critics.lipschitz_on`, :func:`gan_lab.critics.critic_w1_bound`,
:func:`gan_lab.critics.quadratic_r2`) live in :mod:`gan_lab.critics` and are re-exported here.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from . import checks
from .classifier import as_float_images, classifier_features, predict  # noqa: F401 (re-exported)
from .critics import critic_w1_bound, lipschitz_on, quadratic_r2  # noqa: F401 (re-exported)
from .distributions import as_point_pair

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
            shape ``(K,)``, such as :func:`gan_lab.distributions.ring` or :func:`gan_lab.distributions.grid`.
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
    xs, ys, batched = as_point_pair(x, y)  # (S, n, d), (S, m, d)
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


@checks.renamed(generator="rng")
def mmd_permutation_test(x, y, bandwidths, n_permutations: int = 200,
                         rng: torch.Generator | None = None) -> dict:
    r"""A permutation test of :math:`P = Q` with the unbiased :math:`\widehat{\mathrm{MMD}}{}^2` as statistic.

    Under :math:`H_0: P = Q` the pooled points are exchangeable, so the statistic's null
    distribution is that over random relabellings of the pool into groups of sizes
    :math:`n` and :math:`m` (Gretton et al., 2012). With :math:`B` permutations the p-value

    .. math:: \hat p = \frac{1 + \#\{b : \widehat{\mathrm{MMD}}{}^2_b \ge \widehat{\mathrm{MMD}}{}^2\}}{1 + B}

    is valid at every sample size: :math:`P(\hat p \le \alpha) \le \alpha` under :math:`H_0`
    (counting the observed split among the relabellings makes it conservative: equality
    holds only when :math:`\alpha (1 + B)` is an integer, and :math:`\hat p \ge 1/(1 + B)`).
    The kernel matrix of the pool is computed once and every permutation's statistic is
    read off it, all permutations in one matrix product, so every relabelling uses the same
    kernel. The bandwidths must not depend on the split into ``x`` and ``y``: a bandwidth
    tuned on the observed ``x`` alone would favour the observed split over the
    relabellings. A fixed value, or ``bandwidths="median"``, the median heuristic
    (:func:`gan_lab.mmd.median_heuristic`) of the pooled sample, which no relabelling
    changes, are valid.

    Args:
        x: samples from :math:`P`, shape ``(n, d)`` or ``(seeds, n, d)``, :math:`n \ge 2`.
        y: samples from :math:`Q`, shape ``(m, d)`` or ``(seeds, m, d)``, :math:`m \ge 2`;
            a single set is compared with every seed of the other argument.
        bandwidths: the kernel's bandwidths, as in :func:`gan_lab.mmd.gaussian_kernel`,
            or ``"median"``: the median heuristic of each seed's pooled sample.
        n_permutations: the number :math:`B` of random relabellings, at least 1.
        rng: the random generator for the permutations (on any device; ``generator=`` is
            accepted too).

    Returns:
        A dict with ``mmd2`` (the unbiased statistic) and ``p_value``: ``float`` for
        ``(n, d)`` inputs, arrays of shape ``(seeds,)`` otherwise (each seed tested with
        the same permutations).

    Raises:
        ValueError: if a sample has fewer than 2 points, the dimensions differ, a
            bandwidth is not finite and > 0, or ``n_permutations`` is not a positive int.
    """
    from .mmd import gaussian_kernel, median_heuristic

    n_permutations = checks.positive_int("n_permutations", n_permutations)
    xs, ys, batched = as_point_pair(x, y)  # (S, n, d), (S, m, d)
    n, m = xs.shape[1], ys.shape[1]
    if min(n, m) < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 points in each sample, got {n} in x and {m} in y")
    pool = torch.cat([xs, ys], dim=1)  # (S, N, d)
    if isinstance(bandwidths, str):
        if bandwidths != "median":
            raise ValueError(f'bandwidths must be numbers or "median", got {bandwidths!r}')
        bandwidths = median_heuristic(xs, ys)  # (S, 1): a function of the pool only
    k = gaussian_kernel(pool, pool, bandwidths)  # (S, N, N)
    k.diagonal(dim1=-2, dim2=-1).zero_()  # the U-statistic leaves out k(z_i, z_i)
    total = k.sum((-2, -1))  # (S,)

    # Row 0: the observed split; rows 1..B: random relabellings. is_x[b, i] = 1 if z_i goes to x.
    # drawn where rng lives (any device), used on the CPU
    dev = rng.device if rng is not None else torch.device("cpu")
    keys = torch.rand(n_permutations, n + m, generator=rng, device=dev, dtype=torch.float64).cpu()  # (B, N)
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


# --- images: Frechet distance on classifier features, class histograms, nearest neighbours --


def _mean_cov(name: str, mu, sigma) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu.detach().cpu().double().numpy() if isinstance(mu, torch.Tensor) else mu, dtype=np.float64)
    sigma = np.asarray(sigma.detach().cpu().double().numpy() if isinstance(sigma, torch.Tensor) else sigma,
                       dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ValueError(f"{name}: mean must have shape (d,) and covariance (d, d), got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{name}: mean and covariance must be finite")
    if not np.allclose(sigma, sigma.T, rtol=1e-6, atol=1e-10 * max(1.0, float(np.abs(sigma).max()))):
        raise ValueError(f"{name}: covariance must be symmetric")
    return mu, 0.5 * (sigma + sigma.T)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a positive semi-definite matrix (negative round-off eigenvalues set to 0)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""The Fréchet (2-Wasserstein squared) distance between two Gaussians.

    .. math:: d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\bigl(\Sigma_1 + \Sigma_2
              - 2 (\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{1/2}\bigr),

    the formula behind FID (Heusel et al. 2017). The trace of the matrix square root is
    computed from the eigenvalues of the symmetric matrix
    :math:`\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}`, which has the same trace of square root
    as :math:`\Sigma_1 \Sigma_2` but, being symmetric, no complex round-off.

    Args:
        mu1: mean ``(d,)``; array or tensor.
        sigma1: covariance ``(d, d)``, symmetric positive semi-definite.
        mu2: mean ``(d,)``.
        sigma2: covariance ``(d, d)``.

    Returns:
        The distance (float, >= 0 up to round-off; clipped at 0).

    Raises:
        ValueError: for shapes that do not match, non-finite or non-symmetric input.
    """
    mu1, sigma1 = _mean_cov("first Gaussian", mu1, sigma1)
    mu2, sigma2 = _mean_cov("second Gaussian", mu2, sigma2)
    if mu1.shape != mu2.shape:
        raise ValueError(
            "the two Gaussians must have the same dimension, "
            f"got {mu1.size} and {mu2.size}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1  # symmetric, same eigenvalues as S1 S2
    eig = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()  # round-off below 0 -> 0
    mean_term = float(((mu1 - mu2) ** 2).sum())
    d2 = mean_term + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt
    return max(float(d2), 0.0)


def classifier_fid(images_a, images_b, classifier, batch_size: int = 500) -> float:
    r"""FID on a classifier's features: :func:`frechet_distance` between Gaussians fitted to
    the penultimate-layer features of two image sets.

    This is *not* the FID of the literature, which uses Inception-v3 features of resized
    RGB images; values on different feature extractors are not comparable, only rankings
    are. The estimate is biased upwards for finite sets, so compare sets of equal size and
    report the real-versus-real value beside it.

    Args:
        images_a: images (uint8 or floats in ``[-1, 1]``), ``(N, 28, 28)`` or ``(N, 1, 28, 28)``.
        images_b: another set, same format.
        classifier: a network with ``features(x)`` (:class:`gan_lab.classifier.MNISTClassifier`).
        batch_size: images per forward pass.

    Returns:
        The distance (float).
    """
    fa = classifier_features(images_a, classifier, batch_size).numpy()  # (N, h)
    fb = classifier_features(images_b, classifier, batch_size).numpy()  # (M, h)
    return frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))


def class_histogram(images, classifier, n_classes: int = 10) -> np.ndarray:
    """Counts of the classifier's predicted classes over ``images``: int64 array ``(n_classes,)``."""
    n_classes = checks.positive_int("n_classes", n_classes)
    pred = predict(classifier, images)
    return np.bincount(pred.numpy(), minlength=n_classes).astype(np.int64)


def kl_to_uniform(counts) -> float:
    r"""The KL divergence (nats) of a histogram from the uniform distribution:
    :math:`\sum_k \hat p_k \log(K \hat p_k)`, 0 for equal counts, :math:`\log K` for one class."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 1 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"counts must be a 1-D array of non-negative numbers with a positive sum, got {counts!r}")
    p = counts / counts.sum()
    nz = p > 0
    return float((p[nz] * np.log(counts.size * p[nz])).sum())


@torch.no_grad()
def nearest_neighbours(queries, references, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image, the closest reference image in pixel space (Euclidean, on ``[-1, 1]`` pixels).

    A memorisation check: samples that are near-copies of training images sit much closer
    to their nearest training image than held-out real images do.

    Args:
        queries: images ``(N, ...)`` (uint8 or floats in ``[-1, 1]``).
        references: images ``(M, ...)``, same format.
        chunk: references per distance block.

    Returns:
        ``(distances, indices)``, each ``(N,)``: float64 and int64, on the CPU.
    """
    chunk = checks.positive_int("chunk", chunk)
    q = as_float_images(queries).flatten(1).double().cpu()  # (N, 784)
    r = as_float_images(references).flatten(1).double().cpu()  # (M, 784)
    best_d = torch.full((len(q),), math.inf, dtype=torch.float64)
    best_i = torch.zeros(len(q), dtype=torch.int64)
    for start in range(0, len(r), chunk):
        # from the differences, so an exact copy is at distance 0 (no |q|^2 + |r|^2 - 2 q.r round-off)
        d = torch.cdist(q, r[start:start + chunk], compute_mode="donot_use_mm_for_euclid_dist")  # (N, chunk)
        val, idx = d.min(1)
        better = val < best_d
        best_d = torch.where(better, val, best_d)
        best_i = torch.where(better, idx + start, best_i)
    return best_d, best_i
