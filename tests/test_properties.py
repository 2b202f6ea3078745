"""Property-based tests (hypothesis) for losses and metrics.

Examples are drawn deterministically (``derandomize=True``) and no example database is
written, so the suite is reproducible and leaves no files behind.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch.testing import assert_close

from gan_lab import data, fdiv, losses, metrics

settings.register_profile("gan_lab", max_examples=40, deadline=None, derandomize=True, database=None)
settings.load_profile("gan_lab")

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False, width=32)
logits = arrays(np.float32, st.integers(1, 64), elements=finite)
extreme = arrays(np.float32, st.integers(1, 8), elements=st.sampled_from([-1e4, -30.0, 0.0, 30.0, 1e4]))
coords = st.floats(min_value=-5, max_value=5, allow_nan=False, width=32)


def points(n_min=2, n_max=24, d=2):
    return arrays(np.float32, st.tuples(st.integers(n_min, n_max), st.just(d)), elements=coords)


@pytest.mark.parametrize("kind", losses.KINDS)
@given(real=st.one_of(logits, extreme), fake=st.one_of(logits, extreme))
def test_losses_are_finite_for_any_finite_logits(kind, real, fake):
    # f-GAN rows whose loss grows like exp(|v|) are finite up to their stated limit (|v| <= 80)
    limit = fdiv.DIVERGENCES[kind].finite_logits if kind in fdiv.DIVERGENCES else np.inf
    real, fake = np.clip(real, -limit, limit), np.clip(fake, -limit, limit)
    real_t = torch.from_numpy(real).requires_grad_()
    fake_t = torch.from_numpy(fake).requires_grad_()
    d_loss = losses.discriminator_loss(kind, real_t, fake_t)
    g_loss = losses.generator_loss(kind, fake_t)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    (d_loss + g_loss).backward()
    assert torch.isfinite(real_t.grad).all() and torch.isfinite(fake_t.grad).all()


@pytest.mark.parametrize("kind", ["ns", "minimax"])
@given(real=st.one_of(logits, extreme), fake=st.one_of(logits, extreme))
def test_bce_losses_match_torch_binary_cross_entropy(kind, real, fake):
    """Both share D's loss, -log D(x) - log(1 - D(G(z))); they differ in G's. Oracle: torch's BCE."""
    r, f = torch.from_numpy(real).double(), torch.from_numpy(fake).double()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    d_oracle = bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f))
    assert_close(losses.discriminator_loss(kind, r, f), d_oracle)
    assert losses.discriminator_loss(kind, r, f) >= 0
    # non-saturating: -log D(G(z)); minimax: log(1 - D(G(z))), i.e. minus the BCE towards 0
    g_oracle = bce(f, torch.ones_like(f)) if kind == "ns" else -bce(f, torch.zeros_like(f))
    assert_close(losses.generator_loss(kind, f), g_oracle)


@given(x=points(), y=points(), bw=st.floats(0.05, 5.0))
def test_mmd2_estimators_are_symmetric(x, y, bw):
    x, y = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    for unbiased in (True, False):
        assert_close(losses.mmd2(x, y, bw, unbiased=unbiased), losses.mmd2(y, x, bw, unbiased=unbiased))


@given(x=points(), bw=st.floats(0.05, 5.0))
def test_biased_mmd2_of_a_sample_with_itself_is_zero(x, bw):
    x = torch.from_numpy(x).double()
    assert_close(losses.mmd2(x, x, bw, unbiased=False), torch.tensor(0.0, dtype=torch.float64), atol=1e-10, rtol=0)


def _same_stats(a, b):
    assert a["modes"] == b["modes"]
    assert np.array_equal(a["counts"], b["counts"])
    assert a["high_quality"] == pytest.approx(b["high_quality"])
    assert a["reverse_kl"] == pytest.approx(b["reverse_kl"], abs=1e-9)


@given(x=points(n_min=30, n_max=60), seed=st.integers(0, 2**16), shift=st.tuples(st.integers(-8, 8), st.integers(-8, 8)))
def test_mode_stats_is_invariant_to_permutation_and_joint_translation(x, seed, shift):
    """Translations by multiples of 1/4 are exact in floating point, so no sample changes side."""
    grid = data.grid(side=3, spacing=2.0, std=0.2)
    samples = torch.from_numpy(x).double()
    base = metrics.mode_stats(samples, grid)
    perm = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))
    _same_stats(metrics.mode_stats(samples[perm], grid), base)
    offset = torch.tensor(shift, dtype=torch.float64) / 4
    moved = data.GaussianMixture(grid.means.double() + offset, grid.stds, grid.weights)
    _same_stats(metrics.mode_stats(samples + offset, moved), base)


@given(x=points(n_max=12), y_seed=st.integers(0, 1000))
def test_exact_w1_is_a_symmetric_distance(x, y_seed):
    x = torch.from_numpy(x).double()
    y = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(y_seed), dtype=torch.float64)
    w_xy, w_yx = metrics.wasserstein1(x, y), metrics.wasserstein1(y, x)
    assert w_xy == pytest.approx(w_yx, rel=1e-9, abs=1e-9)
    assert w_xy >= 0 and metrics.wasserstein1(x, x) == pytest.approx(0.0, abs=1e-12)
    # W1 of a sample against a translated copy of itself is the translation's length
    t = torch.tensor([0.3, -0.4], dtype=torch.float64)
    assert metrics.wasserstein1(x, x + t) == pytest.approx(0.5, rel=1e-6)
