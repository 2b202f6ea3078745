"""The chapters' code fits the website's code box: formatted by ruff, no line over 77 characters.

At a 1280-pixel-wide window the theme's code box shows 77 characters; a longer line scrolls
sideways (the browser test checks the built pages too). ``ruff format`` (book/ruff.toml) wraps code
but not strings and comments, so the width is checked separately.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
WIDTH = 77


def _ruff():
    exe = Path(sys.executable).with_name("ruff")
    found = str(exe) if exe.exists() else shutil.which("ruff")
    assert found, "ruff is in requirements.txt: install it (make install)"
    return found


def _code_lines(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        hidden = "remove-cell" in cell["metadata"].get("tags", [])  # not on the website
        if cell["cell_type"] == "code" and not hidden:
            src = cell["source"]
            for line in ("".join(src) if isinstance(src, list) else src).splitlines():
                yield i, line


# A cell tagged hide-input is shown inside a toggle whose indent leaves 75 characters.
HIDDEN_WIDTH = 75


def wide_lines(path, width=WIDTH):
    """(cell index, line) for every code line the website shows wider than its box."""
    nb = json.loads(path.read_text())
    hidden = {i for i, c in enumerate(nb["cells"])
              if "hide-input" in c["metadata"].get("tags", [])}
    return [(i, line) for i, line in _code_lines(path)
            if len(line) > (min(width, HIDDEN_WIDTH) if i in hidden else width)]


def _notebook(path, code):
    cell = {"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
            "outputs": [], "source": code.splitlines(keepends=True)}
    nb = {"cells": [cell], "metadata": {"language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1) + "\n")
    return path


def test_ruff_config_sets_the_code_box_width():
    text = (ROOT / "book" / "ruff.toml").read_text()
    assert f"line-length = {WIDTH}" in text


def test_chapters_are_ruff_formatted():
    result = subprocess.run([_ruff(), "format", "--check", "--diff", *map(str, CHAPTERS)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, "run `ruff format book/`:\n" + result.stdout[-3000:]


def test_format_check_catches_an_unformatted_cell(tmp_path):
    # a control: the same command on a notebook ruff would reformat must fail
    bad = _notebook(tmp_path / "bad.ipynb", "x=[1,2 ,3]\n")
    config = tmp_path / "ruff.toml"
    config.write_text(f"line-length = {WIDTH}\n")
    result = subprocess.run([_ruff(), "format", "--check", "--config", str(config), str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 1


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_code_line_is_wider_than_the_code_box(path):
    wide = wide_lines(path)
    assert not wide, "\n".join(f"cell {i} ({len(line)} chars): {line}" for i, line in wide[:10])


def test_width_check_catches_a_long_string(tmp_path):
    long = 'label = "' + "x" * WIDTH + '"\n'  # ruff leaves a long string alone
    assert wide_lines(_notebook(tmp_path / "long.ipynb", long)) == [(0, long.rstrip())]
    assert wide_lines(_notebook(tmp_path / "ok.ipynb", "y = 1\n")) == []
    hidden = json.loads((tmp_path / "long.ipynb").read_text())
    hidden["cells"][0]["metadata"]["tags"] = ["remove-cell"]  # the install cell: not shown
    (tmp_path / "hidden.ipynb").write_text(json.dumps(hidden))
    assert wide_lines(tmp_path / "hidden.ipynb") == []
    toggled = json.loads((tmp_path / "ok.ipynb").read_text())
    toggled["cells"][0]["metadata"]["tags"] = ["hide-input"]
    toggled["cells"][0]["source"] = ["z = " + "1" * 72 + "\n"]  # 76 characters
    (tmp_path / "toggled.ipynb").write_text(json.dumps(toggled))
    assert len(wide_lines(tmp_path / "toggled.ipynb")) == 1
