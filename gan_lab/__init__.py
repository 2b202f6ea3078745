"""gan_lab: the small, tested PyTorch package behind the GAN textbook.

Modules, one concern each: :mod:`gan_lab.data` (mixtures with exact densities,
point clouds), :mod:`gan_lab.nets` (seed-batched networks), :mod:`gan_lab.losses`
(pure functions of logits), :mod:`gan_lab.train` (the training loop),
:mod:`gan_lab.plots` (GAN Lab's visual layers and animations),
:mod:`gan_lab.theory` (closed forms), :mod:`gan_lab.metrics` (mode statistics),
:mod:`gan_lab.explore` (interactive explorers), :mod:`gan_lab.results` and
:mod:`gan_lab.bench` (results with provenance, benchmarks), :mod:`gan_lab.profile`
(budgets, device, base seed), :mod:`gan_lab.devices` (CPU in, CPU out; the precision
policy; device-check mode), :mod:`gan_lab.checkpoint` (the checkpoint file format) and
:mod:`gan_lab.gpu_check` (the whole suite on a CUDA machine).
"""

__version__ = "0.1.0"
