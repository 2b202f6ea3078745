import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import math

from gan_lab import fdiv, losses

torch.manual_seed(0)
REAL = torch.randn(64, dtype=torch.float64) * 3
FAKE = torch.randn(64, dtype=torch.float64) * 3


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def test_minimax_and_ns_discriminator_is_bce_with_labels_one_and_zero():
    expected = bce(REAL, 1.0) + bce(FAKE, 0.0)
    for kind in ("minimax", "ns"):
        assert_close(losses.discriminator_loss(kind, REAL, FAKE), expected)


def test_discriminator_loss_is_minus_value_function():
    d_real, d_fake = torch.sigmoid(REAL), torch.sigmoid(FAKE)
    value = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()  # V(D, G)
    assert_close(losses.discriminator_loss("minimax", REAL, FAKE), -value)


def test_generator_losses_against_probability_formulas():
    d_fake = torch.sigmoid(FAKE)
    assert_close(losses.generator_loss("minimax", FAKE), torch.log(1 - d_fake).mean())
    assert_close(losses.generator_loss("ns", FAKE), -torch.log(d_fake).mean())
    assert_close(losses.generator_loss("ns", FAKE), bce(FAKE, 1.0))  # flipped label


def test_hinge_wasserstein_lsgan_closed_forms():
    assert_close(
        losses.discriminator_loss("hinge", REAL, FAKE),
        torch.clamp(1 - REAL, min=0).mean() + torch.clamp(1 + FAKE, min=0).mean(),
    )
    assert_close(losses.generator_loss("hinge", FAKE), -FAKE.mean())
    assert_close(losses.discriminator_loss("wasserstein", REAL, FAKE), FAKE.mean() - REAL.mean())
    assert_close(losses.generator_loss("wasserstein", FAKE), -FAKE.mean())
    assert_close(losses.discriminator_loss("lsgan", REAL, FAKE), 0.5 * F.mse_loss(REAL, torch.ones_like(REAL)) + 0.5 * F.mse_loss(FAKE, torch.zeros_like(FAKE)))
    assert_close(losses.generator_loss("lsgan", FAKE), 0.5 * F.mse_loss(FAKE, torch.ones_like(FAKE)))


def test_generator_gradients_through_the_logit():
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l);  d/dl -log sigmoid(l) = -(1 - sigmoid(l))
    logits = torch.linspace(-8, 8, 17, dtype=torch.float64, requires_grad=True)
    for kind, expected in (("minimax", -torch.sigmoid(logits)), ("ns", -(1 - torch.sigmoid(logits)))):
        (grad,) = torch.autograd.grad(losses.generator_loss(kind, logits[:, None], dim=-1).sum(), logits)
        assert_close(grad, expected.detach())


@pytest.mark.parametrize("kind", losses.KINDS)
def test_gradients_match_finite_differences(kind):
    logits = torch.randn(5, dtype=torch.float64, requires_grad=True)
    other = torch.randn(5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda l: losses.discriminator_loss(kind, l, other), (logits,))
    assert torch.autograd.gradcheck(lambda l: losses.generator_loss(kind, l), (logits,))


def _limit(kind):
    """The largest |logit| at which the loss can be finite (f-GAN rows that grow like exp(|v|) stop at 80)."""
    return min(1e4, fdiv.DIVERGENCES[kind].finite_logits if kind in fdiv.DIVERGENCES else math.inf)


@pytest.mark.parametrize("kind", losses.KINDS)
def test_finite_for_extreme_logits(kind):
    big = _limit(kind)
    big = torch.tensor([-big, big, 0.0])
    assert torch.isfinite(losses.discriminator_loss(kind, big, big)).all()
    assert torch.isfinite(losses.generator_loss(kind, big)).all()


@pytest.mark.parametrize("kind", [k for k in losses.F_GAN_KINDS if fdiv.DIVERGENCES[k].finite_logits < 1e4])
def test_exponential_f_gan_losses_do_overflow_beyond_their_limit(kind):
    """Control for the limit above: the value itself leaves float32's range, so the limit is not slack."""
    far = torch.tensor([-200.0, 200.0])
    both = torch.stack([losses.discriminator_loss(kind, far[:1], far[:1]), losses.discriminator_loss(kind, far[1:], far[1:])])
    assert not torch.isfinite(both).all()


def test_per_seed_reduction_matches_separate_calls():
    real, fake = torch.randn(3, 10), torch.randn(3, 10)
    for kind in losses.KINDS:
        per_seed = losses.discriminator_loss(kind, real, fake, dim=-1)
        assert per_seed.shape == (3,)
        for s in range(3):
            assert_close(per_seed[s], losses.discriminator_loss(kind, real[s], fake[s]))
        assert_close(losses.generator_loss(kind, fake, dim=-1)[1], losses.generator_loss(kind, fake[1]))


def test_signs_say_who_wants_what():
    # D's loss falls when real logits rise and fake logits fall; G's loss falls when fake logits rise.
    up = torch.full((4,), 2.0)
    down = torch.full((4,), -2.0)
    for kind in losses.KINDS:
        assert losses.discriminator_loss(kind, up, down) < losses.discriminator_loss(kind, down, up), kind
        assert losses.generator_loss(kind, up) < losses.generator_loss(kind, down), kind


def test_bad_input():
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.discriminator_loss("vanilla", REAL, FAKE)
    with pytest.raises(ValueError, match="minimax"):
        losses.generator_loss("bce", FAKE)
    with pytest.raises(TypeError, match="real_logits"):
        losses.discriminator_loss("ns", [1.0, 2.0], FAKE)
    with pytest.raises(TypeError, match="floating"):
        losses.generator_loss("ns", torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="empty"):
        losses.generator_loss("ns", torch.tensor([]))
    with pytest.raises(ValueError, match="batch dimension"):
        losses.discriminator_loss("ns", torch.randn(3, 4), torch.randn(2, 4), dim=-1)


def test_old_keywords_kind_and_generator_still_work():
    """``kind=`` (now ``loss``) and ``generator=`` (now ``rng``) give identical results; both names at once fail."""
    assert_close(losses.discriminator_loss(kind="hinge", real_logits=REAL, fake_logits=FAKE),
                 losses.discriminator_loss("hinge", REAL, FAKE), rtol=0, atol=0)
    assert_close(losses.generator_loss(kind="ns", fake_logits=FAKE), losses.generator_loss(loss="ns", fake_logits=FAKE),
                 rtol=0, atol=0)
    with pytest.raises(TypeError, match="'kind'.*'loss'"):
        losses.generator_loss("ns", FAKE, kind="ns")

    def critic(x):
        return (x**2).sum(-1)

    real, fake = torch.randn(2, 6, 2, dtype=torch.float64), torch.randn(2, 6, 2, dtype=torch.float64)
    new = losses.gradient_penalty(critic, real, fake, rng=torch.Generator().manual_seed(1))
    assert_close(losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1)), new,
                 rtol=0, atol=0)
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        losses.gradient_penalty(critic, real, fake, rng=torch.Generator(), generator=torch.Generator())
