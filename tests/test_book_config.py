"""The book's configuration says what we rely on, and Jupyter Book reads it that way.

Jupyter Book silently ignores keys it does not know, and a failing cell is only a
warning unless told otherwise, so these tests pin the settings down: first in the
YAML files, then in the Sphinx configuration Jupyter Book derives from them.
Fast and offline: nothing here builds the book.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import import_module
from pathlib import Path
from unittest import mock

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG_PATH = ROOT / "_config.yml"
TOC_PATH = ROOT / "_toc.yml"
MATHJAX_PATH = "mathjax/tex-svg-full.js"
PAGE_SUFFIXES = (".md", ".ipynb", ".rst")

jupyter_book = pytest.importorskip("jupyter_book", reason="the book's tests need jupyter-book")
from jupyter_book.config import PATH_JSON_SCHEMA, PATH_YAML_DEFAULT, get_final_config  # noqa: E402


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG_PATH.read_text(encoding="utf8"))


@pytest.fixture(scope="module")
def toc() -> dict:
    return yaml.safe_load(TOC_PATH.read_text(encoding="utf8"))


@pytest.fixture(scope="module")
def sphinx_config() -> dict:
    """The Sphinx configuration exactly as ``jupyter-book build .`` derives it."""
    path_before = list(sys.path)  # get_final_config appends local extension folders
    try:
        sphinx, _ = get_final_config(
            user_yaml=CONFIG_PATH,
            cli_config={"latex_individualpages": False, "external_toc_path": TOC_PATH.as_posix()},
            sourcedir=ROOT,
            validate=True,
            raise_on_invalid=True,  # a schema violation raises instead of printing a box
        )
    finally:
        sys.path[:] = path_before
    return sphinx


def toc_files(node) -> list[str]:
    """Every ``root`` and ``file`` entry of a Jupyter Book table of contents."""
    if isinstance(node, dict):
        found = [node[key] for key in ("root", "file") if key in node]
        return found + [f for value in node.values() for f in toc_files(value)]
    if isinstance(node, list):
        return [f for item in node for f in toc_files(item)]
    return []


def known_keys() -> dict[str, set[str]]:
    """Keys Jupyter Book knows: its default config (its "master list") and its JSON schema.

    Returns a map from section ("" for the top level) to the keys allowed in it.
    """
    defaults = yaml.safe_load(PATH_YAML_DEFAULT.read_text(encoding="utf8"))
    schema = json.loads(PATH_JSON_SCHEMA.read_text(encoding="utf8"))["properties"]
    known = {"": set(defaults) | set(schema)}
    for section in known[""]:
        keys = set(defaults.get(section) or {}) if isinstance(defaults.get(section), dict) else set()
        keys |= set(schema.get(section, {}).get("properties", {}))
        if keys:
            known[section] = keys
    return known


# --- the YAML files ---------------------------------------------------------------------


def test_every_chapter_runs_and_a_failing_cell_fails_the_build(config):
    execute = config["execute"]
    assert execute["execute_notebooks"] == "force"
    assert execute["raise_on_error"] is True
    assert execute["allow_errors"] is False
    assert execute.get("exclude_patterns", []) == []


def test_only_pages_in_the_toc_are_built(config):
    assert config["only_build_toc_files"] is True


def test_every_toc_entry_exists(toc):
    assert toc["format"] == "jb-book"
    entries = toc_files(toc)
    assert entries[0] == "book/intro"
    missing = [e for e in entries if not any((ROOT / f"{e}{s}").is_file() for s in PAGE_SUFFIXES)]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"
    assert len(entries) == len(set(entries)), "a page is listed twice in _toc.yml"


def test_bibliography_file_exists(config):
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    for bib in config["bibtex_bibfiles"]:
        assert (ROOT / bib).is_file()


def test_mathjax_is_local_and_not_under_a_static_folder(config):
    path = config["sphinx"]["config"]["mathjax_path"]
    assert path == MATHJAX_PATH
    assert "://" not in path and not path.startswith("/")
    assert "_static" not in Path(path).parts
    # Jupyter Book injects every script in <root>/_static into every page.
    assert not list(ROOT.glob("_static/**/*.js")), "no scripts may live in a source _static folder"


def test_repository_and_launch_buttons(config):
    assert config["repository"]["url"] == "https://github.com/gan-lab-book/gan-book"
    assert config["repository"]["branch"] == "main"
    assert config["html"]["use_repository_button"] is True
    launch = config["launch_buttons"]
    assert launch["colab_url"] == "https://colab.research.google.com"
    # Binder and Thebe would load scripts from other hosts.
    assert not launch.get("binderhub_url") and not launch.get("thebe")


def test_logo_and_favicon_exist(config):
    assert (ROOT / config["logo"]).is_file()
    assert (ROOT / config["html"]["favicon"]).is_file()


def test_every_key_is_one_jupyter_book_knows(config):
    """Jupyter Book ignores misspelled keys silently; a typo must fail here instead."""
    known = known_keys()
    unknown = sorted(set(config) - known[""])
    for section, value in config.items():
        if isinstance(value, dict) and section in known:
            unknown += [f"{section}.{key}" for key in sorted(set(value) - known[section])]
    assert not unknown, f"keys Jupyter Book does not know: {unknown}"


def test_the_key_check_catches_a_typo():
    known = known_keys()
    assert "only_build_toc_file" not in known[""]
    assert "raise_on_errors" not in known["execute"]
    assert {"execute_notebooks", "raise_on_error", "allow_errors", "timeout"} <= known["execute"]


# --- the Sphinx configuration Jupyter Book derives --------------------------------------


def test_derived_execution_settings(sphinx_config):
    # force: `jupyter-book build .` executes every chapter; `make book` and `make test` set
    # GAN_LAB_EXECUTED, and book/_ext/executed_notebooks.py then renders nbval's executions.
    assert sphinx_config["nb_execution_mode"] == "force"
    # myst-nb 1.x calls it ``execution_raise_on_error`` (older releases: ``raiseonerr``).
    assert sphinx_config["nb_execution_raise_on_error"] is True
    assert sphinx_config["nb_execution_allow_errors"] is False
    assert sphinx_config["nb_execution_timeout"] == 600
    assert sphinx_config["nb_execution_excludepatterns"] == []
    assert sphinx_config["external_toc_exclude_missing"] is True


def test_derived_names_are_myst_nb_options(sphinx_config):
    """Jupyter Book's translation targets must be options myst-nb actually reads."""
    from myst_nb.core.config import NbParserConfig

    fields = {f.name for f in NbParserConfig.get_fields()}
    nb_keys = [key for key in sphinx_config if key.startswith("nb_")]
    assert nb_keys
    assert not [key for key in nb_keys if key[len("nb_"):] not in fields]


