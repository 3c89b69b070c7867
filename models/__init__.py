"""Trajectories -> offline-RL policies -> off-policy evaluation -> MLflow registry.

Public API only. Importing this package does not import torch, d3rlpy or mlflow; the
functions that need them import them when called.
"""

from __future__ import annotations

from importlib.abc import Traversable
from importlib.resources import files

from dosewise.data_schemas import StrictConfig

__all__ = ["config_folder", "config_kinds"]


def config_folder() -> Traversable:
    """The folder of shipped training and evaluation configs (`*.toml`)."""
    return files("dosewise.models") / "configs"


def config_kinds() -> dict[str, type[StrictConfig]]:
    """Config `kind` -> the pydantic model that validates it, for `dosewise config`."""
    return {}
