"""Raw clinical records -> validated state-action-reward trajectories (DuckDB SQL plus pandas).

Public API only; the app and the tests import from here. No torch, d3rlpy, mlflow or streamlit.
"""

from __future__ import annotations

from importlib.abc import Traversable
from importlib.resources import files

from dosewise.data_schemas import StrictConfig

from .chemo.config import ChemoPipelineConfig
from .chemo.mapping import RegistryMapping
from .chemo.pipeline import run_chemo_pipeline
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
from .simulators.oncology_policy import (
    BinDeliveredAsClinicians,
    ClinicianPolicy,
    ConstantPolicy,
    CycleDecision,
    CyclePolicy,
    DeliveredAsClinicians,
    policy_from_function,
)
from .simulators.oncology_sim import RegimenSettings, SimulatedCohort, simulate_cohort
from .simulators.oncology_truth import PolicyValue, compare_policies, true_policy_value
from .simulators.oncology_writer import write_synthetic_oncology
from .simulators.synthetic_icu import write_synthetic_icu
from .simulators.synthetic_icu_config import SyntheticIcuConfig
from .splits import assign_splits

__all__ = [
    "BinDeliveredAsClinicians",
    "ChemoPipelineConfig",
    "ClinicianPolicy",
    "ConstantPolicy",
    "CycleDecision",
    "CyclePolicy",
    "DeliveredAsClinicians",
    "IcuSepsisMdp",
    "PolicyValue",
    "RegimenSettings",
    "RegistryMapping",
    "SepsisPipelineConfig",
    "SimulatedCohort",
    "SyntheticIcuConfig",
    "assign_splits",
    "behaviour_policy_matrix",
    "compare_policies",
    "config_folder",
    "config_kinds",
    "exact_policy_value",
    "exact_q_values",
    "exact_state_values",
    "load_icu_sepsis_mdp",
    "optimal_policy",
    "policy_from_function",
    "run_chemo_pipeline",
    "run_sepsis_pipeline",
    "simulate_cohort",
    "support_value_bounds",
    "true_policy_value",
    "write_icu_sepsis_episodes",
    "write_synthetic_icu",
    "write_synthetic_oncology",
]


def config_folder() -> Traversable:
    """The folder of shipped pipeline and simulator configs (`*.toml`)."""
    return files("dosewise.pipelines") / "configs"


def config_kinds() -> dict[str, type[StrictConfig]]:
    """Config `kind` -> the pydantic model that validates it, for `dosewise config`."""
    return {"sepsis_pipeline": SepsisPipelineConfig, "synthetic_icu": SyntheticIcuConfig,
            "chemo_pipeline": ChemoPipelineConfig, "registry_mapping": RegistryMapping}
