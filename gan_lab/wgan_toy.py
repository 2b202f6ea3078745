r"""WGAN-GP value surfaces at the authors' settings: Figure 1 of Gulrajani et al. (2017), critics only.

The reproduction ``wgan-gp-surfaces`` (registered in :data:`gan_lab.reproduce.REGISTRY`; run it with
``python -m gan_lab.reproduce wgan-gp-surfaces --profile quick|full|paper``) trains critics *alone*
against a fixed "generator", the data plus unit-variance Gaussian noise, on the paper's three toy
data sets, once with the gradient penalty and once with weight clipping, and measures each trained
critic on a fixed evaluation sample of data :math:`x_i` and noisy points :math:`y_j`:

* ``fraction``: the share of the exact empirical :math:`W_1` that the critic certifies,
  :func:`gan_lab.critics.critic_w1_bound` over :func:`gan_lab.metrics.wasserstein1`;
* ``r2``: how much of the critic a quadratic explains, :func:`gan_lab.critics.quadratic_r2`;
* ``at_c`` (clipped critics only): the fraction of the critic's parameters at :math:`\pm c`.

The settings are those of the authors' ``gan_toy.py`` (igul222/improved_wgan_training): a critic of
three hidden ReLU layers of 512 units; for the penalty :math:`\lambda = 0.1` and Adam with learning
rate :math:`10^{-4}`, :math:`\beta = (0.5, 0.9)`; for clipping, RMSProp with learning rate
:math:`5 \cdot 10^{-5}` and :math:`c = 0.01` (Arjovsky et al. 2017); batches of 256 data points and
256 noisy points; the data divided by the authors' constants (:data:`DATA`). Their plots hold the
generator fixed for 100,000 iterations of 5 critic steps, 500,000 critic steps
(:data:`STEPS_TO_OPTIMALITY`, what the paper calls trained to optimality).

Differences from their code, stated rather than hidden: (1) their "generator" adds the noise to the
*same* real batch, so the penalty's interpolates lie between a data point and its own noisy copy;
here the noisy batch is drawn independently (:class:`gan_lab.distributions.Noisy`), so they lie
between a data point and another one's noisy copy. (2) Initialisation: their linear layers are
He-uniform with zero biases; ours (:class:`gan_lab.nets.SeedLinear`) are uniform in
:math:`\pm 1/\sqrt{\text{fan-in}}`, biases too. (3) RMSProp: TensorFlow's defaults (decay 0.9,
:math:`\epsilon = 10^{-10}`) against torch's (0.99, :math:`10^{-8}`). (4) The 25 Gaussians come from
a fixed shuffled set of 100,000 points (exactly 4,000 per mode) in their code, fresh draws of the
mixture here; the Swiss roll comes fresh from ``sklearn.datasets.make_swiss_roll`` there, from a
fixed set of 100,000 points of the same construction (:func:`gan_lab.distributions.swiss_roll`)
here. (5) The profiles' budgets: ``paper`` is their 500,000 critic steps (a GPU job); ``full`` is
150 critic steps (0.03 % of them) for 4 trials, what a 2-core CPU does in about 260 CPU seconds
(the stored record took 17.6 minutes of wall time on a machine shared with other jobs), so the
``full`` record measures critics far from optimality, and its label says so; ``quick`` checks the
pipeline in seconds.

:func:`stored_records` reads the records under ``results/`` and :func:`table` formats one for the
book, labelled with its device, date, budget and code version.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import critics, distributions, metrics, records
from .results import load_json

#: The command-line name of the reproduction.
NAME = "wgan-gp-surfaces"
#: Critic steps of the authors' fixed-generator plots (100,000 iterations x 5 critic steps).
STEPS_TO_OPTIMALITY = 500_000
#: The three toy data sets of the authors' ``gan_toy.py``, before and after their division by
#: ``divide_by`` (their comment: "stdev").
DATA = {
    "8 Gaussians": {"modes": 8, "radius": 2.0, "std": 0.02, "divide_by": 1.414},
    "25 Gaussians": {"side": 5, "spacing": 2.0, "std": 0.05, "divide_by": 2.828},
    "Swiss roll": {"noise": 0.25, "divide_by": 7.5, "points": 100_000, "seed": 0},
}
#: The fixed generator is the data plus noise of this standard deviation (unit variance).
NOISE_STD = 1.0
#: What both kinds of critic share (the authors' network and batch; one critic step per step).
CRITIC = {"loss": "wasserstein", "d_hidden": (512, 512, 512), "activation": "relu", "batch_size": 256,
          "n_critic": 1}
#: The two kinds of critic, as :func:`gan_lab.train.fit_discriminator` keywords.
KINDS = {
    "penalty": {"penalty": "wgan-gp", "penalty_weight": 0.1, "optimizer": "adam", "lr_d": 1e-4,
                "betas": (0.5, 0.9)},
    "clipping": {"clip": 0.01, "optimizer": "rmsprop", "lr_d": 5e-5},
}
#: The seed of the evaluation sample (data and noisy points, shared by both kinds and all trials).
EVAL_SEED = 4242
#: A parameter is "at +-c" when ``|w| >= c (1 - AT_C_RTOL)``.
AT_C_RTOL = 1e-6
#: Bump when what the row function measures changes without a change to the settings above.
METHOD_VERSION = 1
#: Everything besides the budget that fixes the results, hashed into every record's configuration.
SETUP = {"data": DATA, "noise_std": NOISE_STD, "critic": CRITIC, "kinds": KINDS, "eval_seed": EVAL_SEED,
         "at_c_rtol": AT_C_RTOL, "steps_to_optimality": STEPS_TO_OPTIMALITY, "method_version": METHOD_VERSION}
#: Budgets per profile (critic steps, trials, i.e. critics per data set and kind trained together,
#: and evaluation points per side).
BUDGETS = {
    "quick": {"steps": 3, "trials": 2, "eval_samples": 200},
    "full": {"steps": 150, "trials": 4, "eval_samples": 1000},
    "paper": {"steps": STEPS_TO_OPTIMALITY, "trials": 4, "eval_samples": 1000},
}
#: What Figure 1 of the paper shows (it reports no numbers), per kind.
PAPER = {
    "penalty": "Figure 1(a): the penalised critic's value surface follows the data (modes, the roll).",
    "clipping": "Figure 1(a, b): the clipped critic is a simple surface that misses the data's higher "
                "moments; its weights pile up at the two clipping values.",
}
TITLE = "WGAN-GP (Gulrajani et al. 2017), Figure 1: critic value surfaces, clipping vs. gradient penalty"
CITE = "gulrajani2017improved"
#: The command that makes the record the book shows.
COMMAND = f"python -m gan_lab.reproduce {NAME} --profile full"


def toy_data(name: str):
    """One of the authors' toy data sets (a key of :data:`DATA`), scaled as in their ``gan_toy.py``.

    Returns:
        A :class:`gan_lab.distributions.GaussianMixture` for the 8 and 25 Gaussians (radius
        :math:`2 / 1.414`, std :math:`0.02 / 1.414`; spacing :math:`2 / 2.828`, std
        :math:`0.05 / 2.828`), a :class:`gan_lab.distributions.PointCloud` for the Swiss roll.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in DATA:
        raise ValueError(f"name must be one of {list(DATA)}, got {name!r}")
    spec = DATA[name]
    k = spec["divide_by"]
    if "modes" in spec:
        return distributions.ring(spec["modes"], radius=spec["radius"] / k, std=spec["std"] / k)
    if "side" in spec:
        return distributions.grid(spec["side"], spacing=spec["spacing"] / k, std=spec["std"] / k)
    return distributions.swiss_roll(spec["points"], noise=spec["noise"], scale=k, seed=spec["seed"])


