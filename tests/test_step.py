"""gan_lab.step: the eager D, G and simultaneous steps against hand-written autograd oracles.

Each oracle writes the loss out by hand (softplus, means, penalties), differentiates it with
``torch.autograd`` on a deep copy of the networks and steps a fresh ``torch.optim`` optimiser
(its default, single-tensor implementation), so the step functions are checked against an
independent computation of the same update, not against themselves.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from gan_lab import step
from gan_lab.nets import MLPDiscriminator, MLPGenerator

S, B, Z, X = 3, 16, 2, 2
TOL = dict(rtol=1e-6, atol=1e-6)


def _nets(d_in=X, hidden=(8,)):
    G = MLPGenerator(Z, X, hidden, [10, 12, 14])
    D = MLPDiscriminator(d_in, hidden, [11, 13, 15])
    return G, D


def _batch(seed=0, d=X, n=B):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(S, n, d, generator=g), torch.randn(S, n, Z, generator=g)


def _adam(net, lr=1e-2):
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))


def _copy_rng(rng):
    return torch.Generator().set_state(rng.get_state())


def _d_loss_by_hand(loss, r, f):  # r, f: logits (S, B) -> (S,)
    if loss == "ns":
        return (-torch.log(torch.sigmoid(r))).mean(-1) + (-torch.log(1 - torch.sigmoid(f))).mean(-1)
    if loss == "wasserstein":
        return f.mean(-1) - r.mean(-1)
    if loss == "hinge":
        return torch.clamp(1 - r, min=0).mean(-1) + torch.clamp(1 + f, min=0).mean(-1)
    raise AssertionError(loss)


def _penalty_by_hand(D, penalty, weight, real, fake, rng):
    if penalty is None:
        return torch.zeros(real.shape[0])
    if penalty == "wgan-gp":
        eps = torch.rand(real.shape[:-1] + (1,), generator=rng)
        x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    else:
        x = real.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)  # (S, B, d), samples independent
    sq = (gx ** 2).sum(-1)  # (S, B)
    if penalty == "wgan-gp":
        return weight * ((sq.sqrt() - 1) ** 2).mean(-1)
    return weight / 2 * sq.mean(-1)


def _assert_same_params(a, b, **tol):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, **(tol or TOL), msg=name)


# ---------------------------------------------------------------- discriminator_step


@pytest.mark.parametrize("loss, penalty, clip", [
    ("ns", None, None), ("hinge", None, None), ("wasserstein", "wgan-gp", None),
    ("ns", "r1", None), ("wasserstein", None, 0.05)])
def test_discriminator_step_equals_a_hand_written_update(loss, penalty, clip):
    G, D = _nets()
    real, z = _batch()
    with torch.no_grad():
        fake = G(z)
    spec = step.StepSpec(loss=loss, penalty=penalty, penalty_weight=3.0, clip=clip)
    rng = torch.Generator().manual_seed(5)
    D_ref, rng_ref = copy.deepcopy(D), _copy_rng(rng)
    opt = step.make_optimizer("adam", D.parameters(), 1e-2, (0.5, 0.999), torch.device("cpu"))
    stats = step.discriminator_step(D, opt, spec, real, fake, rng)

    opt_ref = _adam(D_ref)
    r, f = D_ref(real), D_ref(fake)
    d_loss = _d_loss_by_hand(loss, r, f)
    pen = _penalty_by_hand(D_ref, penalty, 3.0, real, fake, rng_ref)
    (d_loss + pen).sum().backward()
    opt_ref.step()
    if clip is not None:
        with torch.no_grad():
            for p in D_ref.parameters():
                p.clamp_(-clip, clip)

    assert stats.shape == (4, S)
    torch.testing.assert_close(stats[0], d_loss.detach(), **TOL)
    torch.testing.assert_close(stats[1], pen.detach(), **TOL)
    torch.testing.assert_close(stats[2], r.detach().mean(-1), **TOL)
    torch.testing.assert_close(stats[3], f.detach().mean(-1), **TOL)
    _assert_same_params(D, D_ref)
    assert torch.equal(rng.get_state(), rng_ref.get_state())  # the same random draws were consumed
    if penalty is None:
        assert float(stats[1].abs().max()) == 0.0
    else:
        assert float(stats[1].min()) > 0


def test_discriminator_step_gives_each_seed_its_own_gradient():
    """Seed 1 trained alone (a one-seed slice of the same networks) matches seed 1 of the batch."""
    G, D = _nets()
    real, z = _batch(1)
    with torch.no_grad():
        fake = G(z)
    spec = step.StepSpec(loss="ns")
    D_one = MLPDiscriminator(X, (8,), [13])  # the same init as slot 1 of D (seed 13)
    cpu = torch.device("cpu")
    opt = step.make_optimizer("adam", D.parameters(), 1e-2, (0.5, 0.999), cpu)
    opt_one = step.make_optimizer("adam", D_one.parameters(), 1e-2, (0.5, 0.999), cpu)
    step.discriminator_step(D, opt, spec, real, fake, torch.Generator())
    step.discriminator_step(D_one, opt_one, spec, real[1:2], fake[1:2], torch.Generator())
    for p, q in zip(D.parameters(), D_one.parameters()):
        torch.testing.assert_close(p[1:2], q, **TOL)


def test_discriminator_step_clip_clamps_every_weight():
    G, D = _nets()
    real, z = _batch(2)
    with torch.no_grad():
        fake = G(z)
    opt = torch.optim.SGD(D.parameters(), lr=10.0)  # a huge step: most weights leave [-c, c]
    step.discriminator_step(D, opt, step.StepSpec(loss="wasserstein", clip=0.01), real, fake, torch.Generator())
    flat = torch.cat([p.detach().reshape(-1) for p in D.parameters()])
    assert float(flat.abs().max()) <= 0.01
    assert float((flat.abs() == 0.01).float().mean()) > 0.5  # clamped, not merely small


def test_clip_clamps_in_place_and_none_is_a_no_op():
    a = torch.tensor([-3.0, -0.5, 0.0, 0.2, 7.0])
    b = torch.tensor([[0.9, -0.9]])
    ptr = a.data_ptr()
    step.clip_([a, b], 0.5)
    assert a.data_ptr() == ptr
    assert torch.equal(a, torch.tensor([-0.5, -0.5, 0.0, 0.2, 0.5]))
    assert torch.equal(b, torch.tensor([[0.5, -0.5]]))
    c = torch.tensor([5.0, -5.0])
    step.clip_([c], None)
    assert torch.equal(c, torch.tensor([5.0, -5.0]))


# ---------------------------------------------------------------- generator_step


@pytest.mark.parametrize("loss", ["ns", "wasserstein"])
def test_generator_step_equals_a_hand_written_update(loss):
    G, D = _nets()
    _, z = _batch(3)
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
    opt = step.make_optimizer("adam", G.parameters(), 1e-2, (0.5, 0.999), torch.device("cpu"))
    stats = step.generator_step(G, D, opt, step.StepSpec(loss=loss), z)

    opt_ref = _adam(G_ref)
    f = D_ref(G_ref(z))
    g_loss = F.softplus(-f).mean(-1) if loss == "ns" else -f.mean(-1)
    g_loss.sum().backward()
    naive = torch.stack([sum((p.grad[s] ** 2).sum() for p in G_ref.parameters()).sqrt() for s in range(S)])
    opt_ref.step()

    assert stats.shape == (2, S)
    torch.testing.assert_close(stats[0], g_loss.detach(), **TOL)
    torch.testing.assert_close(stats[1], naive, **TOL)
    _assert_same_params(G, G_ref)
    _assert_same_params(D, D_ref, rtol=0, atol=0)  # D is not updated


def test_generator_step_gives_d_no_gradients():
    G, D = _nets()
    _, z = _batch(4)
    opt = torch.optim.SGD(G.parameters(), lr=0.1)
    step.generator_step(G, D, opt, step.StepSpec(), z)
    assert all(p.grad is None for p in D.parameters())
    # gradients D already holds are left exactly as they were
    for p in D.parameters():
        p.grad = torch.full_like(p, 0.25)
    step.generator_step(G, D, opt, step.StepSpec(), z)
    assert all(torch.equal(p.grad, torch.full_like(p, 0.25)) for p in D.parameters())
    assert all(p.requires_grad for p in D.parameters())  # not toggled off


def test_generator_step_with_packing_and_a_given_batch():
    """``pack=2``: D judges pairs of G's points; a given ``x_fake`` replaces ``G(z)``."""
    G, _ = _nets()
    D = MLPDiscriminator(2 * X, (8,), [11, 13, 15])
    _, z = _batch(5, n=2 * B)
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
    opt = torch.optim.SGD(G.parameters(), lr=0.1)
    x_fake = G(z)  # still holds G's graph
    stats = step.generator_step(G, D, opt, step.StepSpec(pack=2), None, x_fake=x_fake)

    x = G_ref(z)
    packed = torch.cat([x[:, 0::2], x[:, 1::2]], -1)  # pack b = (x[2b], x[2b + 1])
    g_loss = F.softplus(-D_ref(packed)).mean(-1)
    g_loss.sum().backward()
    torch.optim.SGD(G_ref.parameters(), lr=0.1).step()
    torch.testing.assert_close(stats[0], g_loss.detach(), **TOL)
    _assert_same_params(G, G_ref)


