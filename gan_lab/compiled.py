"""The whole 2-D training step as one function, for ``torch.compile``.

A plain PyTorch step on these small networks costs a few milliseconds, almost all of it
Python dispatch of about 150 small operations; the arithmetic is microseconds. So
:func:`make_iteration` writes one training iteration — ``n_critic`` discriminator steps and one
generator step (or one simultaneous step) — *functionally*: each loss is a function of a
list of parameter tensors (:func:`torch.func.functional_call`), its gradient comes from
:func:`torch.func.grad`, and the optimiser update is tensor arithmetic on the optimiser's
own state tensors, written in place. ``torch.compile`` then turns the iteration into one
fused kernel program (on CUDA, captured as a CUDA graph: ``mode="reduce-overhead"``).

The random draws (data, latent codes, the penalty's interpolation weights) happen outside,
in the same order as the eager loop of :mod:`gan_lab.step`, so both engines see the same
numbers; they differ only in floating-point rounding (fused kernels sum in another order).
The optimiser state is ``torch.optim``'s own (its ``state_dict`` is valid for either engine).

If the platform cannot compile (no C++ compiler, an unsupported torch), :class:`Compiled`
warns once and the run continues eagerly.
"""

from __future__ import annotations

import contextlib
import os
import time
import types
import warnings

import torch
from torch.func import functional_call, grad

from . import losses
from .step import StepSpec, pack_samples

BACKEND_VARIABLE = "GAN_LAB_COMPILE_BACKEND"  #: torch.compile backend (default ``inductor``)
_WARNED: set = set()


