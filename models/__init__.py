"""Trajectories -> offline-RL policies -> off-policy evaluation -> MLflow registry.

Public API only. Importing this package does not import torch, d3rlpy or mlflow; the
functions that need them import them when called.
"""

from __future__ import annotations

from importlib import import_module
from importlib.abc import Traversable
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from dosewise.data_schemas import StrictConfig

if TYPE_CHECKING:  # the typed public API: mypy checks callers against the real signatures
    from .behaviour import BehaviourPolicyClassifier, load_behaviour_model, save_behaviour_model
    from .config import MaskConfig, TrainConfig
    from .datasets import TrainingData, load_training_data, to_mdp_dataset
    from .device import resolve_device
    from .masks import AdmissibleActions
    from .ope.calibration import calibration_metrics
    from .ope.config import OpeConfig
    from .ope.report import evaluate_policy
    from .policy import Policy, TrainedPolicy, load_policy
    from .tracking.mlflow_logger import MLflowAdapter, MLflowAdapterFactory, log_run_context
    from .tracking.promotion import PromotionConfig, PromotionDecision, PromotionRefused
    from .tracking.pyfunc import PolicyPyfuncModel
    from .tracking.registry import (
        RegisteredPolicy,
        alias_policy,
        list_registered_policies,
        load_registered_policy,
        promote_policy,
        register_policy,
        resolve_registered,
    )
    from .tracking.runs import (
        end_run,
        fetch_run_artifact,
        log_ope_results,
        log_to_run,
        log_training_outputs,
        start_run,
    )
    from .tracking.session import TrackedEvaluation, TrackedTraining, evaluate_tracked, train_tracked
    from .tracking.stores import TrackingStore, local_store_uri, resolve_store
    from .training import TrainResult, train_policy

# Public name -> module that defines it; imported on first access so that `import dosewise.models`
# stays free of torch, d3rlpy and mlflow (each helper adds its names here and in the TYPE_CHECKING
# block above; tests/models/test_public_api.py checks that the two agree).
_LAZY_EXPORTS: dict[str, str] = {
    "AdmissibleActions": ".masks",
    "Policy": ".policy",
    "TrainedPolicy": ".policy",
    "load_policy": ".policy",
    "TrainConfig": ".config",
    "MaskConfig": ".config",
    "TrainResult": ".training",
    "train_policy": ".training",
    "TrainingData": ".datasets",
    "load_training_data": ".datasets",
    "to_mdp_dataset": ".datasets",
    "resolve_device": ".device",
    "MLflowAdapter": ".tracking.mlflow_logger",
    "MLflowAdapterFactory": ".tracking.mlflow_logger",
    "log_run_context": ".tracking.mlflow_logger",
    "PolicyPyfuncModel": ".tracking.pyfunc",
    "PromotionConfig": ".tracking.promotion",
    "PromotionDecision": ".tracking.promotion",
    "PromotionRefused": ".tracking.promotion",
    "RegisteredPolicy": ".tracking.registry",
    "alias_policy": ".tracking.registry",
    "list_registered_policies": ".tracking.registry",
    "load_registered_policy": ".tracking.registry",
    "promote_policy": ".tracking.registry",
    "register_policy": ".tracking.registry",
    "resolve_registered": ".tracking.registry",
    "end_run": ".tracking.runs",
    "fetch_run_artifact": ".tracking.runs",
    "log_ope_results": ".tracking.runs",
    "log_training_outputs": ".tracking.runs",
    "log_to_run": ".tracking.runs",
    "start_run": ".tracking.runs",
    "TrackedEvaluation": ".tracking.session",
    "TrackedTraining": ".tracking.session",
    "evaluate_tracked": ".tracking.session",
    "train_tracked": ".tracking.session",
    "TrackingStore": ".tracking.stores",
    "local_store_uri": ".tracking.stores",
    "resolve_store": ".tracking.stores",
    "BehaviourPolicyClassifier": ".behaviour",
    "load_behaviour_model": ".behaviour",
    "save_behaviour_model": ".behaviour",
    "OpeConfig": ".ope.config",
    "calibration_metrics": ".ope.calibration",
    "evaluate_policy": ".ope.report",
}

__all__ = [  # literal, so that type checkers see the exports
    "AdmissibleActions",
    "BehaviourPolicyClassifier",
    "MLflowAdapter",
    "MLflowAdapterFactory",
    "MaskConfig",
    "OpeConfig",
    "Policy",
    "PolicyPyfuncModel",
    "PromotionConfig",
    "PromotionDecision",
    "PromotionRefused",
    "RegisteredPolicy",
    "TrackedEvaluation",
    "TrackedTraining",
    "TrackingStore",
    "TrainConfig",
    "TrainResult",
    "TrainedPolicy",
    "TrainingData",
    "alias_policy",
    "calibration_metrics",
    "config_folder",
    "config_kinds",
    "end_run",
    "evaluate_policy",
    "evaluate_tracked",
    "fetch_run_artifact",
    "list_registered_policies",
    "load_behaviour_model",
    "load_policy",
    "load_registered_policy",
    "load_training_data",
    "local_store_uri",
    "log_ope_results",
    "log_run_context",
    "log_to_run",
    "log_training_outputs",
    "promote_policy",
    "register_policy",
    "resolve_device",
    "resolve_registered",
    "resolve_store",
    "save_behaviour_model",
    "start_run",
    "to_mdp_dataset",
    "train_policy",
    "train_tracked",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))


def config_folder() -> Traversable:
    """The folder of shipped training and evaluation configs (`*.toml`)."""
    return files("dosewise.models") / "configs"


def config_kinds() -> dict[str, type[StrictConfig]]:
    """Config `kind` -> the pydantic model that validates it, for `dosewise config`."""
    from .config import TrainConfig
    from .ope.config import OpeConfig
    from .tracking.promotion import PromotionConfig

    return {"ope": OpeConfig, "promotion": PromotionConfig, "train": TrainConfig}
