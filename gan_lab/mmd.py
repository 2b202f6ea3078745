r"""Kernels and the maximum mean discrepancy (MMD): two-sample statistics as functions of samples.

Gaussian kernels with one or several bandwidths (summed), the unbiased and biased estimators
of :math:`\mathrm{MMD}^2` (Gretton et al., 2012), the median heuristic for the bandwidth and
the witness function. Differentiable and batched over seeds: samples ``(n, d)`` or
``(S, n, d)``. Used as a loss by :func:`gan_lab.train.fit_mmd` and as a test statistic by
:func:`gan_lab.metrics.mmd_permutation_test`; :mod:`gan_lab.losses` re-exports them.
"""

from __future__ import annotations

import torch


def _check_samples(name: str, x, min_n: int = 1) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., n, d) with d >= 1, got {tuple(x.shape)}")
    if x.shape[-2] < min_n:
        raise ValueError(f"{name} must hold at least {min_n} sample(s) (dimension -2), got shape {tuple(x.shape)}")
    return x


def _check_same_dim(x: torch.Tensor, y: torch.Tensor, names: str = "x and y") -> None:
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{names} must have the same dimension d (last axis), got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )


def _bandwidths(bandwidths, like: torch.Tensor) -> torch.Tensor:
    """Bandwidths as a tensor of shape ``(..., k)`` on ``like``'s device and dtype, checked > 0 and finite."""
    if isinstance(bandwidths, bool):
        raise TypeError("bandwidths must be a number, a sequence of numbers or a tensor, got bool")
    try:
        sigma = torch.as_tensor(bandwidths, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"bandwidths must be a number, a sequence of numbers or a tensor, got {bandwidths!r}") from err
    if sigma.ndim == 0:
        sigma = sigma[None]  # (1,)
    if sigma.numel() == 0:
        raise ValueError("bandwidths must not be empty")
    if not bool(torch.isfinite(sigma).all()) or not bool((sigma > 0).all()):
        raise ValueError(f"bandwidths must be finite and > 0, got {sigma.detach().cpu().tolist()}")
    return sigma


def _kernel(x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    # exact squared distances from differences (no |x|^2 + |y|^2 - 2 x.y cancellation)
    sq = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist") ** 2  # (..., n, m)
    scale = 2 * sigma**2  # (..., k)
    return torch.exp(-sq[..., None] / scale[..., None, None, :]).sum(-1)  # (..., n, m)


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, bandwidths) -> torch.Tensor:
    r"""The Gaussian kernel matrix, summed over bandwidths: :math:`k(x, y) = \sum_\sigma \exp(-\lVert x - y \rVert^2 / (2\sigma^2))`.

    A sum over several bandwidths :math:`\sigma` (a "mixture" of kernels, as in the MMD
    GAN of Li et al. 2017) is again a characteristic kernel and is less sensitive to the choice
    of any one scale. Squared distances are computed from the differences, so
    :math:`k(x, x)` is exactly the number of bandwidths.

    Args:
        x: points of shape ``(..., n, d)``.
        y: points of shape ``(..., m, d)``; the leading dimensions broadcast against ``x``'s.
        bandwidths: :math:`\sigma > 0`: a number, a sequence of numbers, or a tensor of
            shape ``(..., k)`` whose last axis lists the bandwidths summed over and whose
            leading axes broadcast against the batch (so one bandwidth per batch index is
            shape ``(..., 1)``, as :func:`median_heuristic` returns).

    Returns:
        The kernel matrix, shape ``(..., n, m)``.

    Raises:
        TypeError: if ``x`` or ``y`` is not a floating-point tensor.
        ValueError: if a bandwidth is not finite and > 0, or ``x`` and ``y`` have
            different dimensions.
    """
    x, y = _check_samples("x", x), _check_samples("y", y)
    _check_same_dim(x, y)
    return _kernel(x, y, _bandwidths(bandwidths, x))


