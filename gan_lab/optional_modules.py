"""Optional modules a bare machine may lack: detection, rehearsal and the pytest plugin.

``python -m gan_lab.gpu_check`` runs on a CUDA machine that may lack Jupyter, nbval or
mlxtend (:data:`OPTIONAL`). :func:`missing_modules` lists those absent here;
:func:`install_hidden` hides the modules named in ``GAN_LAB_GPU_CHECK_HIDE`` from every
later import, so that a full machine rehearses a bare one (``--hide``). Loaded into pytest
with ``-p gan_lab.optional_modules``, this module turns a test that fails only because it
imports a missing module (named in ``GAN_LAB_GPU_CHECK_MISSING``) into a skip tagged
:data:`MISSING_TAG`, so that nothing is counted as passed that did not run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys

#: Modules a bare machine may lack; tests that need one of them are skipped there.
OPTIONAL = ("IPython", "ipykernel", "ipywidgets", "nbformat", "nbclient", "nbval", "jupyter_book", "mlxtend",
            "playwright", "yaml", "sklearn", "sphinx")
HIDE_VARIABLE = "GAN_LAB_GPU_CHECK_HIDE"  #: modules the child processes must treat as absent
MISSING_VARIABLE = "GAN_LAB_GPU_CHECK_MISSING"  #: modules missing on this machine, for the plugin
MISSING_TAG = "gpu_check: needs the missing module"  #: the skip message of such a test


class _Absent:
    """Wraps a ``sys.meta_path`` finder so that the ``hidden`` top-level modules are not found."""

    def __init__(self, finder, hidden):
        self.finder, self.hidden = finder, hidden

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.hidden or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.finder, attr)


def install_hidden() -> None:
    """Hide the modules named in ``GAN_LAB_GPU_CHECK_HIDE`` from every later import."""
    hidden = {n for n in os.environ.get(HIDE_VARIABLE, "").split(",") if n}
    if hidden and not any(isinstance(f, _Absent) for f in sys.meta_path):
        sys.meta_path[:] = [_Absent(f, hidden) for f in sys.meta_path]  # as if not installed: find_spec gives None


def missing_modules(hidden=()) -> list[str]:
    """The :data:`OPTIONAL` modules that are not importable here (or are ``hidden``)."""
    return sorted(m for m in OPTIONAL if m in hidden or importlib.util.find_spec(m) is None)


def needs(exc: BaseException | None) -> str | None:
    """The missing module an import error (anywhere in the exception chain) names, if any."""
    missing = set(os.environ.get(MISSING_VARIABLE, "").split(",")) - {""}
    while exc is not None:
        if isinstance(exc, ImportError):
            names = [exc.name or ""] + re.findall(r"No module named '([\w.]+)'", str(exc))
            for name in names:
                if name.split(".")[0] in missing:
                    return name.split(".")[0]
        exc = exc.__cause__  # not __context__: a failure raised while handling an import error is a failure
    return None


def _hookwrapper(fn):
    try:
        import pytest
    except ImportError:  # only pytest loads this module as a plugin
        return fn
    return pytest.hookimpl(hookwrapper=True)(fn)


def pytest_configure(config) -> None:
    """pytest hook (this module is loaded with ``-p gan_lab.optional_modules``): apply ``--hide``."""
    install_hidden()


@_hookwrapper
def pytest_runtest_makereport(item, call):
    """pytest hook: a test that fails only because a missing optional module is imported is a skip."""
    outcome = yield
    report = outcome.get_result()
    name = needs(call.excinfo.value if call.excinfo else None)
    if report.failed and name:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {MISSING_TAG} {name!r}")
