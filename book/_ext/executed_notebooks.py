"""Build the website from chapters that nbval has already executed.

``make test`` and ``make book`` run every chapter once, under nbval
(``tests/nbval_save.py`` keeps each fully passing notebook, executed, under
``_build/executed``), then build the website with ``GAN_LAB_EXECUTED`` naming that
folder. With the variable set, this extension

* switches myst-nb's execution off (``nb_execution_mode = "off"``): nothing is run twice;
* replaces each chapter's source, as Sphinx reads it, by its executed copy, after checking
  that the copy was made from the chapter as it is now (the SHA-256 of its cells, recorded
  by the plugin). A missing or stale copy stops the build;
* gives myst-nb's execution table each copy's run time, date and method (``nbval``), as
  myst-nb records them when it executes a notebook itself.

Without the variable it does nothing, and ``jupyter-book build .`` executes every chapter
itself, as ``_config.yml`` says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

VARIABLE = "GAN_LAB_EXECUTED"
METADATA_KEY = "gan_lab_execution"


def executed_dir() -> Path | None:
    """The folder of executed copies named by ``GAN_LAB_EXECUTED``, or ``None``."""
    value = os.environ.get(VARIABLE, "").strip()
    return Path(value).resolve() if value else None


def executed_copy(srcdir: Path, docname: str, source: str, folder: Path) -> dict:
    """The executed copy of notebook ``docname`` (its current JSON text is ``source``), checked."""
    from gan_lab.notebook_exec import source_sha256

    path = folder / f"{docname}.ipynb"
    if not path.is_file():
        raise ExtensionError(f"{VARIABLE}: no executed copy of {docname}.ipynb in {folder} "
                             "(run `make notebooks` first)")
    nb = json.loads(path.read_text(encoding="utf-8"))
    info = nb.get("metadata", {}).get(METADATA_KEY)
    if not info or info.get("source_sha256") != source_sha256(json.loads(source)):
        raise ExtensionError(f"{VARIABLE}: the executed copy {path} was made from another version of "
                             f"{docname}.ipynb (run `make notebooks` again)")
    return nb


def _config_inited(app: Sphinx, config) -> None:
    if executed_dir() is not None:
        config.nb_execution_mode = "off"


def _source_read(app: Sphinx, docname: str, source: list) -> None:
    folder = executed_dir()
    if folder is None or not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    nb = executed_copy(Path(app.srcdir), docname, source[0], folder)
    app.env.gan_lab_executed = getattr(app.env, "gan_lab_executed", {})
    app.env.gan_lab_executed[docname] = nb["metadata"][METADATA_KEY]
    source[0] = json.dumps(nb, ensure_ascii=False)


def _doctree_read(app: Sphinx, doctree) -> None:
    info = getattr(app.env, "gan_lab_executed", {}).get(app.env.docname)
    if info is None:
        return
    from myst_nb.sphinx_ import NbMetadataCollector

    NbMetadataCollector.set_exec_data(app.env, app.env.docname, {
        "mtime": info["mtime"], "runtime": info["runtime"], "method": info["method"],
        "succeeded": True, "error": None, "traceback": None})


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _config_inited)
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