# ---------------------------------------------------------------- simultaneous_step


@pytest.mark.parametrize("loss, penalty, clip", [("ns", None, None), ("wasserstein", None, 0.02),
                                                  ("wasserstein", "wgan-gp", None)])
def test_simultaneous_step_equals_a_hand_written_update(loss, penalty, clip):
    G, D = _nets()
    real, z = _batch(6)
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
    rng = torch.Generator().manual_seed(9)
    rng_ref = _copy_rng(rng)
    cpu = torch.device("cpu")
    opt_g = step.make_optimizer("adam", G.parameters(), 1e-2, (0.5, 0.999), cpu)
    opt_d = step.make_optimizer("adam", D.parameters(), 1e-2, (0.5, 0.999), cpu)
    spec = step.StepSpec(loss=loss, penalty=penalty, clip=clip)
    stats = step.simultaneous_step(G, D, opt_g, opt_d, spec, real, z, rng)

    x = G_ref(z)
    r, f = D_ref(real), D_ref(x)
    d_loss = _d_loss_by_hand(loss, r, f)
    pen = _penalty_by_hand(D_ref, penalty, 10.0, real, x.detach(), rng_ref)
    g_loss = F.softplus(-f).mean(-1) if loss == "ns" else -f.mean(-1)
    d_grads = torch.autograd.grad((d_loss + pen).sum(), list(D_ref.parameters()), retain_graph=True)
    g_grads = torch.autograd.grad(g_loss.sum(), list(G_ref.parameters()))  # both at the same point
    for p, g in zip(list(D_ref.parameters()) + list(G_ref.parameters()), d_grads + g_grads):
        p.grad = g
    naive = torch.stack([sum((g[s] ** 2).sum() for g in g_grads).sqrt() for s in range(S)])
    _adam(D_ref).step()
    _adam(G_ref).step()
    if clip is not None:
        with torch.no_grad():
            for p in D_ref.parameters():
                p.clamp_(-clip, clip)

    assert stats.shape == (6, S)
    for i, want in enumerate([d_loss, pen, g_loss, r.mean(-1), f.mean(-1), naive]):
        torch.testing.assert_close(stats[i], want.detach(), **TOL, msg=f"row {i}")
    _assert_same_params(D, D_ref)
    _assert_same_params(G, G_ref)