def _eval_points(p, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(EVAL_SEED)
    x = p.sample(n, rng=rng)  # (n, 2) data
    y = distributions.Noisy(p, NOISE_STD).sample(n, rng=rng)  # (n, 2) the fixed generator
    return x, y


def measure(run, x: torch.Tensor, y: torch.Tensor, clip: float | None) -> dict:
    """Per-seed measurements of a trained critic run on data points ``x`` and noisy points ``y``.

    Args:
        run: a :class:`gan_lab.runs.CriticRun` (or anything with ``logits`` and ``weights``).
        x, y: CPU tensors ``(n, 2)``, equal sizes.
        clip: the clipping value :math:`c`, or ``None`` (no ``at_c``).

    Returns:
        A dict of NumPy arrays ``(seeds,)``: ``fraction`` (certified share of :math:`W_1`),
        ``r2``, ``lipschitz`` (the critic's Lipschitz constant on the points) and, with
        ``clip``, ``at_c``; and ``w1``, the exact :math:`W_1` of the two samples (a float).
    """
    n = x.shape[0]
    xy = torch.cat([x, y])  # (2n, 2)
    f = run.logits(xy).to(torch.float64)  # (S, 2n)
    w1 = float(metrics.wasserstein1(x, y))
    out = {"w1": w1,
           "fraction": np.asarray(critics.critic_w1_bound(x, y, f[:, :n], f[:, n:])) / w1,
           "r2": np.asarray(critics.quadratic_r2(xy, f)),
           "lipschitz": np.asarray(critics.lipschitz_on(xy, f))}
    if clip is not None:
        w = np.abs(run.weights("discriminator"))  # (S, P)
        out["at_c"] = np.mean(w >= clip * (1 - AT_C_RTOL), axis=1)
    return out


def surface_rows(budget: dict, device: str | None, progress: bool | None, on_row=None,
                 checkpoint=lambda key: None, blocks=None) -> list[dict]:
    """The reproduction's rows, one per data set and kind (the ``train_fn`` of the registry entry).

    Each row trains ``budget["trials"]`` critics with :func:`gan_lab.train.fit_discriminator`
    (one seed-batched fit per block of trials), against :class:`gan_lab.distributions.Noisy`
    of the data, and measures them with :func:`measure` on ``budget["eval_samples"]`` data and
    noisy points drawn from :data:`EVAL_SEED`.
    """
    # imported here: gan_lab.train is heavy, and the book's readers of the records do not need it
    from .train import fit_discriminator

    steps, trials, n_eval = budget["steps"], budget["trials"], budget["eval_samples"]
    blocks = [(0, trials)] if blocks is None else blocks
    rows = []
    for dataset in DATA:
        p = toy_data(dataset)
        x, y = _eval_points(p, n_eval)
        for kind, kind_kw in KINDS.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            per_trial, diverged = [], {}
            for a, b in blocks:
                key = f"{dataset.replace(' ', '-')}-{kind}" + ("" if (a, b) == (0, trials) else f"-trials{a}-{b}")
                run = fit_discriminator(p, distributions.Noisy(p, NOISE_STD), steps=steps, seeds=b - a, seed=a,
                                        device=device, progress=progress, checkpoint=checkpoint(key),
                                        checkpoint_every=max(100, steps // 40), **CRITIC, **kind_kw)
                m = measure(run, x, y, kind_kw.get("clip"))
                for i in range(b - a):
                    trial = {"trial": a + i, "seed": a + i, "fraction": float(m["fraction"][i]),
                             "r2": float(m["r2"][i]), "lipschitz": float(m["lipschitz"][i])}
                    if "at_c" in m:
                        trial["at_c"] = float(m["at_c"][i])
                    per_trial.append(trial)
                diverged.update({str(a + k): v for k, v in getattr(run, "diverged", {}).items()})
            config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(run.config).items()}
            config.update(seed=0, seeds=trials)
            rows.append({"dataset": dataset, "kind": kind, "train_config": config, "w1": m["w1"],
                         "seconds": time.perf_counter() - wall0, "cpu_seconds": time.process_time() - cpu0,
                         "diverged": diverged, "trials": per_trial,
                         "summary": records.summarize_trials(per_trial), "paper": PAPER[kind]})
            if on_row is not None:
                on_row(rows)
    return rows


# --- the stored records, for the book ---------------------------------------------------------


def results_dir() -> Path:
    """The repository's ``results/`` folder (beside the ``gan_lab`` package)."""
    return Path(__file__).resolve().parent.parent / "results"


def stored_records(folder: str | Path | None = None, profiles=("full", "paper")) -> list[dict]:
    """The stored records of this reproduction, ``<folder>/wgan-gp-surfaces-<profile>*.json``.

    Args:
        folder: where to look; default :func:`results_dir`.
        profiles: which profiles' records to read, in this order.

    Returns:
        The records (dicts), possibly none; shard records are left out.

    Raises:
        ValueError: for a file that is not valid JSON or not a record of this reproduction.
    """
    folder = results_dir() if folder is None else Path(folder)
    found = []
    for name in profiles:
        for path in sorted(folder.glob(f"{NAME}-{name}*.json")):
            record = load_json(path)
            if not isinstance(record, dict) or record.get("reproduction") != NAME:
                raise ValueError(f"{path} is not a record of {NAME!r}")
            if "shard" not in record:
                found.append(record)
    return found


def is_current(record: dict) -> bool:
    """Whether ``record`` was made by the current configuration of its profile.

    Recomputes the configuration with :func:`gan_lab.reproduce.configuration` from the current
    code (its profile's budget and :data:`SETUP`, the record's base seed and block count) and
    compares its hash with the stored ``config_hash``, which must also match the stored config.
    """
    from .reproduce import configuration

    cfg = record["config"]
    current = configuration(NAME, record["profile"], blocks=cfg["blocks"], base_seed=cfg["base_seed"])
    return records.config_hash(cfg) == record["config_hash"] == records.config_hash(current)


def trial_values(record: dict, dataset: str, kind: str, metric: str) -> np.ndarray:
    """One metric of every trial of one row of ``record``, in trial order: an array ``(trials,)``.

    Raises:
        ValueError: for a row or metric that the record does not hold.
    """
    for row in record["rows"]:
        if row["dataset"] == dataset and row["kind"] == kind:
            if metric not in row["trials"][0]:
                raise ValueError(f"metric must be one of {sorted(row['trials'][0])}, got {metric!r}")
            return np.array([t[metric] for t in sorted(row["trials"], key=lambda t: t["trial"])])
    raise ValueError(f"the record has no row for dataset={dataset!r}, kind={kind!r}")


def _mean_se(summary: dict, key: str) -> str:
    if key not in summary:
        return ""
    return f"{summary[key]['mean']:.2f} ± {summary[key]['stderr']:.2f}"


def label(record: dict) -> str:
    """Where and how ``record`` was made: device, date, budget (steps, seeds) and code version."""
    b, prov, code = record["budget"], record["provenance"], record["code"]
    share = b["steps"] / STEPS_TO_OPTIMALITY
    commit = (code.get("git_commit") or "unknown")[:10]
    state = "" if record.get("complete") else " INCOMPLETE (interrupted),"
    return (f"stored record, {record['profile']} profile,{state} {b['trials']} trials (seeds) x "
            f"{b['steps']:,} critic steps ({100 * share:.3g} % of the authors' {STEPS_TO_OPTIMALITY:,}), "
            f"{b['eval_samples']} evaluation points per side\n"
            f"device: {prov['device_name']} ({prov['device']}), date: {prov['date']}, "
            f"{record['wall_seconds'] / 60:.1f} min\n"
            f"code: gan_lab {code['gan_lab']}, git commit {commit}, torch {prov['torch']}")


def table(record: dict) -> str:
    """``record`` as a plain-text table under its :func:`label`: per data set and kind, the exact
    :math:`W_1` of the evaluation samples and the mean ± standard error over trials of the fraction
    of :math:`W_1` certified, the quadratic :math:`R^2` and the fraction of parameters at
    :math:`\\pm c` (clipped critics only)."""
    head = f"{'data set':<13} {'kind':<9} {'W1 exact':>8} {'fraction of W1':>14} {'quadratic R^2':>13} " \
           f"{'at +-c':>11}"
    lines = [label(record), "", head, "-" * len(head)]
    for row in record["rows"]:
        s = row["summary"]
        lines.append(f"{row['dataset']:<13} {row['kind']:<9} {row['w1']:>8.3f} {_mean_se(s, 'fraction'):>14} "
                     f"{_mean_se(s, 'r2'):>13} {_mean_se(s, 'at_c'):>11}")
    return "\n".join(lines)


def missing_message(profile_name: str = "full") -> str:
    """What the book prints where no record of ``profile_name`` is stored: the command to make it."""
    return (f"The {profile_name}-profile run of {NAME!r} has not been made: there is no "
            f"results/{NAME}-{profile_name}.json. Make it with\n"
            f"    python -m gan_lab.reproduce {NAME} --profile {profile_name}")


def describe(folder: str | Path | None = None) -> str:
    """The book's cell: :func:`table` of every stored record (full, then paper), or
    :func:`missing_message` for the full profile when none is stored."""
    found = stored_records(folder)
    if not any(r["profile"] == "full" for r in found):
        found_text = [missing_message("full")]
    else:
        found_text = []
    return "\n\n".join(found_text + [table(r) for r in found])

