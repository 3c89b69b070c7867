"""A tabular `Policy` over the ICU-Sepsis MDP states: a test fixture that follows the protocol.

It maps each state row (47 cluster-centre features) back to its MDP state and answers from a
(716, 25) probability table, so the exact value of what it recommends is known.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from dosewise.pipelines import load_icu_sepsis_mdp

FEATURES = [f"cluster_centre_{i:02d}" for i in range(47)]


class TabularPolicy:
    """Policy protocol over MDP states, answering from a (716, 25) probability table."""

    action_space: Literal["discrete", "continuous"] = "discrete"

    def __init__(self, name: str, probabilities: np.ndarray, q: np.ndarray | None = None,
                 feature_names: list[str] | None = None) -> None:
        self.name = name
        self.dose_columns: list[str] = []
        self.probabilities = np.asarray(probabilities, dtype=np.float64)
        self.n_actions = self.probabilities.shape[1]
        self.feature_names = list(feature_names or FEATURES)
        self._q = q if q is not None else self.probabilities
        mdp = load_icu_sepsis_mdp()
        self._lookup = {row.tobytes(): s for s, row in enumerate(mdp.state_features)}

    def _states(self, states: pd.DataFrame) -> np.ndarray:
        values = states[FEATURES].to_numpy(np.float64)
        return np.array([self._lookup[row.tobytes()] for row in values], dtype=np.int64)

    def q_values(self, states: pd.DataFrame) -> np.ndarray:
        return self._q[self._states(states)]

    def recommend(self, states: pd.DataFrame) -> np.ndarray:
        return self.probabilities[self._states(states)].argmax(axis=1).astype(np.int64)

    def recommend_doses(self, states: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(index=states.index)

    def action_probabilities(self, states: pd.DataFrame, epsilon: float = 0.0) -> np.ndarray:
        probs = self.probabilities[self._states(states)]
        return (1.0 - epsilon) * probs + epsilon / self.n_actions

    def table(self, epsilon: float = 0.0) -> np.ndarray:
        """The (716, 25) probabilities after ε-softening (for exact values)."""
        return (1.0 - epsilon) * self.probabilities + epsilon / self.n_actions