def test_simultaneous_step_differs_from_alternating():
    """The control: an alternating D-then-G update from the same point gives another G."""
    G, D = _nets()
    real, z = _batch(7)
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    opt = lambda net: torch.optim.SGD(net.parameters(), lr=0.5)  # noqa: E731
    step.simultaneous_step(G, D, opt(G), opt(D), step.StepSpec(), real, z, torch.Generator())
    with torch.no_grad():
        fake = G2(z)
    step.discriminator_step(D2, opt(D2), step.StepSpec(), real, fake, torch.Generator())
    step.generator_step(G2, D2, opt(G2), step.StepSpec(), z)
    _assert_same_params(D, D2)  # the D updates agree (both at the starting point)...
    diff = max(float((p - q).detach().abs().max()) for p, q in zip(G.parameters(), G2.parameters()))
    assert diff > 1e-4  # ...the G updates do not (alternating G sees the updated D)


# ---------------------------------------------------------------- helpers


def test_grad_norm_per_seed_equals_the_naive_norm():
    g = torch.Generator().manual_seed(0)
    params = [torch.zeros(S, 3, 4, requires_grad=True), torch.zeros(S, 1, 4, requires_grad=True),
              torch.zeros(S, 5, requires_grad=True)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)
    naive = torch.tensor([sum(float((p.grad[s] ** 2).sum()) for p in params) ** 0.5 for s in range(S)])
    torch.testing.assert_close(step.grad_norm(params, True), naive, rtol=1e-6, atol=0)
    whole = sum(float((p.grad ** 2).sum()) for p in params) ** 0.5
    assert step.grad_norm(params, False).shape == ()
    assert abs(float(step.grad_norm(params, False)) - whole) < 1e-5 * whole
    # a parameter without a gradient is skipped; none at all is an error
    params.append(torch.zeros(S, 2, requires_grad=True))
    torch.testing.assert_close(step.grad_norm(params, True), naive, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="backward"):
        step.grad_norm([torch.zeros(2, requires_grad=True)], True)


