"""Raw clinical records -> validated state-action-reward trajectories (DuckDB SQL plus pandas).

Public API only; the app and the tests import from here. No torch, d3rlpy, mlflow or streamlit.
"""

from __future__ import annotations

from importlib.abc import Traversable
from importlib.resources import files

from dosewise.data_schemas import StrictConfig

__all__ = ["config_folder", "config_kinds"]


def config_folder() -> Traversable:
    """The folder of shipped pipeline and simulator configs (`*.toml`)."""
    return files("dosewise.pipelines") / "configs"


def config_kinds() -> dict[str, type[StrictConfig]]:
    """Config `kind` -> the pydantic model that validates it, for `dosewise config`."""
    return {}
