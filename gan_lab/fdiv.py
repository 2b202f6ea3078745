r"""The f-divergences behind GAN losses: a registry of :math:`f`, :math:`f^*`, activations and :math:`T^*`.

For a convex :math:`f` on :math:`(0, \infty)` with :math:`f(1) = 0`, the f-divergence of
:math:`P` from :math:`Q` (densities :math:`p`, :math:`q`) is

.. math:: D_f(P \,\|\, Q) = E_Q\, f\!\left(\frac{p(x)}{q(x)}\right) \ge f(1) = 0

(by Jensen's inequality). With the convex conjugate
:math:`f^*(t) = \sup_{u \ge 0}\, (t u - f(u))` (the supremum over the ratios a density
ratio can take), Fenchel's inequality
:math:`f(u) \ge t u - f^*(t)` gives, for every function :math:`T`,

.. math:: D_f(P \,\|\, Q) \ge E_P\, T(x) - E_Q\, f^*(T(x)),

with equality at :math:`T^*(x) = f'(p(x)/q(x))` (Nguyen, Wainwright and Jordan, 2010;
Nowozin, Cseke and Tomioka, 2016). An f-GAN's critic outputs a real number :math:`v`
(its *logit*) and applies an output activation :math:`g_f` that maps the real line into
the domain of :math:`f^*`, :math:`T = g_f(v)`.

Each :class:`FDivergence` in :data:`DIVERGENCES` evaluates the divergence, the optimal
critic and the losses from the log ratio :math:`\ell = \log p - \log q` or the logit
:math:`v`, never from :math:`p/q` itself (only ``f`` and ``f_prime``, for tables and tests,
take the ratio :math:`u`), so nothing overflows where the ratio does: ``FDivergence.conjugate_of_logit`` is
:math:`f^*(g_f(v))` simplified by hand (for the GAN row it is
:math:`\operatorname{softplus}(v)`), and ``FDivergence.integrands`` splits
:math:`D_f` into :math:`E_P a(\ell) + E_Q b(\ell)` with factors that stay finite.

Conventions. ``"jsd"`` uses :math:`f(u) = \tfrac12[u \log u - (u + 1)\log\frac{u + 1}{2}]`
so that :math:`D_f` is the Jensen-Shannon divergence itself (the unhalved :math:`f` gives
:math:`2\,\mathrm{JSD}`); ``"gan"`` is the GAN's own :math:`f(u) = u\log u - (u+1)\log(u+1)`,
:math:`D_f = 2\,\mathrm{JSD} - \log 4` (its :math:`f(1) = -\log 4`, not 0: an
f-divergence shifted by a constant), whose critic losses are ``"minimax"`` and ``"ns"``
in :mod:`gan_lab.losses`; ``"tv"`` uses :math:`f(u) = \tfrac12 |u - 1|`, so that
:math:`D_f` is the total variation distance :math:`\tfrac12\int|p - q|`; ``"hellinger"``
is :math:`\int (\sqrt p - \sqrt q)^2`, twice the squared Hellinger distance of some texts.

The f-GAN losses themselves, :math:`L_D = -E_P\, g_f(v_r) + E_Q\, f^*(g_f(v_f))` and the
saddle-point generator loss :math:`L_G = -E_Q\, f^*(g_f(v_f))`, are
:func:`gan_lab.losses.discriminator_loss` and :func:`gan_lab.losses.generator_loss` with
``loss=`` one of :data:`LOSS_NAMES`; :func:`variational_bound` evaluates the bound from a
critic's logits, with its standard error; :func:`gan_lab.theory.f_divergence` computes
:math:`D_f` by quadrature (one dimension) or Monte Carlo with a standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG2 = math.log(2.0)

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FDivergence:
    r"""One f-divergence: the generator :math:`f`, its conjugate, activation and optimal critic.

    Every method takes and returns tensors (elementwise); ``u`` is a ratio :math:`p/q \ge 0`,
    ``t`` a critic value in the domain of :math:`f^*`, ``v`` a critic's raw output (logit) and
    ``log_ratio`` the log density ratio :math:`\ell = \log p - \log q`.

    Attributes:
        name: the registry key (and, except for ``"gan"``, the ``loss=`` name).
        title: a human-readable name.
        f_tex, conjugate_tex, activation_tex, t_star_tex: the formulas in LaTeX (for tables).
        domain: the open or closed interval where :math:`f^*` is finite, as ``(low, high)``
            with ``math.inf`` for an unbounded side.
        domain_closed: whether the finite ends of ``domain`` belong to it.
        gan_loss: the loss of :mod:`gan_lab.losses` that is this f-GAN in disguise (or ``None``).
        finite_logits: the largest :math:`|v|` at which the f-GAN losses are finite in float32.
            Where :math:`g_f` or :math:`f^*` grows exponentially (KL, reverse KL, Hellinger) the
            loss itself exceeds float32's range beyond :math:`|v| \approx 88`: the value is
            genuinely that large, and no rewriting keeps it finite.
    """

    name: str
    title: str
    f: Fn
    f_prime: Fn
    conjugate: Fn
    activation: Fn
    conjugate_of_logit: Fn
    t_star: Fn
    logit_star: Fn
    p_factor: Fn | None
    q_factor: Fn | None
    domain: tuple[float, float]
    domain_closed: bool
    f_tex: str
    conjugate_tex: str
    activation_tex: str
    t_star_tex: str
    gan_loss: str | None = None
    finite_logits: float = math.inf

    def in_domain(self, t: torch.Tensor) -> torch.Tensor:
        """Whether each value of ``t`` lies in the domain of :math:`f^*` (a boolean tensor)."""
        lo, hi = self.domain
        if self.domain_closed:
            return (t >= lo) & (t <= hi)
        return (t > lo) & (t < hi)

    def integrands(self):
        r"""The factors :math:`a(\ell)`, :math:`b(\ell)` with :math:`D_f = E_P a + E_Q b` (``None`` for a missing term)."""
        return self.p_factor, self.q_factor

    def __repr__(self) -> str:
        return f"FDivergence({self.name!r}: {self.title})"


def _xlogx(u: torch.Tensor) -> torch.Tensor:
    return torch.special.xlogy(u, u)


def _inf_outside(t: torch.Tensor, inside: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` where ``inside``, else ``+inf`` (the conjugate outside its domain)."""
    return torch.where(inside, value, torch.full_like(value, math.inf))


