"""Which FQE `dosewise evaluate` runs (`fqe.method`), and the tabular fit of one target.

`auto` is a documented rule, not a silent switch: tabular FQE where the states repeat (at most
`fqe.tabular_max_states` distinct state-feature rows over the fit and evaluated splits, and at least
`MIN_VISITS_PER_STATE` fit transitions per state), else the neural FQE. The choice and its reason
go into the report (`fqe_method`, `bootstrap.fqe_note`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas import columns as c

from ..datasets import LoadedTrajectories
from .config import OpeConfig
from .fqe_tabular import MIN_VISITS_PER_STATE, TabularFqe, fit_tabular_fqe, state_index, tabular_transitions
from .inputs import take_split


@dataclass(frozen=True)
class FqeChoice:
    """The FQE method that runs, why, and (tabular) the state indices of the fit and evaluated rows."""

    method: Literal["tabular", "neural"]
    reason: str
    n_states: int = 0
    fit: pd.DataFrame | None = None
    fit_state: np.ndarray | None = None
    rows_state: np.ndarray | None = None


def choose_fqe(trajectories: LoadedTrajectories, rows: pd.DataFrame, features: list[str], config: OpeConfig,
               split: str, action_space: str) -> FqeChoice:
    """Apply `fqe.method` to this data (see the module docstring)."""
    method = config.fqe.method
    if action_space == "continuous":
        if method == "tabular":
            raise BadInputError("fqe.method must be `neural` or `auto` for continuous doses. Got `tabular`.",
                                "Tabular FQE needs discrete actions; set fqe.method = \"auto\".")
        return FqeChoice("neural", "continuous doses: the neural FQE (tabular FQE needs discrete actions)")
    if method == "neural":
        return FqeChoice("neural", "fqe.method = neural")
    fit_split = split if config.fqe.fit_split == "same" else config.fqe.fit_split
    fit = rows if fit_split == split else take_split(trajectories.frame, fit_split, str(trajectories.folder))
    (fit_state, rows_state), n_states = state_index([fit, rows], features)
    limit = min(config.fqe.tabular_max_states, len(fit) // MIN_VISITS_PER_STATE)
    described = (f"{n_states} distinct states in {len(fit)} `{fit_split}` rows (tabular at most "
                 f"{config.fqe.tabular_max_states} states and 1 per {MIN_VISITS_PER_STATE} rows)")
    if n_states > limit:
        if method == "tabular":
            raise BadInputError(f"fqe.method = tabular needs at most {limit} distinct states here. Got "
                                f"{described}.", "Set fqe.method = \"auto\" for these features.")
        return FqeChoice("neural", f"fqe.method = auto: {described}, so the neural FQE")
    return FqeChoice("tabular", f"fqe.method = {method}: {described}", n_states, fit, fit_state, rows_state)


def fit_tabular_target(choice: FqeChoice, probs_fn: Callable[[pd.DataFrame], np.ndarray], rows: pd.DataFrame,
                       features: list[str], n_actions: int, config: OpeConfig,
                       returns_range: tuple[float, float]) -> TabularFqe:
    """Tabular FQE of one target: pi(.|s) once per distinct state, then the closed-form solves."""
    if choice.fit is None or choice.fit_state is None or choice.rows_state is None:
        raise ValueError("fit_tabular_target needs a tabular FqeChoice")
    both = pd.concat([choice.fit[features], rows[features]], ignore_index=True)
    states = np.concatenate([choice.fit_state, choice.rows_state])
    first = np.unique(states, return_index=True)[1]  # one row per state, ordered by state index
    probs = np.asarray(probs_fn(both.iloc[first].reset_index(drop=True)), dtype=np.float64)
    data = tabular_transitions(choice.fit, choice.fit_state, choice.n_states, n_actions, c.REWARD, c.ACTION,
                               c.EPISODE_ID, c.TERMINAL)
    return fit_tabular_fqe(data, probs, choice.rows_state, gamma=config.gamma, value_range=returns_range,
                           refits=config.fqe.tabular_refits if "FQE" in config.estimators else 0,
                           seed=config.seed)
