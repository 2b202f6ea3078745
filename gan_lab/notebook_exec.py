"""Run a notebook's code cells in this process, without Jupyter.

:func:`run_notebook` executes a chapter as ``python -m gan_lab.gpu_check`` does on a bare
GPU machine: the code cells in one namespace, in order; the install cell replaced by
``import gan_lab`` (:func:`is_install_cell`); IPython magics and shell lines dropped
(:func:`strip_magics`); a final expression displayed as Jupyter would (:func:`exec_cell`,
:func:`display`); figures rendered and closed after each cell; and, where IPython is absent,
small stand-ins for ``IPython`` and ``IPython.display`` (:func:`install_ipython_stub`).
Only the standard library and matplotlib are needed (no nbformat, no kernel).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.util
import io
import json
import linecache
import os
import sys
import traceback
import types
from pathlib import Path


def source_sha256(nb: dict) -> str:
    """SHA-256 of a notebook's cell types and sources (``nb`` as parsed JSON; outputs, counts
    and metadata ignored): what identifies the code an executed copy was made from."""
    cells = [[c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"]]
             for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def strip_magics(source: str) -> str:
    """``source`` with IPython magics and shell lines (``%...``, ``%%...``, ``!...``) made ``pass``.

    The indentation is kept, so a magic inside a block (``except ImportError: %pip ...``)
    leaves valid Python behind.
    """
    lines = []
    for line in source.splitlines():
        body = line.lstrip()
        lines.append(line[: len(line) - len(body)] + "pass" if body[:1] in ("%", "!") else line)
    return "\n".join(lines)


def is_install_cell(source: str) -> bool:
    """Whether a code cell is the chapters' hidden install cell (imports gan_lab, pip-installs it if missing)."""
    return "pip install" in source and "import gan_lab" in source


def code_cells(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The code cells of a notebook (read as JSON) as ``(cell index, source)`` pairs."""
    cells = json.loads(Path(path).read_text())["cells"]
    src = [(i, c["source"]) for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    return [(i, "".join(s) if isinstance(s, list) else s) for i, s in src]


def display(*objs, **kwargs) -> None:
    """Render objects as a notebook would (rich ``_repr_*_`` methods, figures to PNG), show nothing."""
    for obj in objs:
        if hasattr(obj, "savefig"):
            obj.savefig(io.BytesIO(), format="png")
            continue
        for method in ("_repr_mimebundle_", "_repr_html_", "_repr_png_", "_repr_markdown_"):
            if callable(getattr(obj, method, None)):
                getattr(obj, method)()
                break
        else:
            repr(obj)


class _Rich:
    """Stand-in for ``IPython.display.HTML`` and friends: keeps its data, shows nothing."""

    def __init__(self, data=None, url=None, filename=None, **kwargs):
        self.data, self.url, self.filename = data, url, filename

    def _repr_html_(self):
        return self.data


def ipython_stub(name: str):
    """Minimal ``IPython`` / ``IPython.display`` modules for a machine without IPython (no kernel, no output)."""
    module = types.ModuleType(name, "gan_lab.notebook_exec's stand-in for an absent IPython")
    if name == "IPython":
        module.version_info, module.__version__ = (8, 99, 0, "gan_lab stub"), "8.99.0"  # matplotlib reads it
        module.get_ipython = lambda: None
        return module
    module.display, module.clear_output = display, lambda *args, **kwargs: None
    for cls in ("HTML", "Markdown", "Image", "SVG", "Javascript", "Latex", "Math"):
        setattr(module, cls, type(cls, (_Rich,), {}))
    return module


def exec_cell(source: str, namespace: dict, name: str) -> None:
    """Run one cell; like Jupyter, a final expression (no trailing ``;``) is displayed."""
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)  # tracebacks show the cell
    tree = ast.parse(source, filename=name)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, name, "exec"), namespace)  # noqa: S102 (the book's own cells)
    if last is not None:
        value = eval(compile(last, name, "eval"), namespace)  # noqa: S307
        if value is not None:
            display(value)


def flush_figures() -> None:
    """Render and close every open figure, as the inline backend does at the end of a cell."""
    import matplotlib.pyplot as plt

    for number in plt.get_fignums():
        plt.figure(number).savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close("all")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The last finder: serves small ``IPython`` and ``IPython.display`` modules where none is found."""

    def find_spec(self, name, path=None, target=None):
        if name in ("IPython", "IPython.display"):
            return importlib.util.spec_from_loader(name, self, is_package=name == "IPython")
        return None

    def create_module(self, spec):
        return ipython_stub(spec.name)

    def exec_module(self, module) -> None:
        pass


def install_ipython_stub() -> None:
    """Serve :func:`ipython_stub` modules for ``IPython`` and ``IPython.display`` wherever none is installed."""
    if not any(isinstance(f, _StubFinder) for f in sys.meta_path):
        sys.meta_path.append(_StubFinder())


def run_notebook(path: str | os.PathLike) -> dict:
    """Execute a notebook's code cells in one fresh namespace (no Jupyter), stopping at the first error.

    Args:
        path: the ``.ipynb`` file, read as JSON (nbformat is not needed).

    Returns:
        ``{"status": "ok" | "failed", "cells": ..., "executed": ..., "skipped": [...]}``, and for
        a failure the notebook cell index (``cell``), its number among the code cells
        (``code_cell``), the exception's last line (``error``) and the traceback's tail.
    """
    import matplotlib

    matplotlib.use("Agg")
    install_ipython_stub()
    path = Path(path).resolve()
    cells = code_cells(path)
    result = {"status": "ok", "cells": len(cells), "executed": 0, "skipped": []}
    namespace = {"__name__": "__main__", "display": display}
    for k, (index, source) in enumerate(cells):
        if k == 0 and is_install_cell(source):
            result["skipped"].append(index)  # what it does, minus the install: import gan_lab
            exec("import gan_lab", namespace)  # noqa: S102
            continue
        try:
            exec_cell(strip_magics(source), namespace, f"<{path.stem} cell {index}>")
            flush_figures()
        except (Exception, SystemExit) as err:  # noqa: BLE001 (a chapter's failure is the result)
            result.update(status="failed", cell=index, code_cell=k,
                          error=traceback.format_exception_only(type(err), err)[-1].strip(),
                          traceback="".join(traceback.format_exception(type(err), err, err.__traceback__))[-3000:])
            break
        result["executed"] += 1
    return result
