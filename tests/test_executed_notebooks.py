"""Chapters run once: nbval's executions kept (tests/nbval_save.py) and rendered by the website
build (book/_ext/executed_notebooks.py) instead of being executed a second time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from sphinx.errors import ExtensionError

from gan_lab.notebook_exec import source_sha256

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, second_cell: str) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A title"), nbformat.v4.new_code_cell("print('hello')"),
                nbformat.v4.new_code_cell(second_cell)]
    nbformat.write(nb, str(path))
    return json.loads(path.read_text())


def _run_nbval(tmp_path: Path, *notebooks: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
           "-p", "tests.nbval_save", "--nbval-save", "out", "-q", *notebooks]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_passing_notebook_is_saved_with_outputs_and_failing_one_is_not(tmp_path):
    good = _notebook(tmp_path / "good.ipynb", "6 * 7")
    _notebook(tmp_path / "bad.ipynb", "assert 6 * 7 == 41")
    stale = tmp_path / "out" / "bad.ipynb"  # a copy from an earlier, passing run
    stale.parent.mkdir()
    stale.write_text("{}")
    proc = _run_nbval(tmp_path, "good.ipynb", "bad.ipynb")
    assert proc.returncode == 1, proc.stdout[-2000:]  # the failing notebook fails the run
    assert "1 failed" in proc.stdout, proc.stdout[-2000:]
    assert not stale.exists()  # no copy of a notebook with a failing cell, and the old one is gone
    saved = nbformat.read(str(tmp_path / "out" / "good.ipynb"), as_version=4)
    nbformat.validate(saved)
    code = [c for c in saved.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2]
    assert code[0].outputs == [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    (result,) = code[1].outputs
    assert result.output_type == "execute_result" and result.data["text/plain"] == "42"
    assert result.execution_count == 2
    info = saved.metadata["gan_lab_execution"]
    assert info["source_sha256"] == source_sha256(good) and info["method"] == "nbval"
    assert 0 < info["runtime"] < 300
    assert source_sha256(json.loads((tmp_path / "out" / "good.ipynb").read_text())) == source_sha256(good)


def test_source_hash_ignores_outputs_but_not_code(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", "6 * 7")
    executed = json.loads(json.dumps(nb))
    executed["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hello\n"}]
    executed["cells"][1]["execution_count"] = 1
    assert source_sha256(executed) == source_sha256(nb)
    changed = json.loads(json.dumps(nb))
    changed["cells"][2]["source"] = "6 * 8"
    assert source_sha256(changed) != source_sha256(nb)


@pytest.fixture
def extension(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "book" / "_ext"))
    return import_module("executed_notebooks")


def test_extension_uses_only_a_current_copy(extension, tmp_path):
    nb = _notebook(tmp_path / "ch.ipynb", "6 * 7")
    folder = tmp_path / "executed"
    (folder / "book").mkdir(parents=True)
    source = json.dumps(nb)
    with pytest.raises(ExtensionError, match="no executed copy"):
        extension.executed_copy(tmp_path, "book/ch", source, folder)
    copy = json.loads(source)
    copy["metadata"][extension.METADATA_KEY] = {"source_sha256": source_sha256(nb), "runtime": 1.5,
                                                "mtime": 0.0, "method": "nbval"}
    (folder / "book" / "ch.ipynb").write_text(json.dumps(copy))
    assert extension.executed_copy(tmp_path, "book/ch", source, folder) == copy
    edited = json.loads(source)
    edited["cells"][1]["source"] = "print('changed')"
    with pytest.raises(ExtensionError, match="another version"):
        extension.executed_copy(tmp_path, "book/ch", json.dumps(edited), folder)


def test_extension_switches_execution_off_only_when_asked(extension, monkeypatch, tmp_path):
    config = SimpleNamespace(nb_execution_mode="force")
    monkeypatch.delenv(extension.VARIABLE, raising=False)
    extension._config_inited(None, config)
    assert config.nb_execution_mode == "force"
    monkeypatch.setenv(extension.VARIABLE, str(tmp_path))
    extension._config_inited(None, config)
    assert config.nb_execution_mode == "off"
    assert extension.executed_dir() == tmp_path.resolve()
