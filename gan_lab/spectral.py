r"""Spectral normalisation and the Lipschitz constant of a network (chapter 12).

Miyato et al. (2018) divide each weight of the discriminator by an estimate of its
largest singular value :math:`\sigma(W) = \max_{\lVert v \rVert = 1} \lVert W v \rVert`,
kept up to date by one step of power iteration per training step. This module holds

- :func:`largest_singular_value`: power iteration for :math:`\sigma(W)` of a matrix
  ``(m, n)`` or of a stack ``(S, m, n)``;
- :func:`weight_matrix` and :func:`conv_operator_norm`: what spectral normalisation
  normalises for a convolution (the kernel reshaped to ``(out, in * kh * kw)``), and
  what the convolution's norm as a linear map on a given input size really is;
- :func:`layer_norms`, :func:`lipschitz_bound` and :func:`measured_lipschitz`: the
  product of the layers' norms, an upper bound on a network's Lipschitz constant, and
  two lower bounds measured on points;
- :class:`SeedSpectralNorm` and :func:`apply_seed_spectral_norm`: spectral
  normalisation of the book's seed-batched :class:`gan_lab.nets.SeedLinear` layers,
  the algorithm of :func:`torch.nn.utils.parametrizations.spectral_norm` for each seed;
  :func:`apply_spectral_norm` applies torch's own to a network's ``Conv2d`` and
  ``Linear`` layers (the image discriminator).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from . import checks, devices
from .critics import lipschitz_on

#: Activations that are 1-Lipschitz or better, with their Lipschitz constants (LeakyReLU's is
#: ``max(1, |slope|)``, computed). Layers without parameters that only move entries are 1.
_SHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)
_ACTIVATIONS = {nn.ReLU: 1.0, nn.Tanh: 1.0, nn.Sigmoid: 0.25}


def _unit(v: torch.Tensor) -> torch.Tensor:
    """Each row of ``v`` ``(S, n)`` scaled to unit norm."""
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)


def largest_singular_value(weight: torch.Tensor, n_iter: int = 100, v: torch.Tensor | None = None,
                           rng: torch.Generator | None = None) -> torch.Tensor:
    r"""The largest singular value of a matrix by power iteration on :math:`W^\top W`.

    From a start :math:`v_0` (``v``, or a standard normal draw from ``rng``) it iterates
    :math:`v_{k+1} = W^\top W v_k / \lVert W^\top W v_k \rVert` and returns
    :math:`\lVert W v_K \rVert`, which never exceeds :math:`\sigma(W)` and approaches it at
    the rate :math:`(\sigma_2 / \sigma_1)^{2K}` when :math:`v_0` is not orthogonal to the top
    right singular vector. A few iterations from a poor start are not accurate.

    Args:
        weight: a matrix ``(m, n)`` or a stack ``(S, m, n)`` (one estimate per slice).
        n_iter: iterations ``K`` (>= 1).
        v: the start, ``(n,)`` or ``(S, n)``; default a normal draw from ``rng``.
        rng: the random generator for the start (its device must be ``weight``'s).

    Returns:
        A tensor ``()`` or ``(S,)`` in ``weight``'s dtype.
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim not in (2, 3) or not weight.is_floating_point():
        raise ValueError(f"weight must be a float tensor of shape (m, n) or (S, m, n), "
                         f"got {getattr(weight, 'shape', type(weight).__name__)!r}")
    n_iter = checks.positive_int("n_iter", n_iter)
    W = weight.detach()
    batched = W.ndim == 3
    W = W if batched else W[None]  # (S, m, n)
    if v is None:
        v = torch.randn(W.shape[0], W.shape[2], generator=rng, device=W.device, dtype=W.dtype)
    else:
        v = v.detach().to(W)
        v = v if v.ndim == 2 else v[None]
        if v.shape != (W.shape[0], W.shape[2]):
            raise ValueError(f"v must have shape {tuple(W.shape[::2]) if batched else (W.shape[2],)}, "
                             f"got {tuple(v.shape)}")
    v = _unit(v)
    for _ in range(n_iter):
        v = _unit(torch.einsum("smn,sm->sn", W, torch.einsum("smn,sn->sm", W, v)))  # W^T W v
    sigma = torch.einsum("smn,sn->sm", W, v).norm(dim=1)  # (S,)
    return sigma if batched else sigma[0]


def weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The weight as the matrix spectral normalisation normalises: output dimension first.

    A linear weight ``(out, in)`` is itself; a convolution's ``(out, in, kh, kw)`` becomes
    ``(out, in * kh * kw)`` (Miyato et al. 2018; ``torch.nn.utils.parametrizations.spectral_norm``
    with ``dim=0``).
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim < 2:
        raise ValueError(f"weight must be a tensor with at least 2 dimensions, "
                         f"got {getattr(weight, 'shape', type(weight).__name__)!r}")
    return weight.flatten(1)


def linear_operator_norm(linear_map: Callable[[torch.Tensor], torch.Tensor], input_shape: Sequence[int],
                         n_iter: int = 200, rng: torch.Generator | None = None, dtype=torch.float64,
                         device=None) -> float:
    r"""The operator norm :math:`\max_{\lVert x \rVert = 1} \lVert A x \rVert` of a linear map.

    Power iteration on :math:`A^\top A`, with :math:`A^\top A x` the gradient of
    :math:`\tfrac12 \lVert A x \rVert^2` (autograd gives the adjoint). ``linear_map`` takes a
    batch ``(1, *input_shape)``; it must be linear (no bias). Returns :math:`\lVert A x_K \rVert`,
    a lower bound that converges to the norm.
    """
    n_iter = checks.positive_int("n_iter", n_iter)
    shape = (1, *[checks.positive_int("input_shape", int(s)) for s in input_shape])
    x = torch.randn(shape, generator=rng, dtype=dtype, device=device)
    x = x / x.norm()
    for _ in range(n_iter):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(0.5 * linear_map(x).pow(2).sum(), x)  # A^T A x
        x = grad / grad.norm().clamp_min(1e-300)
    with torch.no_grad():
        return float(linear_map(x.detach()).norm())


def conv_operator_norm(weight: torch.Tensor, input_shape: Sequence[int], stride=1, padding=0,
                       dilation=1, n_iter: int = 200, rng: torch.Generator | None = None) -> float:
    r"""The norm of the convolution ``conv2d(x, weight, stride, padding, dilation)`` as a linear map
    on inputs of shape ``input_shape = (in, H, W)`` (no bias), by :func:`linear_operator_norm`
    in float64.

    It differs from the norm of the reshaped kernel :math:`\sigma(W_{\text{mat}})`
    (:func:`weight_matrix`). With a window that fits inside the input,

    .. math:: \sigma(W_{\text{mat}}) \le \lVert A \rVert \le \sqrt{\lceil k_h/s_h \rceil \lceil k_w/s_w \rceil}\, \sigma(W_{\text{mat}})

    (the left: the top singular vector placed in one window; the right: each output
    position sees one patch, and each input pixel lies in at most that many patches;
    see :func:`overlap_factor`). On an input smaller than the kernel the left inequality can fail.
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ValueError(f"weight must be a conv2d weight (out, in, kh, kw), "
                         f"got {getattr(weight, 'shape', type(weight).__name__)!r}")
    if len(input_shape) != 3 or int(input_shape[0]) != weight.shape[1]:
        raise ValueError(f"input_shape must be (in={weight.shape[1]}, H, W), got {tuple(input_shape)!r}")
    w = weight.detach().to(torch.float64)
    return linear_operator_norm(lambda x: F.conv2d(x, w, None, stride, padding, dilation), input_shape,
                                n_iter, rng, device=w.device)


def overlap_factor(kernel_size, stride) -> int:
    r"""The most patches of a convolution that contain one input pixel:
    :math:`\lceil k_h/s_h \rceil \lceil k_w/s_w \rceil` (its square root bounds
    :math:`\lVert A \rVert / \sigma(W_{\text{mat}})`, :func:`conv_operator_norm`)."""
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    return math.ceil(k[0] / s[0]) * math.ceil(k[1] / s[1])


def _leaves(net: nn.Module, input_shape) -> list[tuple[str, nn.Module, tuple]]:
    """The network's leaf modules in call order, each with the shape of its input (batch dropped)."""
    seen: list = []
    leaves = [(n, m) for n, m in net.named_modules()  # a parametrized layer counts as a leaf
              if "parametrizations" not in n.split(".") and (parametrize.is_parametrized(m) or not list(m.children()))]

    def hook_for(name):
        return lambda module, args, _out: seen.append((name, module, tuple(args[0].shape[1:])))

    handles = [m.register_forward_hook(hook_for(n)) for n, m in leaves]
    try:
        was = net.training
        net.eval()
        with torch.no_grad():
            p = next(net.parameters())
            net(torch.zeros(1, *input_shape, dtype=p.dtype, device=p.device))
        net.train(was)
    finally:
        for h in handles:
            h.remove()
    return seen


def layer_norms(net: nn.Module, input_shape: Sequence[int], conv: str = "operator",
                n_iter: int = 200) -> list[tuple[str, float]]:
    r"""Each layer's Lipschitz constant, in call order: ``[(name, constant), ...]``.

    A ``Linear`` layer gives :math:`\sigma(W)` (``torch.linalg.matrix_norm(W, 2)``), a ``Conv2d``
    its operator norm on the input it receives (``conv="operator"``, :func:`conv_operator_norm`)
    or the norm of its reshaped kernel (``conv="kernel"``, what spectral normalisation controls;
    not a bound). Activations give their constants (ReLU, tanh 1; LeakyReLU
    ``max(1, |slope|)``; sigmoid 1/4); reshaping layers 1. The weights used are the ones the
    layer applies, so a spectrally normalised layer's are the normalised ones (eval mode: the
    stored ``u``, no power-iteration step).

    Raises:
        ValueError: for batch normalisation (in training it mixes the samples of a batch, and
            in eval its constant :math:`\max |\gamma| / \sqrt{\mathrm{var} + \epsilon}` is not
            controlled by spectral normalisation; the bound is refused) and any other layer
            whose constant is not known.
    """
    net = devices.unwrap(net)  # a run's guarded network: the results are floats and CPU tensors
    checks.one_of("conv", conv, ("operator", "kernel"))
    out = []
    was = net.training
    net.eval()  # a parametrized weight read in training mode would run a power-iteration step
    try:
        _layer_norms_into(out, net, input_shape, conv, n_iter)
    finally:
        net.train(was)
    return out


def _layer_norms_into(out, net, input_shape, conv, n_iter) -> None:
    for name, m, shape in _leaves(net, tuple(input_shape)):
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise ValueError(f"layer {name!r} is batch normalisation: the product of layer norms bounds the "
                             "Lipschitz constant only without it (build the network with batch_norm=False)")
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                out.append((name, float(torch.linalg.matrix_norm(m.weight.detach().double(), 2))))
        elif isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ValueError(f"layer {name!r}: only zero-padded, ungrouped Conv2d layers with numeric "
                                 "padding are supported")
            with torch.no_grad():
                w = m.weight.detach()
            if conv == "kernel":
                out.append((name, float(torch.linalg.matrix_norm(weight_matrix(w).double(), 2))))
            else:
                out.append((name, conv_operator_norm(w, shape, m.stride, m.padding, m.dilation, n_iter,
                                                     torch.Generator(w.device).manual_seed(0))))
        elif isinstance(m, nn.LeakyReLU):
            out.append((name, max(1.0, abs(m.negative_slope))))
        elif type(m) in _ACTIVATIONS:
            out.append((name, _ACTIVATIONS[type(m)]))
        elif isinstance(m, _SHAPE_ONLY):
            out.append((name, 1.0))
        else:
            raise ValueError(f"layer {name!r} ({type(m).__name__}) has no known Lipschitz constant")


def lipschitz_bound(net: nn.Module, input_shape: Sequence[int], n_iter: int = 200) -> float:
    r"""The product of the layers' constants (:func:`layer_norms`, convolutions by their operator
    norms): an upper bound on the network's Lipschitz constant in the Euclidean norm, since
    :math:`\mathrm{Lip}(f_L \circ \dots \circ f_1) \le \prod_l \mathrm{Lip}(f_l)`. Biases do
    not change it."""
    return math.prod(c for _, c in layer_norms(net, input_shape, "operator", n_iter))


def gradient_norms(net: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    r"""Per-sample :math:`\lVert \nabla_x f(x) \rVert_2` of a network with one output per sample,
    ``x`` of shape ``(n, ...)``, in eval mode. Returns a CPU tensor ``(n,)``."""
    net = devices.unwrap(net)  # a run's guarded network: the results are floats and CPU tensors
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(f"x must be a tensor (n, ...), got {getattr(x, 'shape', type(x).__name__)!r}")
    was = net.training
    net.eval()
    p = next(net.parameters())
    out = []
    for chunk in x.split(batch_size):
        xc = chunk.to(p.device, p.dtype).requires_grad_(True)
        (g,) = torch.autograd.grad(net(xc).sum(), xc)  # samples are independent in eval mode
        out.append(g.flatten(1).norm(dim=1).detach().cpu())
    net.train(was)
    return torch.cat(out)


def measured_lipschitz(net: nn.Module, x: torch.Tensor) -> dict:
    r"""Two lower bounds on the Lipschitz constant of ``net``, measured at the points ``x`` ``(n, ...)``.

    ``"gradient"``: :math:`\max_i \lVert \nabla f(x_i) \rVert` (:func:`gradient_norms`);
    ``"pairs"``: :math:`\max_{i \ne j} |f(x_i) - f(x_j)| / \lVert x_i - x_j \rVert`
    (:func:`gan_lab.critics.lipschitz_on`). Both are at most :func:`lipschitz_bound`.
    """
    net = devices.unwrap(net)  # a run's guarded network: the results are floats and CPU tensors
    grads = gradient_norms(net, x)
    was = net.training
    net.eval()
    p = next(net.parameters())
    with torch.no_grad():
        values = torch.cat([net(c.to(p.device, p.dtype)).cpu() for c in x.split(500)])
    net.train(was)
    return {"gradient": float(grads.max()), "pairs": lipschitz_on(x.flatten(1).double().cpu(), values.flatten())}


# --- spectral normalisation of seed-batched layers -------------------------------------------


class SeedSpectralNorm(nn.Module):
    r"""Spectral normalisation of a seed-batched weight ``(S, in, out)`` (:class:`gan_lab.nets.SeedLinear`).

    Slot ``s`` holds the transpose of an ``nn.Linear`` weight, :math:`W_s = \text{weight}[s]^\top`
    ``(out, in)``. For each slot this is the algorithm of
    :func:`torch.nn.utils.parametrizations.spectral_norm`: buffers ``_u (S, out)`` and
    ``_v (S, in)``, started from normalised normal draws and 15 power iterations; in training
    mode each forward (each use of the weight) first does ``n_power_iterations`` steps
    :math:`u \leftarrow W v / \lVert W v \rVert,\ v \leftarrow W^\top u / \lVert W^\top u \rVert`
    (no gradient), then returns :math:`W_s / \sigma_s` with
    :math:`\sigma_s = u_s^\top W_s v_s`, differentiated through :math:`W_s` only. Eval mode
    leaves ``u`` and ``v`` as they are.

    Args:
        weight: the weight ``(S, in, out)`` to be normalised.
        n_power_iterations: power-iteration steps per training-mode forward.
        eps: floor of the norms, as torch's.
        rngs: one CPU random generator per slot for the initial ``u``, ``v`` (slot ``s`` draws
            its ``u`` then its ``v`` from ``rngs[s]``), or ``None`` for torch's global one.
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, eps: float = 1e-12,
                 rngs: Sequence[torch.Generator] | None = None):
        super().__init__()
        if weight.ndim != 3:
            raise ValueError(f"weight must have shape (S, in, out), got {tuple(weight.shape)}")
        self.n_power_iterations = checks.positive_int("n_power_iterations", n_power_iterations)
        self.eps = checks.positive_number("eps", eps)
        S, n_in, n_out = weight.shape
        if rngs is not None and len(rngs) != S:
            raise ValueError(f"rngs must hold one generator per slot ({S}), got {len(rngs)}")
        draws = [(torch.randn(n_out, generator=g), torch.randn(n_in, generator=g)) for g in (rngs or [None] * S)]
        u, v = (torch.stack(d).to(weight) for d in zip(*draws))  # (S, out), (S, in)
        self.register_buffer("_u", F.normalize(u, dim=1, eps=self.eps))
        self.register_buffer("_v", F.normalize(v, dim=1, eps=self.eps))
        self._power_method(weight.detach(), 15)

    @torch.no_grad()
    def _power_method(self, weight: torch.Tensor, n: int) -> None:
        for _ in range(n):  # in place, as torch's (the buffers are the module's state)
            self._u.copy_(F.normalize(torch.einsum("sio,si->so", weight, self._v), dim=1, eps=self.eps))  # W v
            self._v.copy_(F.normalize(torch.einsum("sio,so->si", weight, self._u), dim=1, eps=self.eps))  # W^T u

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_method(weight.detach(), self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()  # cloned: a later step must not change this graph's u, v
        sigma = torch.einsum("so,sio,si->s", u, weight, v)  # (S,)
        return weight / sigma[:, None, None]

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value


def _refuse_batch_norm(net: nn.Module) -> None:
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        raise ValueError("net holds batch normalisation: spectral normalisation bounds the Lipschitz "
                         "constant only without it")


def apply_seed_spectral_norm(net: nn.Module, seeds: Sequence[int] | None = None,
                             n_power_iterations: int = 1) -> nn.Module:
    """Register :class:`SeedSpectralNorm` on the weight of every :class:`gan_lab.nets.SeedLinear`
    in ``net`` (in place; returns ``net``).

    ``seeds`` (one per slot) fixes the initial ``u``, ``v``: slot ``s`` draws those of every
    layer, in order, from ``torch.Generator().manual_seed(seeds[s])``, so a slot's draws do not
    depend on the other slots. ``ValueError`` if ``net`` has no such layer or holds batch norm.
    """
    from .nets import SeedLinear

    _refuse_batch_norm(net)
    layers = [m for m in net.modules() if isinstance(m, SeedLinear)]
    if not layers:
        raise ValueError("net has no SeedLinear layer to normalise")
    rngs = None if seeds is None else [torch.Generator().manual_seed(checks.non_negative_int("seeds", s))
                                       for s in seeds]
    for m in layers:
        if not parametrize.is_parametrized(m, "weight"):
            parametrize.register_parametrization(m, "weight", SeedSpectralNorm(m.weight, n_power_iterations,
                                                                               rngs=rngs))
            # SeedLinear's forward reads ``weight`` for its product and, through ``n_seeds``, for its
            # shape check; each read of a parametrized weight is one power-iteration step. The
            # parametrized class (one per module) takes the seed count from the stored weight, so
            # that a forward is one step, as with torch's spectral_norm on nn.Linear.
            type(m).n_seeds = property(lambda self: self.parametrizations.weight.original.shape[0])
    return net


def apply_spectral_norm(net: nn.Module, seed: int | None = None, n_power_iterations: int = 1) -> nn.Module:
    """``torch.nn.utils.parametrizations.spectral_norm`` on every ``Conv2d`` and ``Linear`` of ``net``
    (in place; returns ``net``).

    ``seed`` fixes the initial ``u``, ``v`` (drawn from torch's global CPU generator, seeded so
    inside :func:`torch.random.fork_rng`, which leaves the global stream as it was).
    ``ValueError`` if ``net`` has no such layer or holds batch norm.
    """
    _refuse_batch_norm(net)
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ValueError("net has no Conv2d or Linear layer to normalise")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(checks.non_negative_int("seed", seed))
        for m in layers:
            if not parametrize.is_parametrized(m, "weight"):
                nn.utils.parametrizations.spectral_norm(m, n_power_iterations=n_power_iterations)
    return net


def normalised_norms(net: nn.Module) -> list[tuple[str, float]]:
    r"""For each spectrally normalised layer of ``net``, the exact largest singular value of the
    normalised weight matrix it applies (reshaped as :func:`weight_matrix`; a seed-batched layer
    gives the maximum over its seeds). Since :math:`u^\top W v \le \sigma(W)` for unit ``u``, ``v``,
    each is at least 1, and equals 1 when the power iteration has converged."""
    net = devices.unwrap(net)  # a run's guarded network: the results are floats and CPU tensors
    out = []
    with torch.no_grad():
        for name, m in net.named_modules():
            if parametrize.is_parametrized(m, "weight"):
                was = m.training
                m.eval()  # read the weight without a power-iteration step
                w = m.weight.double()
                m.train(was)
                mat = w.transpose(1, 2) if w.ndim == 3 and isinstance(m.parametrizations.weight[0],
                                                                      SeedSpectralNorm) else weight_matrix(w)
                out.append((name, float(torch.linalg.matrix_norm(mat, 2).max())))
    return out