def test_derived_mathjax_and_macros(sphinx_config):
    assert sphinx_config["mathjax_path"] == MATHJAX_PATH
    macros = sphinx_config["mathjax3_config"]["tex"]["macros"]
    assert macros == {
        "E": r"\mathbb{E}",
        "P": r"\mathbb{P}",
        "Q": r"\mathbb{Q}",
        "Dstar": "D^{*}",
        "JSD": r"\operatorname{JSD}",
        "KL": r"\operatorname{KL}",
    }


def test_derived_extensions_and_theme(sphinx_config):
    extensions = sphinx_config["extensions"]
    for name in ("myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinxcontrib.bibtex", "offline_mathjax",
                 "executed_notebooks"):
        assert name in extensions
    assert sphinx_config["bibtex_bibfiles"] == ["book/references.bib"]
    theme = sphinx_config["html_theme_options"]
    assert theme["repository_url"] == "https://github.com/gan-lab-book/gan-book"
    assert theme["use_repository_button"] is True
    assert theme["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert theme["launch_buttons"]["thebe"] is False
    assert sphinx_config["nb_ipywidgets_js"] == {}  # no require.js / widget manager from CDNs


def test_sphinx_config_keys_are_real_options(config):
    """Keys under ``sphinx.config`` go to Sphinx verbatim; each must be an option it reads."""
    from sphinx.application import Sphinx
    from sphinx.config import Config

    names = set(Config.config_values)
    app = mock.MagicMock(spec=Sphinx)  # records each extension's add_config_value calls
    for module in ("sphinx.builders.html", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax",
                   "sphinx.ext.intersphinx", "sphinxcontrib.bibtex"):
        import_module(module).setup(app)
    names |= {call.args[0] for call in app.add_config_value.call_args_list}
    from myst_nb.core.config import NbParserConfig

    names |= {f"nb_{field.name}" for field in NbParserConfig.get_fields()}  # myst-nb's options
    unknown = sorted(set(config["sphinx"]["config"]) - names)
    assert not unknown, f"sphinx.config keys Sphinx does not know: {unknown}"


# --- the pages and the offline MathJax extension ----------------------------------------


def test_every_citation_is_in_the_bibliography():
    from pybtex.database import parse_file

    keys = set(parse_file(str(ROOT / "book" / "references.bib")).entries)
    cite = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
    used = set()
    for page in ROOT.glob("book/*"):
        if page.suffix in (".md", ".ipynb"):
            for group in cite.findall(page.read_text(encoding="utf8")):
                used |= {key.strip() for key in group.split(",")}
    assert not sorted(used - keys), f"cited but not in references.bib: {sorted(used - keys)}"


def test_api_reference_documents_every_public_module():
    api = (ROOT / "book" / "api.md").read_text(encoding="utf8")
    modules = sorted(p.stem for p in (ROOT / "gan_lab").glob("*.py") if not p.stem.startswith("_"))
    missing = [m for m in modules if f".. automodule:: gan_lab.{m}" not in api]
    assert not missing, f"book/api.md lacks: {missing}"


def test_offline_mathjax_extension(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "book" / "_ext"))
    offline_mathjax = import_module("offline_mathjax")
    from sphinx.errors import ExtensionError

    assert offline_mathjax.check_mathjax_path(MATHJAX_PATH).parts == ("mathjax", "tex-svg-full.js")
    for bad in ("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg-full.js", "_static/tex-svg-full.js",
                "/mathjax/tex-svg-full.js", "../tex-svg-full.js", "mathjax/tex-chtml.js"):
        with pytest.raises(ExtensionError):
            offline_mathjax.check_mathjax_path(bad)
    script = offline_mathjax.packaged_mathjax()  # needs sphinx-mathjax-offline installed
    assert script.is_file() and script.stat().st_size > 1_000_000
