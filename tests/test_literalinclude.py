"""Every ``literalinclude`` in the chapters points at a file and an object that exist.

Jupyter Book turns a missing file or ``:pyobject:`` into a warning, which fails the website
build only at its very end; this catches library code moved without its chapter, in a second.
"""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
DIRECTIVE = re.compile(r"```\{literalinclude\} (\S+)\n((?::[\w-]+:.*\n)*)")


def includes(path: Path):
    for cell in json.loads(path.read_text())["cells"]:
        for target, options in DIRECTIVE.findall("".join(cell["source"]) + "\n"):
            opts = dict(re.findall(r":([\w-]+):\s*(.*)", options))
            yield target, opts


def defined(tree: ast.Module, dotted: str) -> ast.AST | None:
    """The class or function ``a`` or ``A.b`` defined in ``tree``."""
    node = tree
    for part in dotted.split("."):
        node = next((n for n in getattr(node, "body", []) if isinstance(
            n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.name == part), None)
        if node is None:
            return None
    return node


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_literalincludes_resolve(chapter):
    for target, opts in includes(chapter):
        path = (chapter.parent / target).resolve()
        assert path.is_file(), f"{chapter.name}: literalinclude of missing file {target}"
        if "pyobject" in opts:
            source = path.read_text()
            node = defined(ast.parse(source), opts["pyobject"])
            assert node is not None, f"{chapter.name}: {target} has no {opts['pyobject']}"
            text = ast.get_source_segment(source, node)
            for key in ("start-at", "end-before"):
                if key in opts:
                    assert opts[key] in text, f"{chapter.name}: {opts[key]!r} not in {opts['pyobject']}"


def test_the_check_finds_includes_and_rejects_a_missing_object():
    found = [t for c in CHAPTERS for t, _ in includes(c)]
    assert len(found) >= 10 and any(t.endswith("step.py") for t in found)
    tree = ast.parse((ROOT / "gan_lab" / "step.py").read_text())
    assert defined(tree, "discriminator_step") is not None
    assert defined(tree, "_discriminator_step") is None  # the control: a name that moved away
    assert defined(tree, "StepSpec.__post_init__") is not None


WIDTH = 77  # the website's code box at 1280 px (tests/test_notebook_format.py)


def shown(chapter: Path, target: str, opts: dict) -> str:
    """The text a literalinclude puts on the page: the object, cut at start-at/end-before."""
    source = (chapter.parent / target).resolve().read_text()
    if "pyobject" not in opts:
        return source
    node = defined(ast.parse(source), opts["pyobject"])
    lines = source.splitlines()[node.lineno - 1 - len(node.decorator_list):node.end_lineno]
    text = "\n".join(lines)
    if "start-at" in opts:
        text = text[text.rindex("\n", 0, text.index(opts["start-at"])) + 1:]
    if "end-before" in opts:
        text = text[:text.index(opts["end-before"])]
    return text


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_included_library_code_fits_the_code_box(chapter):
    wide = [f"{opts.get('pyobject', target)}: {line.strip()[:60]}... ({len(line)} chars)"
            for target, opts in includes(chapter)
            for line in shown(chapter, target, opts).splitlines() if len(line) > WIDTH]
    assert not wide, "\n".join(wide[:12])


def test_shown_cuts_at_the_options():
    step = "../gan_lab/step.py"
    whole = shown(CHAPTERS[0], step, {"pyobject": "discriminator_step"})
    assert whole.lstrip().startswith("def discriminator_step")
    cut = shown(CHAPTERS[0], step, {"pyobject": "discriminator_step", "end-before": '"""'})
    assert len(cut) < len(whole) and '"""' not in cut
