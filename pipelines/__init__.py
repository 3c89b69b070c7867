"""Raw clinical records -> validated state-action-reward trajectories (DuckDB SQL plus pandas).

Public API only; the app and the tests import from here. No torch, d3rlpy, mlflow or streamlit.
"""

from __future__ import annotations

from importlib.abc import Traversable
from importlib.resources import files

from dosewise.data_schemas import StrictConfig

from .simulators.icu_sepsis import (
    IcuSepsisMdp,
    behaviour_policy_matrix,
    exact_policy_value,
    exact_q_values,
    exact_state_values,
    load_icu_sepsis_mdp,
    optimal_policy,
)
from .simulators.icu_sepsis_episodes import write_icu_sepsis_episodes
from .splits import assign_splits

__all__ = [
    "IcuSepsisMdp",
    "assign_splits",
    "behaviour_policy_matrix",
    "config_folder",
    "config_kinds",
    "exact_policy_value",
    "exact_q_values",
    "exact_state_values",
    "load_icu_sepsis_mdp",
    "optimal_policy",
    "write_icu_sepsis_episodes",
]


def config_folder() -> Traversable:
    """The folder of shipped pipeline and simulator configs (`*.toml`)."""
    return files("dosewise.pipelines") / "configs"


def config_kinds() -> dict[str, type[StrictConfig]]:
    """Config `kind` -> the pydantic model that validates it, for `dosewise config`."""
    return {}