def mmd2(
    x: torch.Tensor, y: torch.Tensor, bandwidths, unbiased: bool = True
) -> torch.Tensor:
    r"""An estimate of the squared MMD between the laws of ``x`` and ``y``.

    .. math::
        \mathrm{MMD}^2(P, Q) = E\,k(X, X') + E\,k(Y, Y') - 2 E\,k(X, Y)

    for independent :math:`X, X' \sim P` and :math:`Y, Y' \sim Q`, with the
    Gaussian kernel of :func:`gaussian_kernel` (Gretton et al., 2012). The
    unbiased U-statistic leaves out the diagonal terms :math:`k(x_i, x_i)`
    and :math:`k(y_j, y_j)`:

    .. math::
        \widehat{\mathrm{MMD}}{}^2_u
        = \frac{\sum_{i \ne i'} k(x_i, x_{i'})}{n(n-1)}
        + \frac{\sum_{j \ne j'} k(y_j, y_{j'})}{m(m-1)}
        - \frac{2}{nm} \sum_{i,j} k(x_i, y_j).

    Its mean is :math:`\mathrm{MMD}^2`, so when :math:`P = Q` it takes
    negative values. Its null distribution is not symmetric: it is skewed
    to the right (for large samples a weighted sum of centred chi-squares),
    so it is typically negative in more than half of the draws (Chapter 6
    measures the share). The biased V-statistic keeps the diagonals; it is
    never negative, and its mean exceeds :math:`\mathrm{MMD}^2` by

    .. math::
        \frac{E\,k(X, X) - E\,k(X, X')}{n}
        + \frac{E\,k(Y, Y) - E\,k(Y, Y')}{m},

    for example :math:`2 (1 - 1 / \sqrt{3}) / 50 \approx 0.0169` for
    :math:`P = Q = N(0, 1)`, :math:`\sigma = 1` and :math:`n = m = 50`
    (:math:`k(x, x) = 1`, :math:`E\,k(X, X') = 1 / \sqrt{3}`). Both are
    differentiable in ``x`` and ``y`` (a generator's loss).

    Args:
        x: samples from :math:`P`, shape ``(..., n, d)``.
        y: samples from :math:`Q`, shape ``(..., m, d)``; leading
            dimensions broadcast.
        bandwidths: the kernel's bandwidths, as in :func:`gaussian_kernel`.
        unbiased: the U-statistic (needs :math:`n, m \ge 2`) or, if
            false, the V-statistic.

    Returns:
        The estimate, shape ``(...)`` (a scalar for ``(n, d)`` inputs).

    Raises:
        TypeError: if ``x`` or ``y`` is not a floating-point tensor.
        ValueError: if a bandwidth is not finite and > 0, the dimensions
            differ, or a sample has fewer than 2 points (1 for the biased
            estimator).
    """
    min_n = 2 if unbiased else 1
    x = _check_samples("x", x, min_n)
    y = _check_samples("y", y, min_n)
    _check_same_dim(x, y)
    sigma = _bandwidths(bandwidths, x)
    n, m = x.shape[-2], y.shape[-2]
    k_xx = _kernel(x, x, sigma)  # (..., n, n)
    k_yy = _kernel(y, y, sigma)  # (..., m, m)
    k_xy = _kernel(x, y, sigma)  # (..., n, m)
    if not unbiased:
        return (
            k_xx.mean((-2, -1))
            + k_yy.mean((-2, -1))
            - 2 * k_xy.mean((-2, -1))
        )
    # off-diagonal sums: the U-statistic leaves out k(x_i, x_i)
    diag_xx = torch.diagonal(k_xx, dim1=-2, dim2=-1).sum(-1)
    diag_yy = torch.diagonal(k_yy, dim1=-2, dim2=-1).sum(-1)
    sum_xx = k_xx.sum((-2, -1)) - diag_xx
    sum_yy = k_yy.sum((-2, -1)) - diag_yy
    return (
        sum_xx / (n * (n - 1))
        + sum_yy / (m * (m - 1))
        - 2 * k_xy.mean((-2, -1))
    )


