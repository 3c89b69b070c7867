"""Raw clinical records -> validated state-action-reward trajectories (DuckDB SQL plus pandas).

Public API only; the app and the tests import from here. No torch, d3rlpy, mlflow or streamlit.
"""

from __future__ import annotations

from importlib.abc import Traversable
from importlib.resources import files

from dosewise.data_schemas import StrictConfig

from .sepsis.config import SepsisPipelineConfig
from .sepsis.pipeline import run_sepsis_pipeline
from .simulators.icu_sepsis import (
    IcuSepsisMdp,
    behaviour_policy_matrix,
    exact_policy_value,
    exact_q_values,
    exact_state_values,
    load_icu_sepsis_mdp,
    optimal_policy,
    support_value_bounds,
)
from .simulators.icu_sepsis_episodes import write_icu_sepsis_episodes
from .simulators.synthetic_icu import write_synthetic_icu
from .simulators.synthetic_icu_config import SyntheticIcuConfig
from .splits import assign_splits

__all__ = [
    "IcuSepsisMdp",
    "SepsisPipelineConfig",
    "SyntheticIcuConfig",
    "assign_splits",
    "behaviour_policy_matrix",
    "config_folder",
    "config_kinds",
    "exact_policy_value",
    "exact_q_values",
    "exact_state_values",
    "load_icu_sepsis_mdp",
    "optimal_policy",
    "run_sepsis_pipeline",
    "support_value_bounds",
    "write_icu_sepsis_episodes",
    "write_synthetic_icu",
]


def config_folder() -> Traversable:
    """The folder of shipped pipeline and simulator configs (`*.toml`)."""
    return files("dosewise.pipelines") / "configs"


def config_kinds() -> dict[str, type[StrictConfig]]:
    """Config `kind` -> the pydantic model that validates it, for `dosewise config`."""
    return {"sepsis_pipeline": SepsisPipelineConfig, "synthetic_icu": SyntheticIcuConfig}
