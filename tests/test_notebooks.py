"""Static checks on the chapters: anatomy, stored outputs, and the install cell's URL."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


CHAPTERS = [ROOT / f"{f}.ipynb" for f in _toc_files() if (ROOT / f"{f}.ipynb").exists()]


def _source(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_every_notebook_in_book_is_in_the_toc():
    on_disk = sorted(p.relative_to(ROOT) for p in (ROOT / "book").glob("*.ipynb"))
    assert on_disk == sorted(p.relative_to(ROOT) for p in CHAPTERS)
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_anatomy(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    first = cells[0]
    assert first["cell_type"] == "code" and "remove-cell" in first["metadata"].get("tags", [])
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"]
    assert f"git+{url}" in _source(first), "install cell must install from _config.yml's repository.url"
    assert "%pip install" in _source(first) and "except ImportError" in _source(first)
    # the title, optionally after a label line such as (chap-f-divergences)=
    assert cells[1]["cell_type"] == "markdown" and re.match(r"(\(\S+\)=\n)?# ", _source(cells[1]))
    code = [_source(c) for c in cells if c["cell_type"] == "code"]
    assert any("start_chapter(" in c for c in code[:3]), "the chapter clock starts near the top"
    assert "clock.finish()" in code[-1], "the last code cell prints the wall time"
    assert not any(re.search(r"^\s*from \S+ import \*", c, re.M) for c in code), "no star imports"
    assert any("assert" in c for c in code), "derivations are checked by asserts"
    text = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"^## Exercises", text, re.M) and "dropdown" in text
    assert re.search(r"^## Summary", text, re.M)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_only_checked_cells_keep_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        checked = _source(cell).startswith("# NBVAL_CHECK_OUTPUT")
        if checked:
            assert cell["metadata"].get("keep_output") is True
            assert cell["execution_count"] is not None and cell["outputs"], "checked cells keep output and count"
        else:
            assert not cell["outputs"], f"unchecked cell stores output: {_source(cell)[:60]!r}"


def test_equation_labels_are_unique_across_the_book():
    """Sphinx equation labels are global: a label reused in two chapters fails the build."""
    seen = {}
    for path in CHAPTERS:
        text = "\n".join(_source(c) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        for label in re.findall(r"\$\$\s*\(([\w-]+)\)", text):
            assert label not in seen, f"equation label {label!r} in {path.name} is already used in {seen[label]}"
            seen[label] = path.name
    assert seen


def solution_code_blocks(markdown: str) -> list[str]:
    """The Python code blocks inside ``{dropdown}`` solutions of a markdown cell."""
    found = []
    for m in re.finditer(r"^(`{3,}|:{3,})\{dropdown\}[^\n]*\n(.*?)^\1\s*$", markdown, re.M | re.S):
        found += re.findall(r"^`{3,}\s*(?:python|py|\{code-cell\})[^\n]*\n", m.group(2), re.M)
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_solution_code_is_executed(path):
    """Code in an exercise's solution runs: it lives in a (hidden) code cell, not in the dropdown."""
    nb = json.loads(path.read_text())
    blocks = [i for i, c in enumerate(nb["cells"])
              if c["cell_type"] == "markdown" and solution_code_blocks(_source(c))]
    assert not blocks, f"cells {blocks}: move the solution's code into a cell tagged hide-input"


def test_solution_code_blocks_finds_code_in_a_dropdown():
    inside = "````{dropdown} Solution\nText.\n```python\nx = 1\n```\n````\n"
    assert len(solution_code_blocks(inside)) == 1
    outside = "```python\nx = 1\n```\n\n````{dropdown} Solution\nJust text.\n````\n"
    assert solution_code_blocks(outside) == []
    assert len(solution_code_blocks(":::{dropdown} Solution\n```py\nx = 1\n```\n:::\n")) == 1


def test_every_chapter_has_the_same_install_cell():
    """One install cell, copied into each chapter (tests/test_install_cell.py runs the first)."""
    first = {tuple(json.loads(p.read_text())["cells"][0]["source"]) for p in CHAPTERS}
    assert len(first) == 1, f"{len(first)} different install cells"
