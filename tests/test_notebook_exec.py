"""The in-process notebook runner: magics, the install cell, displayed last expressions, a whole notebook."""

import json
import sys
from pathlib import Path

from gan_lab import notebook_exec

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ("try:\n    import gan_lab\nexcept ImportError:\n"
           "    %pip install -q \"gan_lab @ git+https://example.org/repo\"\n    import gan_lab\n")


def test_magics_are_stripped_and_the_install_cell_recognised():
    stripped = notebook_exec.strip_magics(INSTALL + "%%time\n!ls -l\nif True:\n  %env A=1\nx = '%not a magic'\n")
    compile(stripped, "<cell>", "exec")
    assert "%pip" not in stripped and "!ls" not in stripped and "    pass" in stripped and "  pass" in stripped
    assert "x = '%not a magic'" in stripped
    first = notebook_exec.code_cells(ROOT / "book" / "ch01_generative_models.ipynb")[0]
    assert first[0] == 0 and notebook_exec.is_install_cell(first[1])
    assert not notebook_exec.is_install_cell("import gan_lab\nprint(1)")


def test_a_cells_last_expression_is_displayed():
    shown = []

    class Rich:
        def _repr_html_(self):
            shown.append("html")
            return "<b>x</b>"

    namespace = {"Rich": Rich}
    notebook_exec.exec_cell("a = 1\nRich()", namespace, "<cell a>")
    notebook_exec.exec_cell("Rich();", namespace, "<cell b>")
    assert shown == ["html"] and namespace["a"] == 1


def test_run_notebook_skips_the_install_cell_and_reports_the_failing_cell(tmp_path, monkeypatch):
    cells = [INSTALL, "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nx = 2",
             "from IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))\nx + 1",
             "raise ValueError('boom in cell')", "print('never')"]
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# A chapter\n"]}]
          + [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c} for c in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "ch99.ipynb"
    path.write_text(json.dumps(nb))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the IPython stand-in is undone afterwards
    result = notebook_exec.run_notebook(path)
    assert result["status"] == "failed" and result["skipped"] == [1] and result["executed"] == 2
    assert result["cell"] == 4 and result["code_cell"] == 3 and result["error"] == "ValueError: boom in cell"
    assert "boom in cell" in result["traceback"]
