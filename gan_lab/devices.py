"""Device safety: the runs' networks live on their device; chapters see only CPU tensors.

A run (:class:`gan_lab.train.Run`, :class:`gan_lab.train.CriticRun`,
:class:`gan_lab.images.ImageRun`) keeps its networks on the device it trained on, which
is a GPU wherever one is present. Its evaluation methods (``run.logits(x)``,
``run.probabilities(x)``, ``run.generate(z)``, ``run.weights()``) take CPU tensors, run
the network on the run's device without gradients, and return CPU tensors, so the same
chapter cell works on a laptop and on Colab's GPU.

**Device-check mode** (``GAN_LAB_DEVICE_CHECK=1``; the unit tests and nbval run in it).
On a CPU-only machine a cell such as ``run.discriminator(x)`` or
``run.discriminator.parameters()`` followed by ``.numpy()`` works, and would crash on a GPU
(a CPU input to a CUDA network; ``.numpy()`` of a CUDA tensor). In check mode the networks a
run exposes are replaced, outside gan_lab's own code, by a stand-in that behaves as if the
network were on another device: calling it, or reading its parameters, raises
:class:`DeviceMixingError` naming the device-safe method to use instead. gan_lab's own code
reaches the real network through :func:`unwrap`. What it cannot catch: a tensor that a
chapter creates and moves itself, or a library function that returns a device tensor; the
GPU check (``python -m gan_lab.gpu_check``) runs everything on CUDA for those.
"""

from __future__ import annotations

import os

import numpy as np
import torch

CHECK_VARIABLE = "GAN_LAB_DEVICE_CHECK"


class DeviceMixingError(RuntimeError):
    """A run's network was used directly, which mixes devices wherever the run is on a GPU."""


def check_mode() -> bool:
    """Whether device-check mode is on (``GAN_LAB_DEVICE_CHECK`` set to ``1``, ``true``, ``yes`` or ``on``)."""
    raw = os.environ.get(CHECK_VARIABLE, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{CHECK_VARIABLE} must be 0 or 1, got {raw!r}")


class OnAnotherDevice:
    """Stands in for a run's network in device-check mode: any direct use raises.

    ``repr`` and ``n_seeds`` (a plain int) stay readable; everything else (calling it,
    ``.parameters()``, ``.state_dict()``, ``.weight`` ...) raises :class:`DeviceMixingError`.
    """

    __slots__ = ("_module", "_name", "_hint")

    def __init__(self, module: torch.nn.Module, name: str, hint: str):
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_hint", hint)

    def _refuse(self, what: str):
        raise DeviceMixingError(
            f"{what} uses the network {self._name} directly; on a GPU it lives on the GPU, so a CPU "
            f"tensor fed to it (or .numpy() of its weights) fails there. Use {self._hint}, which take and "
            f"return CPU tensors. (Device-check mode, {CHECK_VARIABLE}=1, makes this visible on the CPU.)")

    def __call__(self, *args, **kwargs):
        self._refuse(f"{self._name}(...)")

    def __getattr__(self, attr: str):
        if attr == "n_seeds":
            return getattr(self._module, "n_seeds")
        self._refuse(f"{self._name}.{attr}")

    def __setattr__(self, attr, value):
        self._refuse(f"setting {self._name}.{attr}")

    def __repr__(self) -> str:
        return f"OnAnotherDevice({self._module.__class__.__name__}, use {self._hint})"


def guard(module: torch.nn.Module | None, name: str, hint: str):
    """``module`` itself, or in device-check mode its :class:`OnAnotherDevice` stand-in."""
    if module is None or isinstance(module, OnAnotherDevice) or not check_mode():
        return module
    return OnAnotherDevice(module, name, hint)


def unwrap(module):
    """The real network behind a :class:`OnAnotherDevice` stand-in (or ``module`` itself)."""
    if isinstance(module, OnAnotherDevice):
        return object.__getattribute__(module, "_module")
    return module


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a network's first parameter (or buffer); the CPU for one with neither."""
    module = unwrap(module)
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def to_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached on the CPU (a no-op for a CPU tensor without gradient)."""
    return x.detach().cpu()


def as_input(name: str, x, dim: int | None, seeds: int) -> torch.Tensor:
    """A CPU tensor of shape ``(n, dim)`` or ``(seeds, n, dim)`` as a float32 ``(seeds, n, dim)`` tensor.

    ``(n, dim)`` is evaluated by every seed's network; ``(seeds, n, dim)`` gives each seed its own
    points. ``dim=None`` accepts any last dimension (the network checks it).
    """
    if dim is None and isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim in (2, 3):
        dim = x.shape[-1]
    dim = "d" if dim is None else dim
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor or array of shape (n, {dim}) or ({seeds}, n, {dim}), "
                        f"got {type(x).__name__}")
    if x.device.type != "cpu":
        raise ValueError(f"{name} must be a CPU tensor (runs move it to their device), got one on {x.device}")
    if x.ndim == 2 and x.shape[1] == dim:
        x = x[None].expand(seeds, -1, -1)
    if x.ndim != 3 or x.shape[0] != seeds or x.shape[2] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}) or ({seeds}, n, {dim}), got {tuple(x.shape)}")
    return x.float()


def flat_weights(module: torch.nn.Module) -> np.ndarray:
    """Every parameter of a seed-batched network, flattened per seed: a NumPy array ``(seeds, P)``."""
    module = unwrap(module)
    seeds = module.n_seeds
    return torch.cat([p.detach().reshape(seeds, -1).cpu() for p in module.parameters()], dim=1).numpy()


def bf16_supported(dev: torch.device) -> bool:
    """Whether ``dev`` computes in bfloat16 natively: a CUDA device of compute capability >= 8.0.

    Colab's T4 (7.5) and the V100 (7.0) have no native bfloat16 (cuDNN has no bfloat16
    convolutions there), so they train in float32; the CPU always does.
    """
    dev = torch.device(dev)
    if dev.type != "cuda":
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch < 2.4 has no including_emulation
        return torch.cuda.get_device_capability(dev) >= (8, 0)


def autocast_dtype(dev: torch.device) -> torch.dtype:
    """The precision policy: bfloat16 autocast where :func:`bf16_supported`, float32 everywhere else.

    Losses and penalties are always computed in float32 (callers cast logits with ``.float()``
    and compute penalties outside autocast).
    """
    return torch.bfloat16 if bf16_supported(dev) else torch.float32


def autocast(dev: torch.device):
    """The autocast context of the precision policy (a no-op where it is float32)."""
    dtype = autocast_dtype(dev)
    return torch.autocast(torch.device(dev).type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)


class seeded:
    """Fork and seed the global generators of the CPU and (if CUDA) of ``dev`` only, restoring them after.

    ``torch.manual_seed`` inside ``torch.random.fork_rng(devices=[])`` would reseed every CUDA
    generator and restore only the CPU's; this seeds exactly what it restores.
    """

    def __init__(self, seed: int, dev: torch.device | str = "cpu"):
        self.seed, self.dev = int(seed), torch.device(dev)

    def __enter__(self):
        cuda = [self.dev] if self.dev.type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=cuda, device_type="cuda")
        self._fork.__enter__()
        torch.default_generator.manual_seed(self.seed)
        if cuda:
            index = self.dev.index if self.dev.index is not None else torch.cuda.current_device()
            torch.cuda.default_generators[index].manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)
