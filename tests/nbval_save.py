"""A pytest plugin: keep the notebooks that nbval executed, so the website need not run them again.

``pytest --nbval-lax -p tests.nbval_save --nbval-save DIR book/`` runs every chapter under
nbval as usual (asserts, checked outputs, device-check mode) and, for each notebook whose
cells *all* passed, writes the executed copy to ``DIR/<path relative to the rootdir>``: the
outputs nbval received from the kernel, execution counts 1, 2, ..., and in the notebook's
metadata ``gan_lab_execution`` = ``{"source_sha256", "runtime", "mtime", "method"}``: the
SHA-256 of the source notebook's cells (so a copy made from an older source is recognised
as stale), the seconds from the kernel's start to the last cell's end, when it finished,
and ``"nbval"``. A notebook with a failed or skipped cell gets no copy, and an older copy
is deleted first, so a stale success never survives a failing run. Files are written
atomically (a temporary file, then ``os.replace``).

The website build reads these copies through ``book/_ext/executed_notebooks.py``.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from gan_lab.notebook_exec import source_sha256

METADATA_KEY = "gan_lab_execution"


def pytest_addoption(parser):
    parser.addoption("--nbval-save", metavar="DIR", default=None,
                     help="write each fully passing notebook, executed, under DIR")


def _is_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item, "cell")


class _Saver:
    def __init__(self, root: Path, out: Path):
        self.root, self.out = root, out
        self.cells: dict[object, list] = {}  # notebook -> its cell items, in order
        self.outputs: dict[int, list] = {}  # id(item) -> outputs
        self.failed: set[object] = set()
        self.started: dict[object, float] = {}

    def target(self, parent) -> Path:
        return self.out / Path(str(parent.fspath)).resolve().relative_to(self.root)

    def collected(self, items) -> None:
        for item in items:
            if _is_cell(item):
                self.cells.setdefault(item.parent, []).append(item)
        for parent in self.cells:  # never leave a copy from an earlier run behind
            self.target(parent).unlink(missing_ok=True)

    def report(self, item, rep) -> None:
        parent = item.parent
        if rep.when == "setup":
            self.started.setdefault(parent, time.time())
        if rep.failed or rep.skipped:
            self.failed.add(parent)
        if rep.when == "call" and rep.passed:
            self.outputs[id(item)] = list(getattr(item, "test_outputs", None) or [])
        if rep.when == "teardown" and item is self.cells[parent][-1] and parent not in self.failed:
            self.write(parent)

    def write(self, parent) -> None:
        items = self.cells[parent]
        if any(id(item) not in self.outputs for item in items):
            return
        nb = copy.deepcopy(parent.nb)
        sources = [item.cell for item in items]
        code = [c for c in nb.cells if c.cell_type == "code"]
        if len(code) != len(sources):
            raise RuntimeError(f"{parent.fspath}: {len(code)} code cells, but {len(sources)} were run")
        for count, (cell, item) in enumerate(zip(code, items), start=1):
            cell.execution_count = count
            cell.outputs = [self._output(o, count) for o in self.outputs[id(item)]]
        nb.metadata[METADATA_KEY] = {
            "source_sha256": source_sha256(nbformat.read(str(parent.fspath), as_version=4)),
            "runtime": time.time() - self.started[parent], "mtime": time.time(), "method": "nbval"}
        nbformat.validate(nb)
        path = self.target(parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                nbformat.write(nb, f)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _output(out, count: int):
        kind = out["output_type"]
        if kind == "stream":
            return nbformat.v4.new_output("stream", name=out["name"], text=out["text"])
        if kind == "execute_result":
            return nbformat.v4.new_output("execute_result", data=out["data"], metadata=out.get("metadata", {}),
                                          execution_count=count)
        if kind == "display_data":
            return nbformat.v4.new_output("display_data", data=out["data"], metadata=out.get("metadata", {}))
        raise ValueError(f"unexpected output type {kind!r} in a passing cell")


def pytest_configure(config):
    out = config.getoption("--nbval-save")
    if out:
        config.pluginmanager.register(_SaverPlugin(_Saver(Path(config.rootpath).resolve(), Path(out).resolve())),
                                      "nbval-save-hooks")


class _SaverPlugin:
    def __init__(self, saver: _Saver):
        self.saver = saver

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        self.saver.collected(items)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if _is_cell(item):
            self.saver.report(item, outcome.get_result())
