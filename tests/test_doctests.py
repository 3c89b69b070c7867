"""Doctests of every `dosewise.*` module, imported by their namespaced names (note 3.1)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

LAYERS = ("data_schemas", "pipelines", "models", "app")


def _modules() -> list[str]:
    names = []
    for layer in LAYERS:
        package = importlib.import_module(f"dosewise.{layer}")
        for info in pkgutil.walk_packages(package.__path__, prefix=f"dosewise.{layer}."):
            if info.name.endswith("streamlit_app") or ".app_pages." in info.name:
                continue
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
