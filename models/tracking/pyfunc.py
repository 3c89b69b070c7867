"""A trained policy as an MLflow pyfunc model with an explicit, strict signature.

In: the policy's state feature columns, float64 (decided once: trajectories store states as
float64, and MLflow refuses to narrow float64 into a float32 signature). Out: the recommended
action index, the recommended doses in their units, one Q-value column per action, the
clinicians' probability of the recommended action and whether it is below the support threshold
(Gottesman et al. 2019: recommendations the clinicians rarely made have little data behind them).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema

from dosewise.data_schemas import BadInputError

POLICY_ARTIFACT = "policy"
BEHAVIOUR_ARTIFACT = "behaviour_model"
INPUT_TYPE = "double"  # float64, the dtype of state columns in trajectories.parquet
ACTION_COLUMN = "recommended_action"
BEHAVIOUR_PROB_COLUMN = "behaviour_prob_recommended"
SUPPORT_COLUMN = "out_of_support"
# What a fresh environment needs to load the model (exact pins, as in pyproject.toml).
REQUIRED_DISTRIBUTIONS = (
    "dosewise", "mlflow", "torch", "d3rlpy", "gymnasium", "gym", "numpy", "pandas", "pyarrow",
    "scikit-learn", "scipy", "joblib", "pydantic", "pandera", "structlog", "cloudpickle",
)


def q_column(action: int, n_actions: int) -> str:
    """`q_07` for action 7 of 25 (zero-padded so columns sort in action order)."""
    return f"q_{action:0{max(2, len(str(n_actions - 1)))}d}"


def dose_column(name: str) -> str:
    """Output column of a recommended dose, keeping the unit in the name."""
    return f"recommended_{name}"


def input_columns(policy: Any, behaviour_features: list[str]) -> list[str]:
    """The policy's features, then any extra column the behaviour model reads."""
    features = list(policy.feature_names)
    return features + [name for name in behaviour_features if name not in features]


def policy_signature(policy: Any, behaviour_features: list[str]) -> ModelSignature:
    """Explicit signature: feature columns in (float64), recommendations out."""
    inputs: list[Any] = [ColSpec(INPUT_TYPE, name) for name in input_columns(policy, behaviour_features)]
    outputs: list[Any] = [ColSpec("long", ACTION_COLUMN)]
    outputs += [ColSpec("double", dose_column(name)) for name in policy.dose_columns]
    outputs += [ColSpec("double", q_column(a, policy.n_actions)) for a in range(policy.n_actions)]
    outputs += [ColSpec("double", BEHAVIOUR_PROB_COLUMN), ColSpec("boolean", SUPPORT_COLUMN)]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def pinned_requirements() -> list[str]:
    """`name==version` for every distribution the model needs, as installed now (local build tags
    such as torch's `+cpu` dropped: the serving host picks its own build of the same release)."""
    pins = []
    for name in REQUIRED_DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            continue
    return pins


def check_states(frame: Any, columns: list[str]) -> pd.DataFrame:
    """The named float64 columns of `frame`, or a `BadInputError` naming what is wrong."""
    if not isinstance(frame, pd.DataFrame):
        raise BadInputError(
            f"Policy input must be a pandas DataFrame of state columns. Got {type(frame).__name__}.",
            f"Pass a DataFrame with the float64 columns {', '.join(columns)}.",
        )
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise BadInputError(
            f"Policy input is missing {len(missing)} state column(s): {', '.join(missing[:10])}.",
            "Pass every state column the policy was trained on (see the model signature).",
        )
    wrong = [f"{n} ({frame[n].dtype})" for n in columns if frame[n].dtype != np.float64]
    if wrong:
        raise BadInputError(
            f"Policy input columns must be float64; these are not: {', '.join(wrong[:10])}.",
            "Convert them with frame.astype('float64') before predicting.",
        )
    states = frame[columns]
    if not np.isfinite(states.to_numpy()).all():
        raise BadInputError("Policy input holds NaN or infinite values.",
                            "Impute states the way the ETL does before asking for a recommendation.")
    return states


def predict_recommendations(
    policy: Any, states: pd.DataFrame, behaviour: Any = None,
    behaviour_features: list[str] | None = None, threshold: float | None = None,
) -> pd.DataFrame:
    """The pyfunc output frame for `states` (also used to check a loaded model equals the policy).

    Without a behaviour model the support is unknown: the probability is NaN and every
    recommendation is flagged out of support, the safe reading for a clinician.
    """
    features = list(policy.feature_names)
    checked = check_states(states, input_columns(policy, behaviour_features or []))
    policy_states = checked[features]
    action = np.asarray(policy.recommend(policy_states), dtype=np.int64)
    out = pd.DataFrame({ACTION_COLUMN: action}, index=states.index)
    if policy.dose_columns:
        doses = policy.recommend_doses(policy_states)
        for name in policy.dose_columns:
            out[dose_column(name)] = np.asarray(doses[name], dtype=np.float64)
    q = np.asarray(policy.q_values(policy_states), dtype=np.float64)
    for a in range(policy.n_actions):
        out[q_column(a, policy.n_actions)] = q[:, a]
    if behaviour is None or threshold is None:
        prob = np.full(len(out), np.nan)
        flag = np.ones(len(out), dtype=bool)
    else:
        probs = behaviour.action_probabilities(
            checked[behaviour_features or features], policy.n_actions
        )
        prob = probs[np.arange(len(action)), action].astype(np.float64)
        flag = prob < threshold
    out[BEHAVIOUR_PROB_COLUMN] = prob
    out[SUPPORT_COLUMN] = flag
    return out


class PolicyPyfuncModel(PythonModel):
    """MLflow `PythonModel` wrapping a saved Dosewise policy folder (+ behaviour model)."""

    def load_context(self, context: Any) -> None:
        """Load the policy folder and, when packaged, the behaviour model and its threshold."""
        from dosewise.models import load_policy

        from ..behaviour import load_behaviour_model

        config = dict(context.model_config or {})
        self.policy = load_policy(Path(context.artifacts[POLICY_ARTIFACT]))
        path = context.artifacts.get(BEHAVIOUR_ARTIFACT)
        self.behaviour = load_behaviour_model(Path(path)) if path else None
        self.behaviour_features: list[str] = list(config.get("behaviour_features") or [])
        threshold = config.get("support_threshold")
        self.threshold = None if threshold is None else float(threshold)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Recommendations, doses, Q-values and the support flag for each row of states."""
        return predict_recommendations(
            self.policy, model_input, self.behaviour, self.behaviour_features, self.threshold
        )
