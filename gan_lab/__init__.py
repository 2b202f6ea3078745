"""gan_lab: the small, tested PyTorch package behind the GAN textbook.

Modules, one concern each: :mod:`gan_lab.distributions` (mixtures with exact
densities, point clouds) and :mod:`gan_lab.mnist` (IDX files, cache, checked downloads,
offline fallback), both re-exported by :mod:`gan_lab.data`; :mod:`gan_lab.nets`
(seed-batched networks and their registry), :mod:`gan_lab.dcgan` (the image networks),
:mod:`gan_lab.losses` (pure functions of logits), :mod:`gan_lab.fdiv` (the f-divergences
behind the f-GAN losses) and
:mod:`gan_lab.mmd` (kernels and the MMD); :mod:`gan_lab.train` (the fits) with
:mod:`gan_lab.config` (the config), :mod:`gan_lab.runs` (what a fit returns),
:mod:`gan_lab.train_mmd` (the MMD fits), :mod:`gan_lab.step` (the D, G and simultaneous
steps), :mod:`gan_lab.loop` (the one loop) and :mod:`gan_lab.compiled` (the compiled
step); :mod:`gan_lab.checkpoint` (the checkpoint file format), :mod:`gan_lab.devices`
(CPU in, CPU out; the precision policy; device-check mode); :mod:`gan_lab.images` (the
DCGAN loop), :mod:`gan_lab.spectral` (spectral normalisation, layer and Lipschitz norms),
:mod:`gan_lab.conditional` (class-conditional networks, their loop and metrics, the
conditional D*), :mod:`gan_lab.classifier` (the evaluation
classifier, its cache and FID features), :mod:`gan_lab.latent` (interpolation,
truncation); :mod:`gan_lab.theory` (closed forms) and :mod:`gan_lab.ipm_theory` (IPMs in closed form) on
:mod:`gan_lab.quadrature`
(expectations by quadrature or Monte Carlo), :mod:`gan_lab.dynamics` (the Dirac-GAN);
:mod:`gan_lab.metrics` (mode statistics, distances, image metrics) and
:mod:`gan_lab.critics` (what a trained critic certifies); :mod:`gan_lab.plots` (GAN Lab's
visual layers, animations, image grids), :mod:`gan_lab.explore` (interactive explorers);
:mod:`gan_lab.profile` (budgets, device, base seed), :mod:`gan_lab.checks` (validators at
the boundaries); :mod:`gan_lab.results`, :mod:`gan_lab.records`,
:mod:`gan_lab.reproduce` (with :mod:`gan_lab.wgan_toy`, WGAN-GP's toy critics), :mod:`gan_lab.bench`, :mod:`gan_lab.chapter_times` and
:mod:`gan_lab.baselines` (results with
provenance, paper-scale reproductions, benchmarks against plain loops);
:mod:`gan_lab.gpu_check` (the whole suite on a CUDA machine) with :mod:`gan_lab.gpu_machine`
(device details, digits for a bare machine), :mod:`gan_lab.notebook_exec` (chapters without Jupyter) and
:mod:`gan_lab.optional_modules` (what a bare machine lacks).
"""

__version__ = "0.1.0"
