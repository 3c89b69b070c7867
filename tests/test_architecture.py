"""Layer contracts (import-linter) and the namespace guard of architecture note 3.1."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

LAYERS = ("data_schemas", "pipelines", "models", "app")


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which(
        "lint-imports"
    )
    assert exe, "import-linter is not installed; run bash .ci/venv"
    result = subprocess.run(
        [exe, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def _all_modules() -> list[str]:
    names = []
    for layer in LAYERS:
        package = importlib.import_module(f"dosewise.{layer}")
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"dosewise.{layer}."):
            names.append(info.name)
    return names


def test_every_module_imports_under_the_namespace_only() -> None:
    for name in _all_modules():
        if name.endswith("streamlit_app") or ".app_pages." in name:
            continue  # Streamlit scripts run under `streamlit run`, tested in tests/app
        importlib.import_module(name)
    bare = sorted(m for m in sys.modules if m.split(".")[0] in LAYERS)
    assert bare == [], f"bare layer modules imported: {bare}"


@pytest.mark.parametrize("layer", ["data_schemas", "pipelines"])
def test_light_layers_do_not_pull_heavy_stacks(layer: str) -> None:
    code = (
        f"import sys, dosewise.{layer}, pkgutil, importlib\n"
        f"p = importlib.import_module('dosewise.{layer}')\n"
        f"[importlib.import_module(i.name) for i in pkgutil.walk_packages(p.__path__, 'dosewise.{layer}.')]\n"
        "heavy = [m for m in ('torch', 'd3rlpy', 'mlflow', 'streamlit') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_does_not_import_torch() -> None:
    code = "import sys; import dosewise.app.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
