r"""The Dirac-GAN of Mescheder, Geiger and Nowozin (2018): training dynamics
in two numbers.

The data distribution is a point mass at 0, the generator a point mass at
``theta`` and the discriminator the linear function ``D_psi(x) = psi * x``.
With ``f(t) = -log(1 + exp(-t))`` the game is

.. math::

    L(\theta, \psi) = f(\psi \theta) + f(0),

which the generator minimises over ``theta`` and the discriminator maximises
over ``psi``. Gradient descent-ascent follows the vector field
``v = (-dL/dtheta, dL/dpsi)``; its only equilibrium is ``(0, 0)``.

Methods (the names of the book's public contract) and their parameters:

* ``"gan"``: the game above; ``"nsgan"``: the generator maximises
  ``f(-psi * theta)`` instead (the non-saturating loss);
* ``"wgan"``: ``f(t) = t``, and ``psi`` is clipped to ``[-clip, clip]`` after
  every step;
* ``"wgan_gp"``: ``f(t) = t`` and the critic pays
  ``gamma / 2 * (abs(psi) - g0) ** 2``, the Dirac-GAN version of the WGAN-GP
  penalty;
* ``"instance_noise"``: data and generator samples are blurred with Gaussian
  noise of standard deviation ``sigma``; the expectations are computed by
  Gauss-Hermite quadrature, so the field is the exact mean of the stochastic
  gradients;
* ``"gradient_penalty"``: the critic pays ``gamma / 2 * psi ** 2`` (R1 and R2
  coincide here, as the gradient of ``D_psi`` is ``psi`` everywhere);
* ``"consensus"``: both players also descend ``gamma * abs(v) ** 2 / 2``
  (consensus optimisation).

Everything here is plain NumPy: the state is two scalars. Arrays of states
broadcast, which is what a phase portrait needs.

The settings of the authors' own Dirac-GAN notebook are
:data:`AUTHORS_SETTINGS` (with :data:`AUTHORS_RUN` and
:data:`AUTHORS_UPDATES`); :func:`radius_table` runs every method at the
defaults above and at those settings, beside what the authors' code gives
(:func:`authors_vector_field`: it differs for ``"consensus"`` only).
"""

from __future__ import annotations

import functools
import math
from numbers import Integral, Real

import numpy as np
from scipy.special import expit

#: Each method's parameters and their defaults.
METHODS: dict[str, dict[str, float]] = {
    "gan": {},
    "nsgan": {},
    "wgan": {"clip": 0.3},
    "wgan_gp": {"gamma": 1.0, "g0": 0.3},
    "instance_noise": {"sigma": 0.7},
    "gradient_penalty": {"gamma": 0.3},
    "consensus": {"gamma": 0.3},
}
#: The update rules of :func:`simulate`.
UPDATES = ("simultaneous", "alternating")
#: The labels :func:`classify` returns.
CLASSES = ("diverging", "cycling", "converging")
_QUADRATURE_NODES = (
    60  # Gauss-Hermite nodes for the instance-noise expectations
)


def f(t):
    """The GAN's ``f(t) = -log(1 + exp(-t)) = log sigmoid(t)``, computed
    stably."""
    t = np.asarray(t, dtype=float)
    return -np.logaddexp(0.0, -t)


def f_prime(t):
    """``f'(t) = sigmoid(-t)``; ``f'(0) = 1/2``."""
    return expit(-np.asarray(t, dtype=float))


def f_second(t):
    """``f''(t) = -sigmoid(t) * sigmoid(-t)``; ``f''(0) = -1/4``."""
    t = np.asarray(t, dtype=float)
    return -expit(t) * expit(-t)


def _check_method(method: str) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"method must be one of {tuple(METHODS)}, got {method!r}"
        )
    return method


def _params(method: str, params: dict) -> dict[str, float]:
    """The method's parameters: defaults updated by ``params``, each
    checked."""
    _check_method(method)
    allowed = METHODS[method]
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {sorted(unknown)} for method {method!r}; "
            f"it takes {sorted(allowed) or 'none'}"
        )
    out = dict(allowed, **params)
    for name, value in out.items():
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        value = float(value)
        if (
            not math.isfinite(value)
            or value < 0
            or (name == "clip" and value == 0)
        ):
            need = "positive" if name == "clip" else "non-negative"
            raise ValueError(
                f"{name} must be a finite {need} number, got {value!r}"
            )
        out[name] = value
    return out