def test_pack_samples_layout():
    x = torch.arange(2 * 6 * 2, dtype=torch.float32).reshape(2, 6, 2)  # (S=2, n=6, d=2)
    packed = step.pack_samples(x, 3)
    assert packed.shape == (2, 2, 6)
    for s in range(2):
        for b in range(2):
            want = torch.cat([x[s, b * 3 + j] for j in range(3)])
            assert torch.equal(packed[s, b], want)
    assert torch.equal(step.pack_samples(x, 1), x)
    with pytest.raises(ValueError, match="multiple of pack=4"):
        step.pack_samples(x, 4)
    with pytest.raises(ValueError, match=r"\(S, n, d\)"):
        step.pack_samples(x[0], 2)
    with pytest.raises(ValueError, match="pack"):
        step.pack_samples(x, 0)


@pytest.mark.parametrize("field, value", [("loss", "wgan"), ("penalty", "gp"), ("penalty_weight", 0),
                                          ("penalty_weight", -1.0), ("clip", 0), ("clip", -0.1),
                                          ("pack", 0), ("pack", 1.5)])
def test_step_spec_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        step.StepSpec(**{field: value})


def test_make_optimizer_kinds_and_validation():
    net = MLPDiscriminator(X, (4,), 2)
    cpu = torch.device("cpu")
    adam = step.make_optimizer("adam", net.parameters(), 2e-3, (0.5, 0.9), cpu)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.5, 0.9)
    assert adam.defaults["lr"] == 2e-3
    assert isinstance(step.make_optimizer("rmsprop", net.parameters(), 1e-3, (0.5, 0.9), cpu), torch.optim.RMSprop)
    assert isinstance(step.make_optimizer("sgd", net.parameters(), 1e-3, (0.5, 0.9), cpu), torch.optim.SGD)
    with pytest.raises(ValueError, match="optimizer"):
        step.make_optimizer("adamw", net.parameters(), 1e-3, (0.5, 0.9), cpu)
