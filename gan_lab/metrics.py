r"""Sample-quality metrics: mode coverage, distances between samples, and image metrics.

:func:`mode_stats` follows the protocol of VEEGAN (Srivastava et al., 2017) and PacGAN
(Lin et al., 2018) on the ring and grid benchmarks of :mod:`gan_lab.distributions`.
:func:`wasserstein1` and :func:`mmd_permutation_test` compare two samples directly.
:func:`classifier_fid`, :func:`class_histogram` and :func:`nearest_neighbours` judge
images through :mod:`gan_lab.classifier`. On feature vectors (a classifier's, or any
other), :func:`precision_recall` measures quality and coverage separately with
k-nearest-neighbour manifolds (Kynkäänniemi et al., 2019) and :func:`kid` is the Kernel
Inception Distance (Bińkowski et al., 2018) with its standard error. The critic measurements
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


# --- feature-space metrics: precision and recall of k-NN manifolds, KID -----------------------


def _feature_set(name: str, features) -> tuple[torch.Tensor, bool]:
    """Features as a float64 CPU tensor ``(seeds, n, d)``, and whether they came batched."""
    if isinstance(features, torch.Tensor):
        if not features.is_floating_point():
            raise TypeError(f"{name} must hold floating-point features, got dtype {features.dtype}")
        x = features.detach().to("cpu", torch.float64)
    else:
        a = np.asarray(features)
        if a.dtype.kind != "f":
            raise TypeError(f"{name} must hold floating-point features, got dtype {a.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (n, d) or (seeds, n, d), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    return (x, True) if x.ndim == 3 else (x[None], False)


def _feature_pair(name_a: str, a, name_b: str, b) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Two feature sets as ``(S, n, d)`` and ``(S, m, d)``; a single ``(n, d)`` set is broadcast over seeds."""
    (xa, batched_a), (xb, batched_b) = _feature_set(name_a, a), _feature_set(name_b, b)
    if xa.shape[-1] != xb.shape[-1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same feature dimension d (last axis), "
            f"got shapes {tuple(xa.shape)} and {tuple(xb.shape)}"
        )
    if xa.shape[0] != xb.shape[0] and 1 not in (xa.shape[0], xb.shape[0]):
        raise ValueError(f"{name_a} and {name_b} must have the same number of seeds, got {xa.shape[0]} and {xb.shape[0]}")
    seeds = max(xa.shape[0], xb.shape[0])
    return xa.expand(seeds, -1, -1), xb.expand(seeds, -1, -1), batched_a or batched_b


