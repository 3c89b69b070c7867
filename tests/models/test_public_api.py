"""`dosewise.models`' typed public API: every lazy export is also imported under TYPE_CHECKING,
so mypy checks the app's calls against the real signatures (not `Any` from `__getattr__`)."""

from __future__ import annotations

import ast
from pathlib import Path

import dosewise.models as models


def test_every_lazy_export_is_typed() -> None:
    tree = ast.parse(Path(models.__file__).read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for item in node.body:
                if isinstance(item, ast.ImportFrom):
                    typed.update({alias.name: "." * item.level + (item.module or "") for alias in item.names})
    assert typed == models._LAZY_EXPORTS
    assert sorted(models.__all__) == sorted(["config_folder", "config_kinds", *models._LAZY_EXPORTS])