@functools.lru_cache(maxsize=1)
def _standard_gauss_hermite() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``N(0, 1)``, computed once (read-only)."""
    z, w = np.polynomial.hermite_e.hermegauss(
        _QUADRATURE_NODES
    )  # weight exp(-z^2 / 2)
    w = w / math.sqrt(2 * math.pi)
    z.flags.writeable = w.flags.writeable = False
    return z, w


def _gauss_hermite(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights with ``sum(w * g(eps)) ~ E[g(eps)]``, for
    ``eps ~ N(0, sigma^2)``."""
    z, w = _standard_gauss_hermite()
    return sigma * z, w


def _unregularised(
    method: str, theta: np.ndarray, psi: np.ndarray, p: dict
) -> tuple[np.ndarray, np.ndarray]:
    """The field of the plain game (no penalty, no noise) for the method's
    ``f``."""
    if method in ("wgan", "wgan_gp"):  # f(t) = t, f' = 1
        return -psi * np.ones_like(theta), theta * np.ones_like(psi)
    if method == "nsgan":  # generator ascends f(-psi theta)
        return -psi * f_prime(-psi * theta), theta * f_prime(psi * theta)
    if method == "instance_noise" and p["sigma"] > 0:
        eps, w = _gauss_hermite(p["sigma"])
        eps = eps.reshape(
            (-1,) + (1,) * theta.ndim
        )  # (Q, ...) against states (...)
        w = w.reshape(eps.shape)
        fake = theta + eps  # blurred generator sample theta + eps
        v_theta = (w * -psi * f_prime(psi * fake)).sum(0)
        # the critic ascends E f(psi (theta + eps)) + E f(-psi eps'): real
        # samples are eps'
        v_psi = (
            w * (fake * f_prime(psi * fake) - eps * f_prime(-psi * eps))
        ).sum(0)
        return v_theta, v_psi
    return -psi * f_prime(psi * theta), theta * f_prime(psi * theta)


def vector_field(
    method: str, theta, psi, **params
) -> tuple[np.ndarray, np.ndarray]:
    r"""The gradient descent-ascent field ``v = (-dL/dtheta, dL/dpsi)`` of a
    Dirac-GAN method.

    For ``"gan"``, :math:`v(\theta, \psi) = (-\psi f'(\psi\theta),\; \theta
    f'(\psi\theta))`. ``"wgan"``'s clipping is not part of the field (it is
    applied by :func:`simulate`).

    Args:
        method: one of :data:`METHODS`.
        theta: generator parameter(s), a float or an array.
        psi: discriminator parameter(s), broadcastable with ``theta``.
        **params: the method's parameters (see :data:`METHODS`), e.g.
            ``gamma=1.0``.

    Returns:
        ``(v_theta, v_psi)``, two arrays of the broadcast shape of ``theta``
        and ``psi``.
    """
    p = _params(method, params)
    theta, psi = np.broadcast_arrays(
        np.asarray(theta, dtype=float), np.asarray(psi, dtype=float)
    )
    v_theta, v_psi = _unregularised(method, theta, psi, p)
    if method == "wgan_gp":  # critic descends gamma/2 (|psi| - g0)^2
        v_psi = v_psi - p["gamma"] * (np.abs(psi) - p["g0"]) * np.sign(psi)
    elif method == "gradient_penalty":
        # the critic descends gamma/2 psi^2 (= R1 = R2)
        v_psi = v_psi - p["gamma"] * psi
    elif method == "consensus":
        g_theta, g_psi = consensus_gradient(theta, psi)
        v_theta, v_psi = (
            v_theta - p["gamma"] * g_theta,
            v_psi - p["gamma"] * g_psi,
        )
    return v_theta, v_psi