def _blocks(seeds: int, n: int, chunk: int):
    """(seed slice, row slice) pairs covering ``seeds x n`` rows, about ``chunk`` rows at a time."""
    if n >= chunk:
        for s in range(seeds):
            for start in range(0, n, chunk):
                yield slice(s, s + 1), slice(start, min(start + chunk, n))
    else:
        group = max(1, chunk // n)  # whole seeds, several at a time
        for s in range(0, seeds, group):
            yield slice(s, min(s + group, seeds)), slice(0, n)


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # the Gram expansion |a|^2 + |b|^2 - 2 a.b in float64: about 4x faster than from differences
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist")  # (g, c, m)


def _knn_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour among the other points of its set: (S, n)."""
    seeds, n, _ = x.shape
    radius = torch.empty(seeds, n, dtype=torch.float64)
    for s, rows in _blocks(seeds, n, chunk):
        d = _distances(x[s, rows], x[s])  # (g, c, n)
        own = torch.arange(rows.start, rows.stop)
        d[:, own - rows.start, own] = math.inf  # leave the point itself out (by index, not by distance)
        radius[s, rows] = d.topk(k, dim=-1, largest=False).values[..., -1]
    return radius


@torch.no_grad()
def precision_recall(real, fake, k: int = 3, chunk: int = 512) -> dict:
    r"""Precision and recall of generated features against real ones (Kynkäänniemi et al., 2019).

    Each set estimates the support of its distribution by a union of balls: around every
    point :math:`\phi` of a set :math:`\Phi`, the ball whose radius is the distance to
    :math:`\phi`'s :math:`k`-th nearest neighbour among the *other* points of
    :math:`\Phi` (the point itself is left out by index),

    .. math:: \mathcal M(\Phi) = \bigcup_{\phi \in \Phi} \bigl\{ z : \lVert z - \phi \rVert_2
              \le \lVert \phi - \mathrm{NN}_k(\phi, \Phi \setminus \{\phi\}) \rVert_2 \bigr\}.

    With real features :math:`\Phi_r` (:math:`n` points) and generated ones :math:`\Phi_g`
    (:math:`m` points),

    .. math:: \mathrm{precision} = \frac1m \sum_{\phi \in \Phi_g} 1[\phi \in \mathcal M(\Phi_r)],
              \qquad
              \mathrm{recall} = \frac1n \sum_{\phi \in \Phi_r} 1[\phi \in \mathcal M(\Phi_g)] :

    precision is the share of generated points that look real (quality), recall the share
    of real points the generator covers (diversity); dropping modes lowers recall only,
    blurring lowers precision. Boundaries count as inside, so identical sets score
    :math:`1` and :math:`1`. Neither is a consistent estimate of a property of the two
    distributions alone: both depend on :math:`k`, :math:`n`, :math:`m` and the feature
    dimension, so compare values at equal settings.

    The distances are computed in float64 blocks of ``chunk`` rows (memory about
    ``chunk * max(n, m) * 8`` bytes per block, so :math:`n = m = 20\,000` runs in bounded
    memory) by the Gram expansion :math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2 a^\top b`
    after subtracting the real mean, so a comparison within round-off (about
    :math:`10^{-15}` of the squared norms) of the boundary may go either way; in
    particular a point with an exact duplicate among its set has radius 0 only up to
    round-off when :math:`k` is small. The time is :math:`O((n + m)^2 d)`. Deterministic.

    Args:
        real: real features, shape ``(n, d)`` or ``(seeds, n, d)``: a floating-point
            tensor or array.
        fake: generated features, shape ``(m, d)`` or ``(seeds, m, d)``; a single
            ``(n, d)`` set on either side is compared with every seed of the other.
        k: the neighbour that sets the radii, :math:`1 \le k < \min(n, m)`; 3 in the paper.
        chunk: rows per distance block.

    Returns:
        A dict with ``precision`` and ``recall`` (``float``, or arrays ``(seeds,)`` for
        batched input), ``fake_inside`` and ``real_inside`` (bool arrays ``(m,)`` and
        ``(n,)``, or with a leading seed axis: which generated points lie in the real
        manifold and which real points in the generated one), and ``real_radius`` and
        ``fake_radius`` (float64 arrays of the balls' radii, same shapes).

    Raises:
        TypeError: if a set does not hold floating-point numbers.
        ValueError: for a set of the wrong shape, empty or not finite; sets of different
            feature dimension or number of seeds; ``k`` not a positive int or not below
            the size of each set; ``chunk`` not a positive int.
    """
    k = checks.positive_int("k", k)
    chunk = checks.positive_int("chunk", chunk)
    xr, xf, batched = _feature_pair("real", real, "fake", fake)  # (S, n, d), (S, m, d)
    n, m = xr.shape[1], xf.shape[1]
    if k >= n or k >= m:
        raise ValueError(
            f"k must be smaller than the number of points in each set (the k-th neighbour among the "
            f"others), got k={k} with {n} real and {m} fake points"
        )
    centre = xr.mean(1, keepdim=True)  # (S, 1, d): translation leaves distances unchanged
    xr, xf = xr - centre, xf - centre
    seeds = xr.shape[0]
    real_radius, fake_radius = _knn_radius(xr, k, chunk), _knn_radius(xf, k, chunk)  # (S, n), (S, m)

    real_inside = torch.zeros(seeds, n, dtype=torch.bool)
    fake_inside = torch.zeros(seeds, m, dtype=torch.bool)
    for s, rows in _blocks(seeds, n, chunk):
        d = _distances(xr[s, rows], xf[s])  # (g, c, m): real rows, fake columns
        real_inside[s, rows] = (d <= fake_radius[s, None, :]).any(-1)
        fake_inside[s] |= (d <= real_radius[s, rows, None]).any(-2)
    precision = fake_inside.double().mean(1).numpy()  # (S,)
    recall = real_inside.double().mean(1).numpy()
    out = {
        "precision": precision,
        "recall": recall,
        "fake_inside": fake_inside.numpy(),
        "real_inside": real_inside.numpy(),
        "real_radius": real_radius.numpy(),
        "fake_radius": fake_radius.numpy(),
    }
    if batched:
        return out
    return {key: float(v[0]) if v.ndim == 1 else v[0] for key, v in out.items()}


def _cubic_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(a.b / d + 1)^3 for every pair: (g, c, d), (g, m, d) -> (g, c, m)."""
    one = torch.ones((), dtype=a.dtype)
    return torch.baddbmm(one, a, b.transpose(-2, -1), alpha=1 / a.shape[-1]).pow_(3)  # in place: half the time


def _kernel_row_sums(a: torch.Tensor, b: torch.Tensor, same: bool, chunk: int):
    """Row sums and row sums of squares of the kernel matrix k(a, b) (diagonal left out when ``same``),
    and, when not ``same``, its column sums and column sums of squares: tensors (S, n) / (S, m)."""
    seeds, n, _ = a.shape
    rows_sum = torch.empty(seeds, n, dtype=torch.float64)
    rows_sq = torch.empty(seeds, n, dtype=torch.float64)
    cols_sum = torch.zeros(seeds, b.shape[1], dtype=torch.float64)
    cols_sq = torch.zeros(seeds, b.shape[1], dtype=torch.float64)
    for s, rows in _blocks(seeds, n, chunk):
        kern = _cubic_kernel(a[s, rows], b[s])  # (g, c, m)
        if same:
            own = torch.arange(rows.start, rows.stop)
            kern[:, own - rows.start, own] = 0.0  # the U-statistic leaves out k(x_i, x_i)
        kern_sq = kern * kern
        rows_sum[s, rows] = kern.sum(-1)
        rows_sq[s, rows] = kern_sq.sum(-1)
        if not same:
            cols_sum[s] += kern.sum(-2)
            cols_sq[s] += kern_sq.sum(-2)
    return rows_sum, rows_sq, cols_sum, cols_sq


@torch.no_grad()
def kid(x, y, chunk: int = 512, return_se: bool = True):
    r"""The Kernel Inception Distance (Bińkowski et al., 2018): the unbiased :math:`\widehat{\mathrm{MMD}}{}^2`
    with a cubic polynomial kernel on features, and its standard error.

    With the kernel :math:`k(a, b) = (a^\top b / d + 1)^3` on :math:`d`-dimensional
    features, :math:`x_1, \dots, x_n \sim P` and :math:`y_1, \dots, y_m \sim Q`,

    .. math:: \widehat{\mathrm{KID}} = \frac{\sum_{i \ne i'} k(x_i, x_{i'})}{n(n-1)}
              + \frac{\sum_{j \ne j'} k(y_j, y_{j'})}{m(m-1)}
              - \frac{2}{nm} \sum_{i,j} k(x_i, y_j),

    the U-statistic on *all* pairs (the Gaussian-kernel version is
    :func:`gan_lab.mmd.mmd2`). Its mean is :math:`\mathrm{MMD}^2(P, Q)` at every
    sample size, so unlike FID it has no bias to subtract, and for :math:`P = Q` it is
    negative in about half of the draws (often a little more: its law is skewed). Common implementations average the statistic over
    random subsets (for instance 100 subsets of 1000 points); that mean has the same
    expectation but a larger variance, and the spread of overlapping subsets, divided by
    the root of their number, is no standard error of it.

    The standard error here comes from an unbiased estimate of the estimator's exact
    finite-sample variance, over fresh draws of both sets. By the Hoeffding decomposition
    that variance is

    .. math:: \operatorname{Var} \widehat{\mathrm{KID}}
              = \frac{4 \operatorname{Var}_P w(X)}{n} + \frac{4 \operatorname{Var}_Q w(Y)}{m}
              + \frac{2 E\,\tilde k_P(X, X')^2}{n(n-1)} + \frac{2 E\,\tilde k_Q(Y, Y')^2}{m(m-1)}
              + \frac{4 E\,\tilde k_{PQ}(X, Y)^2}{nm},

    with the witness :math:`w = \mu_P - \mu_Q` (:math:`\mu_P(z) = E\,k(X, z)`) and the
    centred kernels :math:`\tilde k_P(a, b) = k(a, b) - \mu_P(a) - \mu_P(b) + E\,k(X, X')`,
    :math:`\tilde k_Q` likewise and :math:`\tilde k_{PQ}(a, b) = k(a, b) - \mu_Q(a) -
    \mu_P(b) + E\,k(X, Y)`. Every expectation in it is a moment such as
    :math:`E[k(X, X') k(X, X'')]` or :math:`E[k(X_1, X_2)] E[k(X_3, Y)]`, estimated without
    bias by an average over *distinct* indices, which the kernel matrices' row and column
    sums give in closed form. The sum, ``variance``, is an unbiased estimate of the
    variance (at :math:`P = Q`, where the first two terms vanish, as elsewhere; it can
    come out negative for tiny samples) and ``se`` is its square root, clipped at 0.
    The kernel matrices are formed in float64 blocks of ``chunk`` rows, never whole:
    time :math:`O((n + m)^2 d)`, memory about ``chunk * max(n, m) * 8`` bytes.

    Args:
        x: features of one set (real), shape ``(n, d)`` or ``(seeds, n, d)``: a
            floating-point tensor or array; :math:`n \ge 2` (:math:`\ge 4` with the SE).
        y: features of the other (generated), shape ``(m, d)`` or ``(seeds, m, d)``; a
            single set on either side is compared with every seed of the other.
        chunk: rows per kernel block.
        return_se: also return the standard error.

    Returns:
        With ``return_se``, a dict with ``kid``, ``se`` and ``variance``; otherwise the
        estimate alone. Each a ``float``, or an array ``(seeds,)`` for batched input.

    Raises:
        TypeError: if a set does not hold floating-point numbers.
        ValueError: for a set of the wrong shape, empty, not finite or too small; sets
            of different feature dimension or number of seeds; ``chunk`` not a positive
            int; ``return_se`` not a bool.
    """
    chunk = checks.positive_int("chunk", chunk)
    return_se = checks.boolean("return_se", return_se)
    xs, ys, batched = _feature_pair("x", x, "y", y)  # (S, n, d), (S, m, d)
    n, m = xs.shape[1], ys.shape[1]
    least = 4 if return_se else 2
    if min(n, m) < least:
        raise ValueError(
            f"x and y must hold at least {least} points each for the unbiased estimate"
            f"{' and its standard error' if return_se else ''}, got {n} in x and {m} in y"
        )
    r_x, q_x, _, _ = _kernel_row_sums(xs, xs, True, chunk)  # (S, n): sum_{i' != i} k, k^2
    r_y, q_y, _, _ = _kernel_row_sums(ys, ys, True, chunk)  # (S, m)
    c_x, cq_x, c_y, cq_y = _kernel_row_sums(xs, ys, False, chunk)  # (S, n), (S, n), (S, m), (S, m)
    s_xx, s_yy, s_xy = r_x.sum(1), r_y.sum(1), c_x.sum(1)  # (S,)
    m_xx, m_yy, m_xy = s_xx / (n * (n - 1)), s_yy / (m * (m - 1)), s_xy / (n * m)
    estimate = (m_xx + m_yy - 2 * m_xy).numpy()
    if not return_se:
        return estimate if batched else float(estimate[0])

    # unbiased estimates of the moments, each an average over distinct indices
    q_xx, q_yy, q_xy = q_x.sum(1), q_y.sum(1), cq_x.sum(1)  # sums of squared entries
    t_xx = (r_x**2 - q_x).sum(1)  # sum over distinct (i, i', i'') of k(x_i, x_i') k(x_i, x_i'')
    t_yy = (r_y**2 - q_y).sum(1)
    rc_x, rc_y = (r_x * c_x).sum(1), (r_y * c_y).sum(1)  # sum_i r_i c_i: k(x_i, x_i') k(x_i, y_j)
    e_kxx2, e_kyy2, e_kxy2 = q_xx / (n * (n - 1)), q_yy / (m * (m - 1)), q_xy / (n * m)
    e_pp_x = t_xx / (n * (n - 1) * (n - 2))  # E mu_P(X)^2
    e_qq_y = t_yy / (m * (m - 1) * (m - 2))  # E mu_Q(Y)^2
    e_qq_x = (c_x**2 - cq_x).sum(1) / (n * m * (m - 1))  # E mu_Q(X)^2
    e_pp_y = (c_y**2 - cq_y).sum(1) / (m * n * (n - 1))  # E mu_P(Y)^2
    e_pq_x = rc_x / (n * (n - 1) * m)  # E mu_P(X) mu_Q(X)
    e_pq_y = rc_y / (m * (m - 1) * n)  # E mu_Q(Y) mu_P(Y)
    # products of two means, over four distinct points
    m_xx2 = (s_xx**2 - 4 * t_xx - 2 * q_xx) / (n * (n - 1) * (n - 2) * (n - 3))
    m_yy2 = (s_yy**2 - 4 * t_yy - 2 * q_yy) / (m * (m - 1) * (m - 2) * (m - 3))
    m_xy2 = (s_xy**2 - (c_x**2).sum(1) - (c_y**2).sum(1) + q_xy) / (n * (n - 1) * m * (m - 1))
    m_xx_xy = (s_xx * s_xy - 2 * rc_x) / (n * (n - 1) * (n - 2) * m)
    m_yy_xy = (s_yy * s_xy - 2 * rc_y) / (m * (m - 1) * (m - 2) * n)

    var_w_p = e_pp_x - 2 * e_pq_x + e_qq_x - (m_xx2 - 2 * m_xx_xy + m_xy2)  # Var_P w(X)
    var_w_q = e_qq_y - 2 * e_pq_y + e_pp_y - (m_yy2 - 2 * m_yy_xy + m_xy2)  # Var_Q w(Y)
    k_p2 = e_kxx2 - 2 * e_pp_x + m_xx2  # E k~_P(X, X')^2
    k_q2 = e_kyy2 - 2 * e_qq_y + m_yy2
    k_pq2 = e_kxy2 - e_qq_x - e_pp_y + m_xy2
    variance = (4 * var_w_p / n + 4 * var_w_q / m + 2 * k_p2 / (n * (n - 1))
                + 2 * k_q2 / (m * (m - 1)) + 4 * k_pq2 / (n * m)).numpy()
    se = np.sqrt(np.clip(variance, 0, None))
    if batched:
        return {"kid": estimate, "se": se, "variance": variance}
    return {"kid": float(estimate[0]), "se": float(se[0]), "variance": float(variance[0])}