def _kl() -> FDivergence:
    return FDivergence(
        name="kl", title="Kullback-Leibler",
        f=_xlogx,
        f_prime=lambda u: 1 + torch.log(u),
        conjugate=lambda t: torch.exp(t - 1),
        activation=lambda v: v,
        conjugate_of_logit=lambda v: torch.exp(v - 1),
        t_star=lambda l: 1 + l,
        logit_star=lambda l: 1 + l,
        p_factor=lambda l: l, q_factor=None,
        domain=(-math.inf, math.inf), domain_closed=False,
        f_tex=r"u \log u", conjugate_tex=r"e^{t - 1}", activation_tex=r"v",
        t_star_tex=r"1 + \log r", finite_logits=80.0,
    )


def _reverse_kl() -> FDivergence:
    def conjugate(t):
        inside = t < 0
        safe = torch.where(inside, t, -torch.ones_like(t))
        return _inf_outside(t, inside, -1 - torch.log(-safe))

    return FDivergence(
        name="reverse_kl", title="reverse Kullback-Leibler",
        f=lambda u: -torch.log(u),
        f_prime=lambda u: -1 / u,
        conjugate=conjugate,
        activation=lambda v: -torch.exp(-v),
        conjugate_of_logit=lambda v: v - 1,  # -1 - log(exp(-v))
        t_star=lambda l: -torch.exp(-l),
        logit_star=lambda l: l,
        p_factor=None, q_factor=lambda l: -l,
        domain=(-math.inf, 0.0), domain_closed=False,
        f_tex=r"-\log u", conjugate_tex=r"-1 - \log(-t)", activation_tex=r"-e^{-v}",
        t_star_tex=r"-1/r", finite_logits=80.0,
    )


def _pearson() -> FDivergence:
    return FDivergence(
        name="pearson", title="Pearson chi-squared",
        f=lambda u: (u - 1) ** 2,
        f_prime=lambda u: 2 * (u - 1),
        # over u >= 0 the supremum sits at u = 1 + t/2 for t >= -2, at u = 0 below
        conjugate=lambda t: torch.where(t >= -2, t**2 / 4 + t, -torch.ones_like(t)),
        activation=lambda v: v,
        conjugate_of_logit=lambda v: torch.where(v >= -2, v**2 / 4 + v, -torch.ones_like(v)),
        t_star=lambda l: 2 * torch.expm1(l),
        logit_star=lambda l: 2 * torch.expm1(l),
        p_factor=None, q_factor=lambda l: torch.expm1(l) ** 2,
        domain=(-math.inf, math.inf), domain_closed=False,
        f_tex=r"(u - 1)^2", conjugate_tex=r"t^2/4 + t \ \ (t \ge -2)", activation_tex=r"v",
        t_star_tex=r"2(r - 1)", gan_loss="lsgan",
    )