def median_heuristic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The median heuristic bandwidth: the median distance between distinct points of the pooled sample.

    Pools ``x`` and ``y`` (:math:`N = n + m` points) and takes the median of the
    :math:`N(N-1)/2` distances :math:`\lVert z_i - z_j \rVert`, :math:`i < j` (the mean of
    the two middle values when their number is even, as :func:`numpy.median`), for each
    leading batch index (Gretton et al., 2012). The result is detached: a bandwidth is a
    setting, not a parameter.

    Args:
        x: points of shape ``(..., n, d)``.
        y: points of shape ``(..., m, d)``, with the same leading dimensions.

    Returns:
        Shape ``(..., 1)``: one bandwidth per batch index, ready to pass as ``bandwidths``
        to :func:`gaussian_kernel` or :func:`mmd2` (``float()`` of it for ``(n, d)`` inputs).

    Raises:
        TypeError: if ``x`` or ``y`` is not a floating-point tensor.
        ValueError: if the dimensions or leading dimensions differ, or the pool holds
            fewer than 2 points.
    """
    x, y = _check_samples("x", x), _check_samples("y", y)
    _check_same_dim(x, y)
    if x.shape[:-2] != y.shape[:-2]:
        raise ValueError(f"x and y must have the same leading dimensions, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    with torch.no_grad():
        z = torch.cat([x, y], dim=-2)  # (..., N, d)
        n_pool = z.shape[-2]
        i, j = torch.triu_indices(n_pool, n_pool, offset=1, device=z.device)
        dist = torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist")[..., i, j]  # (..., N(N-1)/2)
        dist, _ = dist.sort(dim=-1)
        half = dist.shape[-1] // 2
        if dist.shape[-1] % 2:
            return dist[..., half : half + 1]  # (..., 1)
        return (dist[..., half - 1 : half] + dist[..., half : half + 1]) / 2  # (..., 1)


def _witness_inputs(x, y, points):
    """The samples and the evaluation points of a witness, checked."""
    x, y = _check_samples("x", x), _check_samples("y", y)
    points = _check_samples("points", points)
    _check_same_dim(x, y)
    _check_same_dim(points, x, "points and x")
    return x, y, points


def mmd_witness(x: torch.Tensor, y: torch.Tensor, bandwidths, points: torch.Tensor) -> torch.Tensor:
    r"""The empirical MMD witness function :math:`f(t) = \frac1n \sum_i k(x_i, t) - \frac1m \sum_j k(y_j, t)`.

    The witness is the unit-norm function of the kernel's reproducing kernel Hilbert space
    (up to its norm, :math:`\widehat{\mathrm{MMD}}`) that best separates the two samples:
    positive where ``x`` is denser than ``y``. It plays the role of an MMD GAN's critic.

    Args:
        x: samples from :math:`P`, shape ``(..., n, d)``.
        y: samples from :math:`Q`, shape ``(..., m, d)``.
        bandwidths: the kernel's bandwidths, as in :func:`gaussian_kernel`.
        points: where to evaluate :math:`f`, shape ``(..., k, d)``.

    Returns:
        The witness at ``points``, shape ``(..., k)``.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if a bandwidth is not finite and > 0 or the dimensions differ.
    """
    x, y, points = _witness_inputs(x, y, points)
    sigma = _bandwidths(bandwidths, points)
    return _kernel(points, x, sigma).mean(-1) - _kernel(points, y, sigma).mean(-1)  # (..., k)


def witness_gradient(x: torch.Tensor, y: torch.Tensor, bandwidths, points: torch.Tensor) -> torch.Tensor:
    r"""The gradient in :math:`t` of the empirical witness of :func:`mmd_witness`, in closed form.

    For the Gaussian kernel :math:`\nabla_t k_\sigma(x, t) = k_\sigma(x, t)\,(x - t) / \sigma^2`,
    so that, summed over the bandwidths,

    .. math:: \nabla \hat f(t) = \frac1n \sum_i \sum_\sigma k_\sigma(x_i, t) \frac{x_i - t}{\sigma^2}
              - \frac1m \sum_j \sum_\sigma k_\sigma(y_j, t) \frac{y_j - t}{\sigma^2}.

    With ``y`` the generated points minus :math:`y_j` (the witness that leaves :math:`y_j`
    out), :math:`-\tfrac{2}{m}` times this at :math:`t = y_j` is the gradient of the
    unbiased :func:`mmd2` with respect to :math:`y_j` (Chapter 6): gradient descent on the
    MMD moves each generated point *up* the witness.

    Args:
        x: samples from :math:`P`, shape ``(..., n, d)``.
        y: samples from :math:`Q`, shape ``(..., m, d)``.
        bandwidths: the kernel's bandwidths, as in :func:`gaussian_kernel`.
        points: where to evaluate :math:`\nabla \hat f`, shape ``(..., k, d)``.

    Returns:
        The gradient at ``points``, shape ``(..., k, d)``.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if a bandwidth is not finite and > 0 or the dimensions differ.
    """
    x, y, points = _witness_inputs(x, y, points)
    sigma = _bandwidths(bandwidths, points)  # (..., k_bw)

    def mean_pull(z: torch.Tensor) -> torch.Tensor:  # (1/|z|) sum_i sum_s k_s(z_i, t) (z_i - t) / s^2
        diff = z.unsqueeze(-3) - points.unsqueeze(-2)  # (..., k, n, d)
        sq = (diff**2).sum(-1, keepdim=True)  # (..., k, n, 1)
        var = (sigma**2)[..., None, None, :]  # (..., 1, 1, k_bw)
        weight = (torch.exp(-sq / (2 * var)) / var).sum(-1, keepdim=True)  # (..., k, n, 1)
        return (weight * diff).mean(-2)  # (..., k, d)

    return mean_pull(x) - mean_pull(y)
