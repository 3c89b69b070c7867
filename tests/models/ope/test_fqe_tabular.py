"""Tabular FQE in closed form: exact values on tiny MDPs, never-logged pairs and unknown states in the
open, the refit-paired interval, and which FQE `fqe.method = auto` picks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import BadInputError
from dosewise.models import OpeConfig
from dosewise.models.ope.bootstrap import bootstrap_intervals, refit_paired_interval
from dosewise.models.ope.doubly_robust import direct_method_terms
from dosewise.models.ope.fqe_method import choose_fqe
from dosewise.models.ope.fqe_tabular import (
    TabularTransitions,
    solve_tabular,
    state_index,
    tabular_transitions,
)
from dosewise.pipelines import exact_policy_value, load_icu_sepsis_mdp
from dosewise.pipelines.simulators.icu_sepsis_episodes import simulate_episodes


def _episodes(*episodes: list[tuple[int, int, float]]) -> pd.DataFrame:
    """Rows (state, action, reward) per episode; every episode ends in a terminal step."""
    rows = [{"episode_id": e, "step": t, "s": s, "action": a, "reward": r, "terminal": t == len(steps) - 1}
            for e, steps in enumerate(episodes) for t, (s, a, r) in enumerate(steps)]
    return pd.DataFrame(rows)


def _data(frame: pd.DataFrame, n_states: int, n_actions: int = 2) -> TabularTransitions:
    return tabular_transitions(frame, frame["s"].to_numpy(np.int64), n_states, n_actions, "reward", "action",
                               "episode_id", "terminal")


# state 0: action 0 -> state 1 (reward 0), action 1 -> death (0); state 1: action 0 -> survival (1)
CHAIN = _episodes([(0, 0, 0.0), (1, 0, 1.0)], [(0, 1, 0.0)])


def test_closed_form_value_on_a_tiny_chain_is_exact() -> None:
    solution = solve_tabular(_data(CHAIN, 2), np.array([[0.5, 0.5], [1.0, 0.0]]), 1.0, (0.0, 1.0))
    assert solution.v_low == pytest.approx([0.5, 1.0]) and solution.v_high == pytest.approx([0.5, 1.0])
    assert solution.q[0] == pytest.approx([1.0, 0.0]) and solution.q[1, 0] == pytest.approx(1.0)
    assert solution.pooled_steps == pytest.approx([0.0, 0.0]) and solution.steps == pytest.approx([1.5, 1.0])
    discounted = solve_tabular(_data(CHAIN, 2), np.array([[1.0, 0.0], [1.0, 0.0]]), 0.9, (0.0, 1.0))
    assert discounted.v_low[0] == pytest.approx(0.9)


def test_a_never_logged_action_takes_the_states_pooled_transitions() -> None:
    # the target takes action 1 in state 1, never logged there: it gets state 1's logged outcome (1)
    solution = solve_tabular(_data(CHAIN, 2), np.array([[0.5, 0.5], [0.0, 1.0]]), 1.0, (0.0, 1.0))
    assert solution.v_low == pytest.approx([0.5, 1.0])
    assert solution.q[1, 1] == pytest.approx(1.0)
    assert solution.pooled_steps == pytest.approx([0.5, 1.0])  # the steps that rest on the assumption


def test_states_the_data_cannot_value_span_the_return_range() -> None:
    # state 2 is never in the fit data; state 3 only ever loops onto itself under the target
    frame = _episodes([(0, 0, 0.0), (2, 0, 1.0)], [(3, 0, 0.0), (3, 1, 1.0)])
    probs = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    solution = solve_tabular(_data(frame, 4), probs, 1.0, (-1.0, 2.0))
    assert not solution.seen[1] and solution.v_low[1] == -1.0 and solution.v_high[1] == 2.0
    assert (solution.v_low[3], solution.v_high[3]) == pytest.approx((-1.0, 2.0))  # a loop never left
    assert (solution.v_low[0], solution.v_high[0]) == pytest.approx((1.0, 1.0))
    mixed = solve_tabular(_data(frame, 4), np.array([[1.0, 0.0]] * 3 + [[0.5, 0.5]]), 1.0, (-1.0, 2.0))
    assert mixed.v_low[3] == pytest.approx(1.0) and mixed.v_high[3] == pytest.approx(1.0)  # it leaves


def test_tabular_fqe_recovers_the_exact_icu_sepsis_value() -> None:
    mdp = load_icu_sepsis_mdp()
    raw = simulate_episodes(5_000, mdp.clinician_policy, seed=5, mdp=mdp)
    data = tabular_transitions(raw, raw["s"].to_numpy(np.int64), mdp.n_states, mdp.n_actions, "r", "a", "ep",
                               "term")
    solution = solve_tabular(data, mdp.clinician_policy, 1.0, (0.0, 1.0))
    value = float(mdp.initial @ (0.5 * (solution.v_low + solution.v_high)))
    assert value == pytest.approx(exact_policy_value(mdp.clinician_policy), abs=0.02)  # sd about 0.006


def test_the_refit_paired_interval_adds_the_fits_error() -> None:
    rng = np.random.default_rng(0)
    starts = rng.uniform(0.6, 0.9, 200)
    refits = starts[None, :] + rng.normal(0.0, 0.03, (50, 1))  # each refit shifts every value
    one_fit = bootstrap_intervals({"FQE": direct_method_terms(starts)}, n_resamples=500, seed=0)["FQE"]
    value = float(starts.mean())
    paired = refit_paired_interval((value, value), refits, refits, n_resamples=500, seed=0, confidence=0.95)
    assert paired.value == pytest.approx(value)
    assert paired.ci_low < one_fit.ci_low and paired.ci_high > one_fit.ci_high
    assert paired.ci_high - paired.ci_low > 2 * 1.96 * 0.03 * 0.8
    wider = refit_paired_interval((value - 0.1, value + 0.1), refits - 0.1, refits + 0.1, n_resamples=500,
                                  seed=0, confidence=0.95)
    assert wider.ci_low < paired.ci_low - 0.09 and wider.ci_high > paired.ci_high + 0.09
    with pytest.raises(ValueError, match="at least 2 refits"):
        refit_paired_interval((value, value), refits[:1], refits[:1], n_resamples=10, seed=0, confidence=0.95)


def test_state_index_numbers_distinct_feature_rows_across_frames() -> None:
    first = pd.DataFrame({"x": [1.0, 2.0, 1.0], "y": [0.0, 0.0, 0.0]})
    second = pd.DataFrame({"x": [2.0, 3.0], "y": [0.0, 0.0]})
    (a, b), n = state_index([first, second], ["x", "y"])
    assert n == 3 and a[0] == a[2] != a[1] and b[0] == a[1] and b[1] not in a


NOT_READ: Any = None  # fqe.fit_split = "same": choose_fqe reads no other split


def _rows(n_states: int, n_rows: int) -> pd.DataFrame:
    return pd.DataFrame({"episode_id": np.arange(n_rows) // 5, "step": np.arange(n_rows) % 5,
                         "x": np.arange(n_rows) % n_states, "action": 0, "reward": 0.0, "terminal": False})


def test_auto_picks_tabular_only_where_states_repeat() -> None:
    config = OpeConfig.model_validate({"fqe": {"fit_split": "same"}})
    tabular = choose_fqe(NOT_READ, _rows(20, 500), ["x"], config, "test", "discrete")
    assert tabular.method == "tabular" and tabular.n_states == 20 and "20 distinct states" in tabular.reason
    neural = choose_fqe(NOT_READ, _rows(400, 500), ["x"], config, "test", "discrete")
    assert neural.method == "neural" and "fqe.method = auto: 400 distinct states" in neural.reason
    forced = config.model_copy(update={"fqe": config.fqe.model_copy(update={"method": "tabular"})})
    with pytest.raises(BadInputError, match=r"needs at most 100 distinct states here\. Got 400"):
        choose_fqe(NOT_READ, _rows(400, 500), ["x"], forced, "test", "discrete")
    with pytest.raises(BadInputError, match="must be `neural` or `auto` for continuous doses"):
        choose_fqe(NOT_READ, _rows(20, 500), ["x"], forced, "test", "continuous")
    assert choose_fqe(NOT_READ, _rows(20, 500), ["x"], config, "test", "continuous").method == "neural"
