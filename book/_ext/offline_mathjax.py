"""Serve MathJax from the built site instead of a CDN.

The PyPI package ``sphinx-mathjax-offline`` ships MathJax 3.2.2. When the HTML
builder starts, this extension takes ``tex-svg-full.js`` (TeX input, SVG output,
so no web fonts to fetch) from the installed package and copies it into the
output, where ``mathjax_path`` (``mathjax/tex-svg-full.js`` in ``_config.yml``)
points. Nothing is committed to the repository.

Sphinx resolves a relative ``mathjax_path`` against the *output's* static folder,
so the file lands in ``_build/html/_static/mathjax/``. The book's *source* tree
deliberately has no ``_static`` folder holding MathJax: Jupyter Book adds every
script found in ``<book root>/_static`` to every page, which would load it twice.

With Thebe switched off (``launch_buttons.thebe: false``), the extension also drops
sphinx-thebe's loader from every page: it does nothing without a Thebe button, but
it names a CDN (unpkg.com) from which it would fetch Thebe if it were ever called.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path, PurePosixPath

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

DISTRIBUTION = "sphinx-mathjax-offline"
SCRIPT = "tex-svg-full.js"

logger = logging.getLogger(__name__)


def packaged_mathjax(name: str = SCRIPT) -> Path:
    """Path of MathJax's ``name`` inside the installed ``sphinx-mathjax-offline``."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as err:
        raise ExtensionError(
            f"offline MathJax needs the PyPI package {DISTRIBUTION!r}: pip install {DISTRIBUTION}"
        ) from err
    for file in dist.files or ():
        if file.name == name and "mathjax" in file.parts:
            return Path(dist.locate_file(file))
    raise ExtensionError(f"{DISTRIBUTION} is installed but ships no {name}")


def check_mathjax_path(mathjax_path: str) -> PurePosixPath:
    """The validated ``mathjax_path``: local, relative, and not itself naming ``_static``."""
    path = PurePosixPath(mathjax_path)
    if "://" in mathjax_path or mathjax_path.startswith("//") or path.is_absolute():
        raise ExtensionError(f"mathjax_path must be a relative local path, got {mathjax_path!r}")
    if "_static" in path.parts or ".." in path.parts:
        raise ExtensionError(f"mathjax_path must not be under _static or leave the output: {mathjax_path!r}")
    if path.name != SCRIPT:
        raise ExtensionError(f"mathjax_path must end in {SCRIPT}, got {mathjax_path!r}")
    return path


def copy_mathjax(app: Sphinx) -> None:
    """Copy the packaged MathJax to ``<outdir>/_static/<mathjax_path>`` before any page is written.

    Sphinx's ``add_js_file`` prefixes every local script path with ``_static/``; copying
    before the pages are written also lets Sphinx add its ``?v=<checksum>`` cache buster.
    """
    if app.builder.format != "html":
        return
    relative = check_mathjax_path(app.config.mathjax_path)
    target = Path(app.outdir, "_static").joinpath(*relative.parts)
    source = packaged_mathjax()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
        logger.info("[offline_mathjax] copied %s to %s", source.name, target)


def _is_thebe_loader(script) -> bool:
    filename = getattr(script, "filename", script) or ""
    body = getattr(script, "attributes", {}).get("body", "") or ""
    return str(filename).endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body


def drop_thebe_loader(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Remove sphinx-thebe's scripts from a page when the book has Thebe switched off."""
    launch_buttons = app.config.html_theme_options.get("launch_buttons", {}) or {}
    if launch_buttons.get("thebe") or "script_files" not in context:
        return
    context["script_files"] = [js for js in context["script_files"] if not _is_thebe_loader(js)]


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", copy_mathjax)
    app.connect("html-page-context", drop_thebe_loader)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