class Functional:
    """A module as a pure function of its parameters (buffers passed alongside, mutated in place)."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.names = [n for n, _ in module.named_parameters()]
        self.params = [p.detach() for _, p in module.named_parameters()]  # share storage with the module
        self.buffer_names = [n for n, _ in module.named_buffers()]
        self.buffers = [b for _, b in module.named_buffers()]

    def __call__(self, params, buffers, x):
        return functional_call(self.module, {**dict(zip(self.names, params)),
                                             **dict(zip(self.buffer_names, buffers))}, (x,))


def _init_state(opt: torch.optim.Optimizer) -> list[dict]:
    """The optimiser's per-parameter state, created as ``torch.optim`` would on its first step."""
    states = []
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state[p]
            if not state:
                capturable = group.get("capturable", False)
                step = torch.zeros((), dtype=torch.float32, device=p.device if capturable else "cpu")
                if isinstance(opt, torch.optim.Adam):
                    state.update(step=step, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                elif isinstance(opt, torch.optim.RMSprop):
                    state.update(step=step, square_avg=torch.zeros_like(p))
            states.append(state)
    return states


def _update(opt: torch.optim.Optimizer, states: list[dict], params: list, grads: list) -> None:
    """One optimiser step on ``params`` in place: the arithmetic of ``torch.optim``'s update."""
    group = opt.param_groups[0]
    lr = group["lr"]
    with torch.no_grad():
        for p, g, s in zip(params, grads, states):
            if isinstance(opt, torch.optim.Adam):
                beta1, beta2 = group["betas"]
                s["step"].add_(1)
                s["exp_avg"].lerp_(g, 1 - beta1)
                s["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                # the bias corrections in double precision, as torch.optim.Adam computes them
                step = s["step"].to(p.device, torch.float64)
                step_size = (lr / (1 - beta1 ** step)).float()
                denom = s["exp_avg_sq"].sqrt() / (1 - beta2 ** step).sqrt().float() + group["eps"]
                p.sub_(step_size * s["exp_avg"] / denom)
            elif isinstance(opt, torch.optim.RMSprop):
                s["step"].add_(1)
                s["square_avg"].mul_(group["alpha"]).addcmul_(g, g, value=1 - group["alpha"])
                p.addcdiv_(g, s["square_avg"].sqrt().add_(group["eps"]), value=-lr)
            else:
                p.sub_(lr * g)


def _penalty(spec: StepSpec, D: Functional, dp, x_real, x_fake, eps):
    """WGAN-GP (at interpolates ``eps x_real + (1 - eps) x_fake``) or R1 (at data), per seed."""
    x = eps * x_real + (1 - eps) * x_fake if spec.penalty == "wgan-gp" else x_real
    gx = grad(lambda y: D(dp, D.buffers, y).sum())(x)  # samples do not interact: each its own gradient
    if spec.penalty == "wgan-gp":
        norm = torch.linalg.vector_norm(gx, dim=-1)
        return spec.penalty_weight * ((norm - 1) ** 2).mean(-1)
    return 0.5 * spec.penalty_weight * gx.pow(2).sum(-1).mean(-1)


def _d_objective(spec, D, dp, x_real, x_fake, eps):
    real_logits, fake_logits = D(dp, D.buffers, x_real), D(dp, D.buffers, x_fake)
    d_loss = losses.discriminator_loss(spec.loss, real_logits, fake_logits, dim=-1)
    penalty = _penalty(spec, D, dp, x_real, x_fake, eps) if spec.penalty else torch.zeros_like(d_loss)
    stats = torch.stack([d_loss, penalty, real_logits.mean(-1), fake_logits.mean(-1)])
    return (d_loss + penalty).sum(), stats


def _g_objective(spec, G, D, gp, g_buffers, dp, z):
    x_fake = G(gp, g_buffers, z)
    if spec.pack > 1:
        x_fake = pack_samples(x_fake, spec.pack)
    g_loss = losses.generator_loss(spec.loss, D(dp, D.buffers, x_fake), dim=-1)
    return g_loss.sum(), (g_loss, x_fake.detach())


def _clip(params, clip):
    if clip is not None:
        with torch.no_grad():
            for p in params:
                p.clamp_(-clip, clip)


def _grad_norm(grads):
    return torch.cat([g.reshape(g.shape[0], -1) for g in grads], 1).norm(dim=1)


def make_iteration(spec: StepSpec, G, D, opt_g, opt_d, *, n_critic: int = 1, update: str = "alternating"):
    """The functional iteration ``f(x_real, z_d, eps, z_g) -> stats (6, S)`` (not yet compiled) and the
    tensors it updates in place (parameters, buffers, optimiser state).

    ``x_real`` ``(n_critic, S, B, m d)`` (packed data), ``z_d`` ``(n_critic, S, B m, z)`` (the D
    steps' codes), ``eps`` ``(n_critic, S, B, 1)`` (WGAN-GP's interpolation weights, else
    ignored) and ``z_g`` ``(S, B m, z)``; with ``G=None`` (a critic against a fixed
    distribution) ``z_d`` holds the fixed distribution's packed samples and ``z_g`` is unused.
    Returns ``d_loss``, ``penalty``, ``g_loss``, the mean logits on data and on generated
    points, and G's gradient norm (the last D step's statistics; zeros for G without one).
    """
    fD = Functional(D)
    fG = Functional(G) if G is not None else None
    d_state = _init_state(opt_d)
    g_state = _init_state(opt_g) if G is not None else None
    tensors = [t for fn in (fD, fG) if fn is not None for t in fn.params + fn.buffers]
    tensors += [t for s in d_state + (g_state or []) for t in s.values()]

    def generate(z):
        with torch.no_grad():
            x = fG(fG.params, fG.buffers, z)
        return pack_samples(x, spec.pack) if spec.pack > 1 else x

    def f(x_real, z_d, eps, z_g):
        if update == "simultaneous":  # both gradients at the current point, from one pass through G
            g_grads, (g_loss, x_fake) = grad(_g_objective, argnums=3, has_aux=True)(
                spec, fG, fD, fG.params, fG.buffers, fD.params, z_g)
            d_grads, stats = grad(_d_objective, argnums=2, has_aux=True)(
                spec, fD, fD.params, x_real[0], x_fake, eps[0])
            _update(opt_d, d_state, fD.params, d_grads)
            _update(opt_g, g_state, fG.params, g_grads)
            _clip(fD.params, spec.clip)
            return torch.cat([stats[:2], g_loss[None], stats[2:], _grad_norm(g_grads)[None]])
        for k in range(n_critic):
            x_fake = generate(z_d[k]) if fG is not None else z_d[k]
            d_grads, stats = grad(_d_objective, argnums=2, has_aux=True)(
                spec, fD, fD.params, x_real[k], x_fake, eps[k])
            _update(opt_d, d_state, fD.params, d_grads)
            _clip(fD.params, spec.clip)
        if fG is None:
            zero = torch.zeros_like(stats[0])
            return torch.cat([stats[:2], zero[None], stats[2:], zero[None]])
        g_grads, (g_loss, _) = grad(_g_objective, argnums=3, has_aux=True)(
            spec, fG, fD, fG.params, fG.buffers, fD.params, z_g)
        _update(opt_g, g_state, fG.params, g_grads)
        return torch.cat([stats[:2], g_loss[None], stats[2:], _grad_norm(g_grads)[None]])

    return f, tensors


def compile_iteration(f, device: torch.device, tensors=()):
    """``torch.compile(f)`` (a CUDA graph on CUDA), with the backend from ``GAN_LAB_COMPILE_BACKEND``.

    Every fit builds its own ``f`` (a closure over its own networks and optimisers). Dynamo
    caches compiled code per code object and guards on the closure, so the closures of many
    fits would pile up in one cache until its recompile limit; each ``f`` is therefore given a
    code object of its own (the compiled kernels themselves are still reused from
    ``torch.compile``'s caches when the shapes agree).
    """
    f = types.FunctionType(f.__code__.replace(), f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    backend = os.environ.get(BACKEND_VARIABLE, "inductor")
    if device.type == "cuda":
        for t in tensors:  # parameters and optimiser state stay put: the CUDA graph may update them
            torch._dynamo.mark_static_address(t)
        return torch.compile(f, backend=backend, mode="reduce-overhead" if backend == "inductor" else None,
                             fullgraph=True)
    # on the CPU, inductor's C++ wrapper calls the kernels without Python in between (measured:
    # +30% steps per second for one seed of the 2-D GAN on the project's 2-core CPU)
    options = {"cpp_wrapper": True} if backend == "inductor" else None
    return torch.compile(f, backend=backend, fullgraph=True, options=options)


def _skip_guards():
    """A context that skips Dynamo's guard evaluation on calls after the first.

    Every fit compiles its own code object (:func:`compile_iteration`) and calls it with inputs
    of one shape, dtype and device, so its single cache entry always applies and checking the
    guards on each call (about 0.1 ms, a seventh of a one-seed step) only costs time. Torch
    versions without ``set_stance(skip_guard_eval_unsafe=...)`` keep their guards.
    """
    try:
        return torch.compiler.set_stance(skip_guard_eval_unsafe=True)
    except (AttributeError, TypeError):
        return contextlib.nullcontext()


class Compiled:
    """The iteration, built and compiled at its first call (after any checkpoint has been loaded).

    ``build()`` returns the functional iteration and the tensors it updates in place. The
    first call compiles it (timed); if compiling fails, one warning says so and every call
    runs the same function eagerly (same arithmetic as compiled, up to rounding).

    Attributes:
        seconds: seconds the first call took (compilation plus one iteration).
        eager: True once compilation failed and the functional iteration runs eagerly.
    """

    def __init__(self, build, device: torch.device):
        self.build, self.device = build, device
        self.f = self.compiled = None
        self.seconds, self.eager = 0.0, False

    def __call__(self, *args):
        if self.compiled is not None:
            if self.eager:
                return self.f(*args)
            with _skip_guards():
                return self.compiled(*args)
        self.f, tensors = self.build()
        self.compiled = compile_iteration(self.f, self.device, tensors)
        start = time.perf_counter()
        try:
            out = self.compiled(*args)
        except Exception as err:  # the platform cannot compile: the run goes on eagerly
            key = type(err).__name__
            if key not in _WARNED:
                _WARNED.add(key)
                first = (str(err).splitlines() or [""])[0][:200]
                warnings.warn(f"torch.compile is not available here ({key}: {first}); training runs the same "
                              "step eagerly instead (same results up to rounding, slower).",
                              RuntimeWarning, stacklevel=3)
            self.eager = True
            out = self.f(*args)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds = time.perf_counter() - start
        return out