def _hellinger() -> FDivergence:
    def conjugate(t):
        inside = t < 1
        safe = torch.where(inside, t, torch.zeros_like(t))
        return _inf_outside(t, inside, safe / (1 - safe))

    zero = torch.zeros(())
    return FDivergence(
        name="hellinger", title="squared Hellinger",
        f=lambda u: (torch.sqrt(u) - 1) ** 2,
        f_prime=lambda u: 1 - 1 / torch.sqrt(u),
        conjugate=conjugate,
        activation=lambda v: -torch.expm1(-v),  # 1 - e^{-v}
        conjugate_of_logit=torch.expm1,  # (1 - e^{-v}) / e^{-v}
        t_star=lambda l: -torch.expm1(-l / 2),
        logit_star=lambda l: l / 2,
        # (sqrt p - sqrt q)^2 = p (1 - sqrt(q/p))^2 where p >= q, q (1 - sqrt(p/q))^2 elsewhere
        p_factor=lambda l: torch.where(l >= 0, torch.expm1(-l / 2) ** 2, zero.to(l)),
        q_factor=lambda l: torch.where(l < 0, torch.expm1(l / 2) ** 2, zero.to(l)),
        domain=(-math.inf, 1.0), domain_closed=False,
        f_tex=r"(\sqrt u - 1)^2", conjugate_tex=r"t / (1 - t)", activation_tex=r"1 - e^{-v}",
        t_star_tex=r"1 - 1/\sqrt r", finite_logits=80.0,
    )


def _jsd() -> FDivergence:
    def conjugate(t):
        inside = t < LOG2 / 2
        safe = torch.where(inside, t, torch.zeros_like(t))
        return _inf_outside(t, inside, -0.5 * torch.log(2 - torch.exp(2 * safe)))

    return FDivergence(
        name="jsd", title="Jensen-Shannon",
        f=lambda u: 0.5 * (_xlogx(u) - torch.special.xlogy(u + 1, (u + 1) / 2)),
        f_prime=lambda u: 0.5 * torch.log(2 * u / (u + 1)),
        conjugate=conjugate,
        activation=lambda v: 0.5 * (LOG2 - F.softplus(-v)),
        conjugate_of_logit=lambda v: 0.5 * (F.softplus(v) - LOG2),
        t_star=lambda l: 0.5 * (LOG2 - F.softplus(-l)),
        logit_star=lambda l: l,
        p_factor=lambda l: 0.5 * (LOG2 - F.softplus(-l)),
        q_factor=lambda l: 0.5 * (LOG2 - F.softplus(l)),
        domain=(-math.inf, LOG2 / 2), domain_closed=False,
        f_tex=r"\tfrac12\bigl[u \log u - (u + 1) \log\tfrac{u + 1}{2}\bigr]",
        conjugate_tex=r"-\tfrac12 \log(2 - e^{2t})",
        activation_tex=r"\tfrac12\bigl(\log 2 - \log(1 + e^{-v})\bigr)",
        t_star_tex=r"\tfrac12 \log\tfrac{2r}{1 + r}",
    )


def _gan() -> FDivergence:
    def conjugate(t):
        inside = t < 0
        safe = torch.where(inside, t, -torch.ones_like(t))
        return _inf_outside(t, inside, -torch.log(-torch.expm1(safe)))

    return FDivergence(
        name="gan", title="GAN (2 JSD - log 4)",
        f=lambda u: _xlogx(u) - torch.special.xlogy(u + 1, u + 1),
        f_prime=lambda u: torch.log(u / (u + 1)),
        conjugate=conjugate,
        activation=lambda v: -F.softplus(-v),  # log sigmoid(v)
        conjugate_of_logit=F.softplus,  # -log(1 - sigmoid(v))
        t_star=lambda l: -F.softplus(-l),
        logit_star=lambda l: l,
        p_factor=lambda l: -F.softplus(-l),  # log D*
        q_factor=lambda l: -F.softplus(l),  # log(1 - D*)
        domain=(-math.inf, 0.0), domain_closed=False,
        f_tex=r"u \log u - (u + 1) \log(u + 1)", conjugate_tex=r"-\log(1 - e^{t})",
        activation_tex=r"-\log(1 + e^{-v})", t_star_tex=r"\log\tfrac{r}{1 + r}",
        gan_loss="minimax",
    )


