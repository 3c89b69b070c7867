"""Fixed reference policies, `constant:ACTION`: "always this dose" or "always arm k".

They follow the `Policy` protocol, so `dosewise evaluate` runs the same estimators on them as on a
learned policy. A reference policy is built against one dataset's contract (its state columns,
action count and dose columns), because "always full dose" means nothing without the dataset.

Spec forms (the text after `constant:`):
- `K` (an integer): always the discrete action (bin, arm) K.
- `LABEL`: always the action of that name, when the dataset names its actions (trial arms:
  `constant:Lev+5FU`; `action_labels` in the manifest).
- `X` (a number with a decimal point, e.g. `1.0`): always dose X of the dataset's only dose column.
- `COLUMN=X[,COLUMN=X]`: always these doses, one per dose column (all columns must be given).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from dosewise.data_schemas import BadInputError, TrajectoryDatasetInfo

PREFIX = "constant:"


def is_constant_spec(text: str) -> bool:
    """True for a `constant:...` policy spec."""
    return str(text).startswith(PREFIX)


class ConstantPolicy:
    """Always the same discrete action, or always the same doses (continuous)."""

    def __init__(self, info: TrajectoryDatasetInfo, *, action: int | None = None,
                 doses: dict[str, float] | None = None) -> None:
        if (action is None) == (doses is None):
            raise BadInputError("A constant policy needs either an action index or doses, not both.",
                                "Use constant:K for an action, constant:COLUMN=X for doses.")
        self.feature_names = list(info.state_columns)
        self.n_actions = int(info.n_actions)
        self.action_space: Literal["discrete", "continuous"] = "discrete" if doses is None else "continuous"
        self.dose_columns = list(doses or {})
        self._doses = np.asarray([(doses or {})[k] for k in self.dose_columns], dtype=np.float64)
        self._action = 0 if action is None else int(action)
        if action is not None:
            self.name = f"always action {action}"
        else:
            self.name = "always " + ", ".join(f"{k}={v:g}" for k, v in (doses or {}).items())
        if action is not None and not 0 <= action < self.n_actions:
            raise BadInputError(
                f"constant:{action} must be an action in 0..{self.n_actions - 1}. Got {action}.",
                f"These trajectories have {self.n_actions} actions.")

    def q_values(self, states: pd.DataFrame) -> np.ndarray:
        """No Q-function: 1 for the constant action, 0 elsewhere (so greedy is the action)."""
        out = np.zeros((len(states), self.n_actions))
        out[:, self._action] = 1.0
        return out

    def recommend(self, states: pd.DataFrame) -> np.ndarray:
        """(n,) the constant action (continuous: 0, the bins are not used)."""
        return np.full(len(states), self._action, dtype=np.int64)

    def recommend_doses(self, states: pd.DataFrame) -> pd.DataFrame:
        """The constant doses on every row."""
        values = np.broadcast_to(self._doses, (len(states), len(self.dose_columns)))
        return pd.DataFrame(values.copy(), columns=self.dose_columns, index=states.index)

    def action_probabilities(self, states: pd.DataFrame, epsilon: float = 0.0) -> np.ndarray:
        """(n, n_actions) epsilon-greedy around the constant action."""
        probs = np.full((len(states), self.n_actions), epsilon / self.n_actions)
        probs[:, self._action] += 1.0 - epsilon
        return probs


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInputError(f"`{spec}`: dose must be a number. Got {text!r}.",
                            "Write e.g. constant:1.0 or constant:rdi=1.0.") from None
    if not np.isfinite(value) or value < 0:
        raise BadInputError(f"`{spec}`: dose must be finite and >= 0. Got {text}.",
                            "Write e.g. constant:1.0.")
    return value


def _doses(body: str, spec: str, info: TrajectoryDatasetInfo) -> dict[str, float]:
    columns = list(info.continuous_action_columns)
    if not columns:
        raise BadInputError(
            f"`{spec}` is a continuous policy (a dose), but these trajectories are discrete: they have no "
            "dose columns (continuous_action_columns is empty).",
            f"Evaluate an action index instead, e.g. constant:0 (0..{info.n_actions - 1}).",
        )
    if "=" not in body:
        if len(columns) != 1:
            raise BadInputError(f"`{spec}` gives one dose, but the data have {len(columns)} dose columns.",
                                "Name each one: constant:" + ",".join(f"{col}=X" for col in columns) + ".")
        return {columns[0]: _number(body, spec)}
    pairs = dict(part.split("=", 1) for part in body.split(",") if part)
    unknown = [k for k in pairs if k not in columns]
    missing = [k for k in columns if k not in pairs]
    if unknown or missing:
        raise BadInputError(f"`{spec}`: dose columns must be exactly {columns}. Got {list(pairs)}.",
                            "Name each dose column once: constant:" + ",".join(f"{col}=X" for col in columns))
    return {col: _number(pairs[col], spec) for col in columns}


def constant_policy(spec: str, info: TrajectoryDatasetInfo) -> ConstantPolicy:
    """Parse `constant:K`, `constant:X.Y` or `constant:COL=X,...` against a dataset's contract."""
    body = str(spec)[len(PREFIX):].strip() if is_constant_spec(spec) else str(spec)
    if not body:
        raise BadInputError("`constant:` needs an action or a dose. Got nothing after the colon.",
                            "Write constant:K (action K) or constant:1.0 (a dose).")
    if body in info.action_labels:
        policy = ConstantPolicy(info, action=info.action_labels.index(body))
        policy.name = f"always {body}"
        return policy
    if "=" not in body and "." not in body and body.lstrip("-").isdigit():
        return ConstantPolicy(info, action=int(body))
    if "=" not in body and not _is_number(body) and not info.continuous_action_columns:
        named = (" or a label: " + ", ".join(info.action_labels)) if info.action_labels else ""
        raise BadInputError(
            f"`{spec}`: must be an action index 0..{info.n_actions - 1}{named}. Got {body!r}.",
            "These trajectories do not name their actions: write constant:K (a multi-stage trial's action "
            "names differ per stage: see stage_action_labels in its manifest)." if not named
            else f"Write e.g. constant:{info.action_labels[0]} or constant:0.")
    return ConstantPolicy(info, doses=_doses(body, spec, info))
