"""The f-divergence registry (gan_lab.fdiv), theory.f_divergence and the f-GAN losses.

Oracles: finite differences of f, a brute-force supremum for the conjugate, SciPy's adaptive
quadrature of E_q f(p/q) with the row's own f, closed forms for Gaussians, torch's
autograd against the hand-simplified f*(g_f(v)), and Monte Carlo spreads across seeds.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch.testing import assert_close

from gan_lab import data, fdiv, losses, theory, train

NAMES = tuple(fdiv.DIVERGENCES)
P1 = data.GaussianMixture([0.0], std=1.0)
Q1 = data.GaussianMixture([0.7], std=1.2)
MIX = data.GaussianMixture([-1.5, 1.5], std=0.5, weights=[0.3, 0.7])
WIDE = data.GaussianMixture([0.2], std=1.4)  # s_p^2 = 0.25 < 2 * 1.96: chi^2(MIX || WIDE) is finite
PAIRS = {"gaussians": (P1, Q1), "mixture": (MIX, WIDE)}


def dd(x):
    return torch.as_tensor(x, dtype=torch.float64)


def test_registry_names_and_the_loss_names():
    assert NAMES == ("kl", "reverse_kl", "pearson", "hellinger", "jsd", "gan", "tv")
    assert fdiv.LOSS_NAMES == tuple(n for n in NAMES if n != "gan")
    assert set(fdiv.LOSS_NAMES) <= set(losses.KINDS)
    for name in NAMES:
        assert fdiv.get(name) is fdiv.DIVERGENCES[name] and fdiv.get(fdiv.DIVERGENCES[name]).name == name


def test_unknown_divergence_lists_the_valid_names():
    for bad in ("chi2", 3, None):
        with pytest.raises(ValueError, match=r"divergence must be one of .*'kl'.*'reverse_kl'.*'tv'"):
            fdiv.get(bad)
    with pytest.raises(ValueError, match="divergence must be one of"):
        theory.f_divergence(P1, Q1, "forward_kl")
    with pytest.raises(ValueError, match="loss must be one of .*'hellinger'"):
        losses.discriminator_loss("hellinger2", dd([1.0]), dd([0.0]))


@pytest.mark.parametrize("name", NAMES)
def test_f_is_convex_with_f_of_one_zero(name):
    d = fdiv.DIVERGENCES[name]
    # every row has f(1) = 0 but the GAN's, f(1) = -log 4: its D_f is 2 JSD shifted by -log 4
    assert float(d.f(dd(1.0))) == pytest.approx(-math.log(4) if name == "gan" else 0.0, abs=1e-15)
    u = dd(np.linspace(0.01, 30, 3001))
    fu = d.f(u)
    second = fu[2:] - 2 * fu[1:-1] + fu[:-2]  # second differences of a convex function are >= 0
    assert (second >= -1e-12).all()
    assert (second > 1e-12).any()  # control: f is not affine, so the divergence separates P from Q


@pytest.mark.parametrize("name", NAMES)
def test_f_prime_matches_finite_differences(name):
    d = fdiv.DIVERGENCES[name]
    u = dd(np.concatenate([np.linspace(0.05, 0.9, 18), np.linspace(1.1, 25, 30)]))  # away from tv's kink
    h = 1e-6
    fd = (d.f(u + h) - d.f(u - h)) / (2 * h)
    assert_close(d.f_prime(u), fd, rtol=1e-6, atol=1e-7)


def _brute_conjugate(d, t):
    """sup over u >= 0 of t u - f(u) on a dense grid (0 and a log-spaced grid up to 1e3)."""
    u = dd(np.concatenate([[0.0, 1.0], np.geomspace(1e-6, 1e3, 400_001)]))  # 1: tv's kink
    fu = d.f(u)
    fu = torch.where(torch.isfinite(fu), fu, torch.full_like(fu, math.inf))  # -log 0 = inf
    return torch.stack([(ti * u - fu).max() for ti in t])


TS = {  # critic values inside each domain, whose maximiser u lies inside the brute-force grid
    "kl": np.linspace(-3, 3, 13),
    "reverse_kl": -np.geomspace(0.02, 8, 13),
    "pearson": np.linspace(-5, 6, 12),
    "hellinger": np.linspace(-6, 0.9, 12),
    "jsd": np.linspace(-3, 0.3, 12),
    "gan": np.linspace(-5, -0.01, 12),
    "tv": np.linspace(-2, 0.5, 11),
}
OUTSIDE = {"reverse_kl": [0.0, 0.5], "hellinger": [1.0, 2.0], "jsd": [0.35, 1.0], "gan": [0.0, 1.0],
           "tv": [0.51, 2.0]}


@pytest.mark.parametrize("name", NAMES)
def test_conjugate_is_the_supremum(name):
    d = fdiv.DIVERGENCES[name]
    t = dd(TS[name])
    assert d.in_domain(t).all()
    assert_close(d.conjugate(t), _brute_conjugate(d, t), rtol=1e-6, atol=1e-6)
    if name in OUTSIDE:  # outside the domain the supremum is infinite
        out = dd(OUTSIDE[name])
        assert not d.in_domain(out).any()
        assert torch.isinf(d.conjugate(out)).all() and (d.conjugate(out) > 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_fenchel_equality_at_the_derivative(name):
    """f*(f'(u)) = u f'(u) - f(u): the supremum defining f* at t = f'(u) is attained at u."""
    d = fdiv.DIVERGENCES[name]
    u = dd(np.concatenate([np.linspace(0.05, 0.95, 10), np.linspace(1.05, 20, 20)]))
    assert_close(d.conjugate(d.f_prime(u)), u * d.f_prime(u) - d.f(u), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_activation_keeps_the_critic_in_the_domain(name):
    d = fdiv.DIVERGENCES[name]
    v = dd(np.linspace(-30, 30, 601))
    assert d.in_domain(d.activation(v)).all()
    # the hand-simplified f*(g_f(v)) equals the composition where the latter is accurate
    mid = dd(np.linspace(-12, 12, 241))
    assert_close(d.conjugate_of_logit(mid), d.conjugate(d.activation(mid)), rtol=1e-9, atol=1e-9)
    # and stays finite in float32 up to the row's stated limit
    lim = min(d.finite_logits, 1e4)
    far = torch.tensor([-lim, -50.0, 50.0, lim])
    assert torch.isfinite(d.conjugate_of_logit(far)).all() and torch.isfinite(d.activation(far)).all()


@pytest.mark.parametrize("name", NAMES)
def test_optimal_critic_is_f_prime_of_the_ratio(name):
    d = fdiv.DIVERGENCES[name]
    ell = dd(np.linspace(-4, 4, 81))
    ell = ell[ell != 0]
    assert_close(d.t_star(ell), d.f_prime(ell.exp()), rtol=1e-10, atol=1e-12)
    assert_close(d.activation(d.logit_star(ell)), d.t_star(ell), rtol=1e-10, atol=1e-12)
    # where the ratio overflows, T* is still computed from the log ratio
    huge = dd([-800.0, 800.0])
    assert not torch.isnan(d.t_star(huge)).any()


def _quad_df(d, p, q):
    """Independent oracle: SciPy's adaptive quadrature of q f(p/q) with the row's own f."""
    def integrand(x):
        lp, lq = float(p.log_prob(dd(x))), float(q.log_prob(dd(x)))
        return math.exp(lq) * float(d.f(dd(math.exp(lp - lq))))
    pts = sorted({float(m) for dist in (p, q) for m in dist.means.reshape(-1)})
    total = 0.0
    edges = [-14.0, *pts, 14.0]  # beyond, p underflows in this naive oracle; the tails add < 1e-12
    for a, b in itertools.pairwise(edges):
        total += integrate.quad(integrand, a, b, limit=400, epsabs=1e-12, epsrel=1e-11)[0]
    return total


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("name", NAMES)
def test_f_divergence_by_quadrature_matches_scipy(name, pair):
    p, q = PAIRS[pair]
    d = fdiv.DIVERGENCES[name]
    value, err = theory.f_divergence(p, q, name, return_se=True)
    assert err < 1e-9
    assert value == pytest.approx(_quad_df(d, p, q), rel=1e-7, abs=1e-9)
    same = theory.f_divergence(p, p, name)
    assert same == pytest.approx(-math.log(4) if name == "gan" else 0.0, abs=1e-10)
    assert value > same


def test_f_divergence_closed_forms_for_gaussians():
    m1, s1, m2, s2 = 0.0, 1.0, 0.7, 1.2
    kl = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    rkl = math.log(s1 / s2) + (s2**2 + (m1 - m2) ** 2) / (2 * s1**2) - 0.5
    bc = math.sqrt(2 * s1 * s2 / (s1**2 + s2**2)) * math.exp(-((m1 - m2) ** 2) / (4 * (s1**2 + s2**2)))
    chi2 = s2**2 / (s1 * math.sqrt(2 * s2**2 - s1**2)) * math.exp((m1 - m2) ** 2 / (2 * s2**2 - s1**2)) - 1
    exact = {"kl": kl, "reverse_kl": rkl, "hellinger": 2 - 2 * bc, "pearson": chi2}
    for name, want in exact.items():
        assert theory.f_divergence(P1, Q1, name) == pytest.approx(want, rel=1e-9), name
    # equal variances: TV = 2 Phi(|dm| / (2 s)) - 1
    q_eq = data.GaussianMixture([0.7], std=1.0)
    assert theory.f_divergence(P1, q_eq, "tv") == pytest.approx(2 * stats.norm.cdf(0.35) - 1, rel=1e-10)
    # the rows that chapters 3 and 4 met under other names
    assert theory.f_divergence(MIX, WIDE, "jsd") == pytest.approx(theory.jsd(MIX, WIDE), rel=1e-10)
    assert theory.f_divergence(MIX, WIDE, "gan") == pytest.approx(2 * theory.jsd(MIX, WIDE) - math.log(4), rel=1e-10)
    assert theory.f_divergence(MIX, WIDE, "tv") == pytest.approx(theory.total_variation(MIX, WIDE), rel=1e-10)
    assert theory.f_divergence(MIX, WIDE, "kl") == pytest.approx(theory.kl(MIX, WIDE), rel=1e-10)
    assert theory.f_divergence(MIX, WIDE, "reverse_kl") == pytest.approx(theory.kl(WIDE, MIX), rel=1e-10)


def test_pearson_is_infinite_where_the_integral_diverges():
    narrow, wide = data.GaussianMixture([0.0], std=0.5), data.GaussianMixture([0.0], std=1.0)
    assert math.isinf(theory.f_divergence(wide, narrow, "pearson"))  # s_p^2 = 1 > 2 * 0.25
    assert math.isfinite(theory.f_divergence(narrow, wide, "pearson"))  # control


def _bound_by_quadrature(d, p, q, logit):
    """E_p g_f(v) - E_q f*(g_f(v)) for a critic given as a function of x, by SciPy's quadrature."""
    def term(x, dist, fn):
        xt = dd(x)
        return math.exp(float(dist.log_prob(xt))) * float(fn(logit(xt)))
    kw = {"limit": 400, "points": [-1.5, 0, 1.5]}  # within +-14, where neither density underflows
    e_p = integrate.quad(lambda x: term(x, p, d.activation), -14, 14, **kw)[0]
    e_q = integrate.quad(lambda x: term(x, q, d.conjugate_of_logit), -14, 14, **kw)[0]
    return e_p - e_q


@pytest.mark.parametrize("name", [n for n in NAMES if n != "tv"])  # tv's optimal logit is infinite
def test_the_bound_is_tight_at_t_star_and_loose_elsewhere(name):
    d = fdiv.DIVERGENCES[name]
    p, q = MIX, WIDE
    d_f = theory.f_divergence(p, q, name)

    def star(x):
        return d.logit_star(p.log_prob(x) - q.log_prob(x))

    assert _bound_by_quadrature(d, p, q, star) == pytest.approx(d_f, rel=1e-6, abs=1e-8)
    for wobble in (lambda x: star(x) + 0.3 * torch.sin(3 * x), lambda x: 0.5 * star(x)):
        assert _bound_by_quadrature(d, p, q, wobble) < d_f - 1e-3  # control: any other critic falls short


def test_tv_bound_approaches_tv_as_the_critic_saturates():
    d, p, q = fdiv.DIVERGENCES["tv"], MIX, WIDE
    tv = theory.total_variation(p, q)
    gaps = [tv - _bound_by_quadrature(d, p, q, lambda x, s=s: s * torch.sign(p.log_prob(x) - q.log_prob(x)))
            for s in (1.0, 3.0, 10.0)]
    assert gaps[0] > gaps[1] > gaps[2] > 0 and gaps[2] < 1e-6


def _gauss2(mean, std):
    return data.GaussianMixture([mean], std=std)


@pytest.mark.parametrize("name", ["kl", "reverse_kl", "hellinger", "jsd", "tv"])
def test_monte_carlo_in_two_dimensions_within_its_standard_error(name):
    """2-D isotropic Gaussians: closed forms per coordinate (they factorise), and SE against the spread."""
    p, q = _gauss2([0.0, 0.0], 1.0), _gauss2([0.8, -0.4], 1.3)
    dm2, s1, s2 = 0.8**2 + 0.4**2, 1.0, 1.3
    exact = {
        "kl": 2 * math.log(s2 / s1) + (2 * s1**2 + dm2) / (2 * s2**2) - 1,
        "reverse_kl": 2 * math.log(s1 / s2) + (2 * s2**2 + dm2) / (2 * s1**2) - 1,
        "hellinger": 2 - 2 * (2 * s1 * s2 / (s1**2 + s2**2)) * math.exp(-dm2 / (4 * (s1**2 + s2**2))),
    }
    estimates, ses = [], []
    for seed in range(12):
        rng = torch.Generator().manual_seed(seed)
        v, se = theory.f_divergence(p, q, name, n_samples=4000, rng=rng, return_se=True)
        estimates.append(v)
        ses.append(se)
    estimates, ses = np.array(estimates), np.array(ses)
    spread = estimates.std(ddof=1)
    assert 0.5 < spread / ses.mean() < 1.6  # the reported SE is the estimate's actual spread
    if name in exact:
        z = (estimates.mean() - exact[name]) / (ses.mean() / math.sqrt(len(ses)))
        assert abs(z) < 4
    else:  # no closed form: against the 2-D rows of chapters 3-4
        other = theory.jsd if name == "jsd" else theory.total_variation
        ref, ref_se = other(p, q, n_samples=200_000, rng=torch.Generator().manual_seed(99), return_se=True)
        assert abs(estimates.mean() - ref) < 4 * math.hypot(ses.mean() / math.sqrt(len(ses)), ref_se)


@pytest.mark.parametrize("name", NAMES)
def test_variational_bound_from_logits(name):
    d = fdiv.DIVERGENCES[name]
    rng = torch.Generator().manual_seed(3)
    xp, xq = MIX.sample(50_000, rng).reshape(-1).double(), WIDE.sample(50_000, rng).reshape(-1).double()
    lr_p, lr_q = MIX.log_prob(xp) - WIDE.log_prob(xp), MIX.log_prob(xq) - WIDE.log_prob(xq)
    if name == "tv":  # a saturated critic stands in for the infinite optimal logit
        vr, vf = 20 * torch.sign(lr_p), 20 * torch.sign(lr_q)
    else:
        vr, vf = d.logit_star(lr_p), d.logit_star(lr_q)
    bound, se = fdiv.variational_bound(name, vr, vf, return_se=True)
    a, b = d.activation(vr.double()), d.conjugate_of_logit(vf.double())
    assert se == pytest.approx(math.sqrt(a.var().item() / 50_000 + b.var().item() / 50_000), rel=1e-9)
    d_f = theory.f_divergence(MIX, WIDE, name)
    assert abs(bound - d_f) < 4.5 * se
    # the f-GAN discriminator loss is minus the same bound
    assert float(losses.discriminator_loss(name if name != "gan" else "minimax", vr, vf)) == pytest.approx(
        -bound, rel=1e-9, abs=1e-12)
    assert fdiv.variational_bound(name, torch.zeros(100), torch.zeros(100)) < d_f - 10 * se  # control


def test_variational_bound_bad_input():
    with pytest.raises(TypeError, match="real_logits must be a torch.Tensor"):
        fdiv.variational_bound("kl", [0.0, 1.0], torch.zeros(3))
    with pytest.raises(TypeError, match="fake_logits must be a floating-point"):
        fdiv.variational_bound("kl", torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 values"):
        fdiv.variational_bound("kl", torch.zeros(1), torch.zeros(3))
    with pytest.raises(ValueError, match="divergence must be one of"):
        fdiv.variational_bound("kld", torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="fake_logits must be finite, got 1 non-finite"):
        fdiv.variational_bound("jsd", torch.zeros(3), torch.tensor([0.0, math.nan, 1.0]))


@pytest.mark.parametrize("name", fdiv.LOSS_NAMES)
def test_f_gan_losses_against_the_registry_formulas(name):
    d = fdiv.DIVERGENCES[name]
    real = torch.randn(3, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fake = torch.randn(3, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want_d = -d.activation(real).mean(-1) + d.conjugate(d.activation(fake)).mean(-1)
    assert_close(losses.discriminator_loss(name, real, fake, dim=-1), want_d)
    assert_close(losses.generator_loss(name, fake, dim=-1), -d.conjugate(d.activation(fake)).mean(-1))
    # the generator's loss is the fake half of the critic's, with the sign flipped (a zero-sum game)
    assert_close(losses.discriminator_loss(name, real, fake, dim=-1) + losses.generator_loss(name, fake, dim=-1),
                 -d.activation(real).mean(-1))


def test_gan_row_is_the_minimax_loss_and_its_t_star_is_log_d_star():
    d = fdiv.DIVERGENCES["gan"]
    v = torch.linspace(-20, 20, 81, dtype=torch.float64)
    assert_close(-d.activation(v)[:, None].mean(-1) + d.conjugate_of_logit(v)[:, None].mean(-1),
                 losses.discriminator_loss("minimax", v[:, None], v[:, None], dim=-1))
    x = torch.linspace(-4, 4, 33, dtype=torch.float64)
    ell = MIX.log_prob(x) - WIDE.log_prob(x)
    assert_close(d.t_star(ell), torch.log(theory.optimal_discriminator(MIX, WIDE, x)))
    assert_close(fdiv.DIVERGENCES["tv"].t_star(ell), 0.5 * theory.optimal_hinge_critic(MIX, WIDE, x))


@pytest.mark.parametrize("name", ["kl", "reverse_kl", "jsd", "hellinger"])
def test_a_trained_critic_approaches_the_divergence(name):
    """A short run of fit_discriminator closes most of the gap that an untrained critic leaves."""
    run = train.fit_discriminator(MIX, WIDE, loss=name, steps=600, seeds=2, batch_size=256,
                                  d_hidden=(32, 32), lr_d=2e-3, progress=False)
    rng = torch.Generator().manual_seed(11)
    xp, xq = MIX.sample(20_000, rng), WIDE.sample(20_000, rng)
    d_f = theory.f_divergence(MIX, WIDE, name)
    real, fake = run.logits(xp), run.logits(xq)  # (S, n)
    for s in range(2):
        bound, se = fdiv.variational_bound(name, real[s], fake[s], return_se=True)
        assert bound < d_f + 4 * se  # a bound, up to noise
        assert bound > 0.8 * d_f, (name, s, bound, d_f)