def _tv() -> FDivergence:
    def conjugate(t):  # over u >= 0: -1/2 below t = -1/2 (the supremum sits at u = 0)
        return _inf_outside(t, t <= 0.5, torch.clamp(t, min=-0.5))

    def logit_star(l):
        return torch.where(l == 0, torch.zeros_like(l), torch.sign(l) * math.inf)

    return FDivergence(
        name="tv", title="total variation",
        f=lambda u: 0.5 * (u - 1).abs(),
        f_prime=lambda u: 0.5 * torch.sign(u - 1),
        conjugate=conjugate,
        activation=lambda v: 0.5 * torch.tanh(v),
        conjugate_of_logit=lambda v: 0.5 * torch.tanh(v),
        t_star=lambda l: 0.5 * torch.sign(l),
        logit_star=logit_star,
        # (p - q)_+ / 2 + (q - p)_+ / 2 with bounded factors, as in gan_lab.theory.total_variation
        p_factor=lambda l: 0.5 * torch.clamp(-torch.expm1(-l), min=0.0),
        q_factor=lambda l: 0.5 * torch.clamp(-torch.expm1(l), min=0.0),
        domain=(-math.inf, 0.5), domain_closed=True,
        f_tex=r"\tfrac12 \lvert u - 1 \rvert", conjugate_tex=r"\max(t, -\tfrac12) \ \ (t \le \tfrac12)",
        activation_tex=r"\tfrac12 \tanh v", t_star_tex=r"\tfrac12 \operatorname{sign}(r - 1)",
        gan_loss="hinge",
    )


#: Every f-divergence of the book, by name (the keys ``kl``, ``reverse_kl``, ``pearson``,
#: ``hellinger``, ``jsd``, ``gan`` and ``tv``), each an :class:`FDivergence`.
DIVERGENCES: dict[str, FDivergence] = {
    d.name: d for d in (_kl(), _reverse_kl(), _pearson(), _hellinger(), _jsd(), _gan(), _tv())
}

#: The f-GAN ``loss=`` names of :mod:`gan_lab.losses` (every divergence but ``"gan"``, whose
#: losses are ``"minimax"`` and ``"ns"``).
LOSS_NAMES: tuple[str, ...] = tuple(n for n in DIVERGENCES if n != "gan")


def get(divergence) -> FDivergence:
    """The registry row ``divergence`` (a name, or an :class:`FDivergence`, returned as is).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if isinstance(divergence, FDivergence):
        return divergence
    if not isinstance(divergence, str) or divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {tuple(DIVERGENCES)}, got {divergence!r}")
    return DIVERGENCES[divergence]


def _tensor(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() < 2:
        raise ValueError(f"{name} must hold at least 2 values (for a standard error), got {x.numel()}")
    return x


def variational_bound(divergence, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                      return_se: bool = False):
    r"""The f-GAN lower bound :math:`E_P\, g_f(v) - E_Q\, f^*(g_f(v))` from a critic's logits.

    Args:
        divergence: a name in :data:`DIVERGENCES` (or a row).
        real_logits: the critic's raw outputs :math:`v` on samples of :math:`P`, any shape
            (flattened; at least two values).
        fake_logits: its outputs on samples of :math:`Q`.
        return_se: also return the standard error of the estimate,
            :math:`\sqrt{\operatorname{Var}_P/n + \operatorname{Var}_Q/m}` over independent samples.

    Returns:
        The bound (a float), or ``(bound, se)``. It is :math:`\le D_f(P \| Q)` in expectation
        for any critic, with equality at the optimal logit ``logit_star`` of the row.
    """
    d = get(divergence)
    real = _tensor("real_logits", real_logits).detach().double().reshape(-1)
    fake = _tensor("fake_logits", fake_logits).detach().double().reshape(-1)
    for name, t in (("real_logits", real), ("fake_logits", fake)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} must be finite, got {int((~torch.isfinite(t)).sum())} non-finite values")
    a, b = d.activation(real), d.conjugate_of_logit(fake)
    value = float(a.mean() - b.mean())
    if not return_se:
        return value
    return value, math.sqrt(float(a.var()) / a.numel() + float(b.var()) / b.numel())