def consensus_gradient(theta, psi) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient of the consensus regulariser :math:`\tfrac12 \lVert v
    \rVert^2 = \tfrac12 (\psi^2 + \theta^2) f'(\psi\theta)^2`.

    Returns:
        ``(d/dtheta, d/dpsi)`` of the regulariser of the ``"gan"`` field.
    """
    theta, psi = np.asarray(theta, dtype=float), np.asarray(psi, dtype=float)
    fp, fpp = f_prime(psi * theta), f_second(psi * theta)
    r2 = psi**2 + theta**2
    return (
        theta * fp**2 + r2 * fp * fpp * psi,
        psi * fp**2 + r2 * fp * fpp * theta,
    )


def jacobian(method: str, **params) -> np.ndarray:
    r"""The Jacobian of :func:`vector_field` at the equilibrium ``(0, 0)``,
    in closed form.

    With :math:`a = f'(0) = 1/2` and :math:`b = f''(0) = -1/4`:

    * ``gan``, ``nsgan``: ``[[0, -a], [a, 0]]``;
      ``wgan``: ``[[0, -1], [1, 0]]``;
    * ``instance_noise``: ``[[0, -a], [a, 2 b sigma^2]]``;
    * ``gradient_penalty``: ``[[0, -a], [a, -gamma]]``;
    * ``consensus``: ``[[-gamma a^2, -a], [a, -gamma a^2]]`` (the field's
      Jacobian minus ``gamma J^T J``, and ``J^T J = a^2 I``);
    * ``wgan_gp``: ``[[0, -1], [1, -gamma]]`` when ``g0 = 0``. For ``g0 > 0``
      the field jumps by ``2 gamma g0`` across ``psi = 0``, so no Jacobian
      exists and a ``ValueError`` is raised.

    Returns:
        A (2, 2) array; rows are ``(v_theta, v_psi)``, columns
        ``(theta, psi)``.
    """
    p = _params(method, params)
    a, b = 0.5, -0.25
    if method == "wgan":
        return np.array([[0.0, -1.0], [1.0, 0.0]])
    if method == "wgan_gp":
        if p["g0"] != 0:
            raise ValueError(
                "wgan_gp with g0 > 0 has a vector field that is "
                "discontinuous at the "
                "equilibrium psi = 0: it has no Jacobian there"
            )
        return np.array([[0.0, -1.0], [1.0, -p["gamma"]]])
    jac = np.array([[0.0, -a], [a, 0.0]])
    if method == "instance_noise":
        jac[1, 1] = 2 * b * p["sigma"] ** 2
    elif method == "gradient_penalty":
        jac[1, 1] = -p["gamma"]
    elif method == "consensus":
        jac -= p["gamma"] * a**2 * np.eye(2)
    return jac


def numerical_jacobian(
    method: str,
    theta: float = 0.0,
    psi: float = 0.0,
    eps: float = 1e-5,
    **params,
) -> np.ndarray:
    """Central finite differences of :func:`vector_field` at
    ``(theta, psi)``: a (2, 2) array."""
    if not (isinstance(eps, Real) and 0 < eps < 1):
        raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
    cols = []
    for d_theta, d_psi in ((eps, 0.0), (0.0, eps)):
        plus = vector_field(method, theta + d_theta, psi + d_psi, **params)
        minus = vector_field(method, theta - d_theta, psi - d_psi, **params)
        cols.append([(hi - lo) / (2 * eps) for hi, lo in zip(plus, minus)])
    return np.array(cols, dtype=float).T  # (2, 2): column j is d v / d x_j


def eigenvalues(method: str, **params) -> np.ndarray:
    """Eigenvalues of :func:`jacobian` (complex, shape (2,)), sorted by
    imaginary part."""
    lam = np.linalg.eigvals(jacobian(method, **params)).astype(complex)
    return lam[np.lexsort((lam.real, lam.imag))]


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_real(name: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(
            f"{name} must be a finite"
            f"{' positive' if positive else ''} number, got {value!r}"
        )
    return value


def _check_update(update: str, n_g, n_d) -> tuple[int, int]:
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    n_g, n_d = (
        _check_positive_int("n_g", n_g),
        _check_positive_int("n_d", n_d),
    )
    if update == "simultaneous" and (n_g, n_d) != (1, 1):
        raise ValueError(
            "n_g and n_d apply to update='alternating' only; "
            "simultaneous updates take one step each"
        )
    return n_g, n_d


def update_matrix(
    method: str,
    h: float = 0.2,
    update: str = "simultaneous",
    n_g: int = 1,
    n_d: int = 1,
    **params,
) -> np.ndarray:
    r"""The Jacobian at ``(0, 0)`` of one iteration of :func:`simulate`: a
    (2, 2) array.

    Simultaneous: ``I + h J``. Alternating: ``n_g`` generator steps
    ``I + h P_g J`` then ``n_d`` discriminator steps ``I + h P_d J``, where
    ``P_g``, ``P_d`` keep the first and the second row; for the plain GAN
    this is ``[[1, -n_g h a], [n_d h a, 1 - n_g n_d h^2 a^2]]`` with
    :math:`a = f'(0)`. Clipping (``wgan``) is the identity near the
    equilibrium and does not enter.
    """
    h = _check_real("h", h, positive=True)
    n_g, n_d = _check_update(update, n_g, n_d)
    jac = jacobian(method, **params)
    eye = np.eye(2)
    if update == "simultaneous":
        return eye + h * jac
    g_step, d_step = eye.copy(), eye.copy()
    g_step[0] += h * jac[0]  # theta <- theta + h v_theta, psi unchanged
    d_step[1] += h * jac[1]
    return np.linalg.matrix_power(d_step, n_d) @ np.linalg.matrix_power(
        g_step, n_g
    )


def rotation_coordinates(matrix) -> tuple[float, np.ndarray]:
    r"""Coordinates in which a linear map with complex eigenvalues is a
    scaled rotation.

    For a real (2, 2) ``matrix`` M with eigenvalues
    :math:`\rho e^{\pm i\omega}`, :math:`\omega \in (0, \pi)`, and ``w = u + i v``
    an eigenvector of :math:`\rho e^{i\omega}`, ``P = [u, v]`` satisfies
    :math:`P^{-1} M P = \rho R`, with ``R`` a rotation by :math:`-\omega`.
    Hence ``C = P^{-1}`` gives the norm ``s(x) = |C x|`` with
    ``s(M x) = rho * s(x)`` exactly. As ``s(x) <= |C| |x|`` and
    ``|x| <= |P| s(x)``, a ratio of Euclidean norms ``|y| / |x|`` lies
    within the factor ``cond(C) = |C| |P|`` of ``s(y) / s(x)``.

    Args:
        matrix: a real (2, 2) array with a non-real eigenvalue pair.

    Returns:
        ``(rho, C)``: the modulus of the eigenvalues and the (2, 2) array
        ``C``.

    Raises:
        ValueError: if ``matrix`` is not a finite real (2, 2) array or its
            eigenvalues are real.
    """
    bad = ValueError(
        f"matrix must be a finite real (2, 2) array, got {matrix!r}"
    )
    try:
        m = np.asarray(matrix)
        real = not np.iscomplexobj(m)
        m = m.astype(float) if real else m
    except (TypeError, ValueError) as err:
        raise bad from err
    if not real or m.shape != (2, 2) or not np.isfinite(m).all():
        raise bad
    lam, vecs = np.linalg.eig(m)
    if not abs(lam[0].imag) > 1e-12 * max(abs(lam[0]), 1e-300):
        raise ValueError(
            "matrix must have a complex-conjugate eigenvalue pair, got "
            f"eigenvalues {lam.tolist()}"
        )
    i = int(np.argmax(lam.imag))  # the eigenvalue rho e^{i omega}
    p = np.stack([vecs[:, i].real, vecs[:, i].imag], 1)  # (2, 2): [u, v]
    return float(abs(lam[i])), np.linalg.inv(p)


def _project(
    method: str, theta: float, psi: float, p: dict
) -> tuple[float, float]:
    if method == "wgan":  # weight clipping after every step
        psi = min(max(psi, -p["clip"]), p["clip"])
    return theta, psi


def simulate(
    method: str,
    steps: int = 500,
    h: float = 0.2,
    theta0: float = 1.0,
    psi0: float = 1.0,
    update: str = "simultaneous",
    n_g: int = 1,
    n_d: int = 1,
    **params,
) -> np.ndarray:
    """Gradient descent-ascent on the Dirac-GAN from ``(theta0, psi0)``.

    ``simultaneous``: both players step along :func:`vector_field` evaluated
    at the same point. ``alternating``: each iteration takes ``n_g``
    generator steps, then ``n_d`` discriminator steps, each at the current
    point (as in the paper's code). ``wgan`` clips ``psi`` to
    ``[-clip, clip]`` after every step and at the start.

    Args:
        method: one of :data:`METHODS`.
        steps: number of iterations (a positive int).
        h: step size (learning rate) of both players.
        theta0, psi0: the initial point.
        update: ``"simultaneous"`` or ``"alternating"``.
        n_g, n_d: generator and discriminator steps per alternating
            iteration.
        **params: the method's parameters (see :data:`METHODS`).

    Returns:
        A (steps + 1, 2) array of ``(theta, psi)``; row 0 is the (clipped)
        initial point.
    """
    p = _params(method, params)
    steps = _check_positive_int("steps", steps)
    h = _check_real("h", h, positive=True)
    theta, psi = _check_real("theta0", theta0), _check_real("psi0", psi0)
    n_g, n_d = _check_update(update, n_g, n_d)
    path = np.empty((steps + 1, 2))  # (T + 1, 2) of (theta, psi)
    theta, psi = _project(method, theta, psi, p)
    path[0] = theta, psi

    def field(theta, psi):
        return vector_field(method, theta, psi, **p)

    _iterate(field, method, p, path, h, update, n_g, n_d)
    return path


def _iterate(field, method, p, path, h, update, n_g, n_d) -> None:
    """Fill ``path[1:]`` from ``path[0]`` by :func:`simulate`'s rule, with
    the callable ``field(theta, psi) -> (v_theta, v_psi)``."""
    theta, psi = (float(x) for x in path[0])
    # a diverging run may overflow: keep the inf
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, len(path)):
            if update == "simultaneous":
                v_theta, v_psi = field(theta, psi)
                theta += h * float(v_theta)
                psi += h * float(v_psi)
                theta, psi = _project(method, theta, psi, p)
            else:
                for _ in range(n_g):
                    theta += h * float(field(theta, psi)[0])
                    theta, psi = _project(method, theta, psi, p)
                for _ in range(n_d):
                    psi += h * float(field(theta, psi)[1])
                    theta, psi = _project(method, theta, psi, p)
            path[k] = theta, psi


def classify(
    trajectory, converged: float = 0.05, diverged: float = 2.0
) -> str:
    """Classify a trajectory by its distance ``r`` to the equilibrium
    ``(0, 0)`` over time.

    Compares the largest distance over the last quarter of the trajectory
    with the initial distance ``r0``: above ``diverged * r0`` (or not finite)
    is ``"diverging"``, below ``converged * r0`` is ``"converging"``,
    anything in between ``"cycling"`` (it neither escapes nor settles).

    Args:
        trajectory: a (T + 1, 2) array from :func:`simulate`, T >= 4.
        converged: relative distance below which the run counts as converged.
        diverged: relative distance above which the run counts as diverged.

    Returns:
        One of :data:`CLASSES`.
    """
    path = np.asarray(trajectory, dtype=float)
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] < 5:
        raise ValueError(
            "trajectory must be an array (T + 1, 2) with T >= 4, "
            f"got shape {path.shape}"
        )
    if not 0 < converged < 1 < diverged:
        raise ValueError(
            "need 0 < converged < 1 < diverged, got "
            f"converged={converged!r}, diverged={diverged!r}"
        )
    r = np.hypot(path[:, 0], path[:, 1])  # (T + 1,)
    r0 = r[0]
    if not r0 > 0:
        raise ValueError(
            "trajectory must start away from the equilibrium (0, 0)"
        )
    late = r[-max(len(r) // 4, 1) :].max()
    if not np.isfinite(r).all() or late > diverged * r0:
        return "diverging"
    return "converging" if late < converged * r0 else "cycling"


# The authors' Dirac-GAN notebook -------------------------------------------
# Their settings, read from LMescheder/GAN_stability (the code of Mescheder,
# Geiger and Nowozin 2018): notebooks/DiracGAN.ipynb, which runs the classes
# of notebooks/diracgan/gans.py with notebooks/diracgan/simulate.py.

#: The run every panel of the authors' notebook shares.
AUTHORS_RUN: dict[str, float] = {
    # DiracGAN.ipynb, code cells 3-5: nsteps=500 in every call
    "steps": 500,
    # DiracGAN.ipynb, code cell 2: h = 0.2, passed as hs_g = hs_d = h
    "h": 0.2,
    # DiracGAN.ipynb, code cell 2: theta0 = 1., psi0 = 1.
    "theta0": 1.0,
    "psi0": 1.0,
}
#: The authors' update rules, by the names of their output folders:
#: label -> ``(update, n_g, n_d)`` of :func:`simulate`.
AUTHORS_UPDATES: dict[str, tuple[str, int, int]] = {
    # DiracGAN.ipynb, code cell 3: trajectory_simgd (diracgan/simulate.py),
    # both players step from the same point, then postprocess (clip)
    "simgd": ("simultaneous", 1, 1),
    # code cells 4 and 5: trajectory_altgd with dsteps=1 and dsteps=5 and
    # the default gsteps=1; the generator steps first, and every step is
    # followed by postprocess (simulate.py)
    "altgd1": ("alternating", 1, 1),
    "altgd5": ("alternating", 1, 5),
}
#: The methods of the authors' notebook (its ``plot_configs``, code cell 2
#: of DiracGAN.ipynb), by the authors' names: name -> ``{"method": ...,
#: "params": ...}`` in this module's terms. The constructor arguments are
#: those of diracgan/gans.py: ``WGAN(clip)``, ``WGAN_GP(reg, target)``
#: (``gamma``, ``g0`` here), ``GAN_InstNoise(std)``,
#: ``GAN_GradPenalty(reg)``, ``GAN_Consensus(reg)``. Their
#: ``NSGAN_GradPenalty(0.3)`` has no method here and is left out.
AUTHORS_SETTINGS: dict[str, dict] = {
    "gan": {"method": "gan", "params": {}},  # GAN()
    "nsgan": {"method": "nsgan", "params": {}},  # NSGAN()
    "wgan": {"method": "wgan", "params": {"clip": 1.0}},  # WGAN(1.)
    "wgan_gp": {  # WGAN_GP(0.7, 1.)
        "method": "wgan_gp",
        "params": {"gamma": 0.7, "g0": 1.0},
    },
    "gan_instnoise": {  # GAN_InstNoise(0.7)
        "method": "instance_noise",
        "params": {"sigma": 0.7},
    },
    "gan_gradpen": {  # GAN_GradPenalty(0.3)
        "method": "gradient_penalty",
        "params": {"gamma": 0.3},
    },
    "gan_gradpen_critical": {  # GAN_GradPenalty(1.)
        "method": "gradient_penalty",
        "params": {"gamma": 1.0},
    },
    "gan_consensus": {  # GAN_Consensus(1.)
        "method": "consensus",
        "params": {"gamma": 1.0},
    },
}


def authors_consensus_gradient(theta, psi) -> tuple[np.ndarray, np.ndarray]:
    r"""The consensus term as the authors' code computes it
    (``GAN_Consensus`` in diracgan/gans.py).

    Their code means to descend :math:`\tfrac12 \lVert v \rVert^2 =
    \tfrac12 r^2 f'(\psi\theta)^2`, :math:`r^2 = \psi^2 + \theta^2`, whose
    gradient :func:`consensus_gradient` returns. Their expression keeps
    half of the chain-rule term:

    .. math::

        (\theta f'^2 + \tfrac12 r^2 f' f'' \psi,\;
         \psi f'^2 + \tfrac12 r^2 f' f'' \theta),

    which is not the gradient of any function (its curl
    :math:`\partial_\psi g_\theta - \partial_\theta g_\psi` is
    :math:`(\theta^2 - \psi^2) f' f''`, not zero). The halved term is of
    third order in ``(theta, psi)``, so the Jacobian at the equilibrium,
    and with it every eigenvalue, is the same for both; the trajectories
    from ``(1, 1)`` differ (see :func:`radius_table`).
    """
    theta, psi = np.asarray(theta, dtype=float), np.asarray(psi, dtype=float)
    fp, fpp = f_prime(psi * theta), f_second(psi * theta)
    half_r2 = 0.5 * (psi**2 + theta**2)
    return (
        theta * fp**2 + half_r2 * fp * fpp * psi,
        psi * fp**2 + half_r2 * fp * fpp * theta,
    )


def authors_vector_field(
    method: str, theta, psi, **params
) -> tuple[np.ndarray, np.ndarray]:
    """The field of a method as the authors' code defines it
    (diracgan/gans.py).

    The same as :func:`vector_field` for ``gan``, ``nsgan``, ``wgan``,
    ``wgan_gp``, ``gradient_penalty`` (their ``_get_vector`` formulas are
    this module's), except for ``"consensus"``, whose term is
    :func:`authors_consensus_gradient`. For ``"instance_noise"`` their code
    averages 1000 fresh (unseeded) normal draws of each noise on every
    call, a random estimate whose expectation, :func:`vector_field`'s, is
    what this returns.
    """
    if _check_method(method) != "consensus":
        return vector_field(method, theta, psi, **params)
    p = _params(method, params)
    theta, psi = np.broadcast_arrays(
        np.asarray(theta, dtype=float), np.asarray(psi, dtype=float)
    )
    v_theta, v_psi = _unregularised(method, theta, psi, p)
    g_theta, g_psi = authors_consensus_gradient(theta, psi)
    return v_theta - p["gamma"] * g_theta, v_psi - p["gamma"] * g_psi


def _check_updates(updates) -> dict[str, tuple[str, int, int]]:
    if not isinstance(updates, dict) or not updates:
        raise ValueError(
            "updates must be a non-empty dict label -> (update, n_g, n_d), "
            f"got {updates!r}"
        )
    out = {}
    for label, rule in updates.items():
        if not (isinstance(rule, tuple) and len(rule) == 3):
            raise ValueError(
                f"updates[{label!r}] must be a tuple (update, n_g, n_d), "
                f"got {rule!r}"
            )
        out[str(label)] = (rule[0], *_check_update(*rule))
    return out


def _check_settings(settings) -> dict[str, dict]:
    if not isinstance(settings, dict):
        raise TypeError(
            "settings must be a dict name -> "
            f"{{'method': ..., 'params': {{...}}}}, got {settings!r}"
        )
    out = {}
    for name, entry in settings.items():
        if not (
            isinstance(entry, dict)
            and set(entry) == {"method", "params"}
            and isinstance(entry["params"], dict)
        ):
            raise ValueError(
                f"settings[{name!r}] must be a dict with the keys 'method' "
                f"and 'params' (a dict), got {entry!r}"
            )
        out[name] = {
            "method": entry["method"],
            "params": _params(entry["method"], entry["params"]),
        }
    return out


def _radii(method, params, steps, updates) -> dict:
    """:func:`radius_table`'s numbers for one method and its parameters."""
    keys = ("state", "radius", "behaviour")
    out = {pre + key: {} for pre in ("", "authors_") for key in keys}
    h, theta0, psi0 = (AUTHORS_RUN[k] for k in ("h", "theta0", "psi0"))

    def theirs(theta, psi):
        return authors_vector_field(method, theta, psi, **params)

    for label, (update, n_g, n_d) in updates.items():
        path = simulate(
            method, steps, h, theta0, psi0, update, n_g, n_d, **params
        )  # (steps + 1, 2)
        for pre in ("", "authors_"):
            if pre and method == "instance_noise":  # their code samples it
                for key in keys:
                    out[pre + key][label] = None
                continue
            if pre and method == "consensus":  # their code's field differs
                path = path.copy()
                _iterate(theirs, method, params, path, h, update, n_g, n_d)
            out[pre + "state"][label] = tuple(float(x) for x in path[-1])
            out[pre + "radius"][label] = float(np.hypot(*path[-1]))
            out[pre + "behaviour"][label] = classify(path)
    return out


def radius_table(steps: int = 500, updates=None, settings=None) -> list[dict]:
    """The distance from the equilibrium after ``steps`` steps, at the class
    defaults (:data:`METHODS`) and at the authors' settings.

    Every run starts at :data:`AUTHORS_RUN`'s ``(theta0, psi0) = (1, 1)``
    with its step size ``h = 0.2``, under each rule of ``updates``.

    Args:
        steps: the number of iterations of every run (an int >= 4).
        updates: label -> ``(update, n_g, n_d)``; default
            :data:`AUTHORS_UPDATES`.
        settings: name -> ``{"method": ..., "params": {...}}``; default
            :data:`AUTHORS_SETTINGS`.

    Returns:
        One dict a row, in the order of :data:`METHODS`: for each method
        its defaults, then each setting of ``settings`` for it with other
        parameters. Keys: ``method``; ``setting`` (``"defaults"``,
        ``"authors"``, or ``"both"`` where they coincide); ``name`` (the
        setting's name in ``settings``, or ``None``); ``params`` (all the
        method's parameters); ``state``, ``radius`` and ``behaviour``
        (dicts by update label: the final ``(theta, psi)``, its distance
        ``hypot(theta, psi)`` and :func:`classify`'s label, from
        :func:`simulate`); ``authors_state``, ``authors_radius`` and
        ``authors_behaviour``: the same with
        :func:`authors_vector_field`'s rule, i.e. what the authors' code
        computes; equal to ``radius`` except for ``consensus``, and
        ``None`` for ``instance_noise``, which their code samples at
        random.
    """
    steps = _check_positive_int("steps", steps)
    if steps < 4:
        raise ValueError(f"steps must be at least 4, got {steps!r}")
    updates = _check_updates(AUTHORS_UPDATES if updates is None else updates)
    settings = _check_settings(
        AUTHORS_SETTINGS if settings is None else settings
    )
    rows = []
    for method in METHODS:
        defaults = _params(method, {})
        base = {"method": method, "setting": "defaults", "name": None}
        base |= {"params": defaults} | _radii(method, defaults, steps, updates)
        rows.append(base)
        for name, entry in settings.items():
            if entry["method"] != method:
                continue
            if entry["params"] == defaults:  # one row for both
                names = [n for n in (base["name"], name) if n is not None]
                base.update(setting="both", name=", ".join(names))
                continue
            rows.append(
                {"method": method, "setting": "authors", "name": name}
                | {"params": entry["params"]}
                | _radii(method, entry["params"], steps, updates)
            )
    return rows


_SHORT = {"diverging": "div", "cycling": "cyc", "converging": "conv"}


def format_radius_table(rows) -> str:
    """:func:`radius_table`'s rows as text: one line a row (radius and
    behaviour for each update), and below a row whose authors' code gives
    other numbers, a line ``their code`` with those."""
    if not isinstance(rows, list) or not rows:
        raise ValueError(
            f"rows must be the non-empty list radius_table returns, "
            f"got {rows!r}"
        )
    labels = list(rows[0]["radius"])

    def cells(radius, behaviour):
        return "".join(
            f" {radius[u]:7.1e} {_SHORT[behaviour[u]]:<4}" for u in labels
        )

    lines = [
        f"{'method':>16} {'setting':<8} {'parameters':<15}"
        + "".join(f" {u:<12}" for u in labels)
    ]
    for row in rows:
        par = ", ".join(f"{k}={v:g}" for k, v in row["params"].items())
        lines.append(
            f"{row['method']:>16} {row['setting']:<8} {par or '-':<15}"
            + cells(row["radius"], row["behaviour"])
        )
        theirs = row["authors_radius"]
        if None in theirs.values():
            lines.append(f"{'':>16} their code samples this field at random")
        elif theirs != row["radius"]:
            lines.append(
                f"{'':>16} {'their code':<24}"
                + cells(theirs, row["authors_behaviour"])
            )
    return "\n".join(line.rstrip() for line in lines)
