"""Support bounds: the range of values the data allow, checked against the exact ICU-Sepsis range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.ope import OpeEstimate, SupportBounds
from dosewise.models.ope.bootstrap import bootstrap_intervals
from dosewise.models.ope.bounds import bound_warnings, support_bound_terms, value_range
from dosewise.models.ope.episodes import episode_layout
from dosewise.models.ope.importance_sampling import importance_weights, wis_terms
from dosewise.pipelines import (
    behaviour_policy_matrix,
    exact_policy_value,
    load_icu_sepsis_mdp,
    optimal_policy,
    support_value_bounds,
)
from dosewise.pipelines.simulators.icu_sepsis_episodes import simulate_episodes


def _small() -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.DataFrame({"episode_id": ["a", "a", "a", "b", "b"], "step": [0, 1, 2, 0, 1],
                          "reward": [0.0, 1.0, 2.0, -1.0, 0.5]})
    return frame, np.array([0, 1, 0, 1, 1])


def test_the_return_range_is_configured_or_observed() -> None:
    returns = np.array([0.5, -0.75, 2.0])
    assert value_range(None, returns) == (-0.75, 2.0)
    assert value_range((-15.0, 15.0), returns) == (-15.0, 15.0)
    with pytest.raises(BadInputError, match="low <= high"):
        value_range((1.0, 0.0), returns)


def _random_case(threshold: float) -> tuple:
    frame, actions = _small()
    layout = episode_layout(frame)
    rng = np.random.default_rng(0)
    behaviour = rng.dirichlet([1.0, 1.0], size=len(frame))
    target = rng.dirichlet([1.0, 1.0], size=len(frame))
    rewards = layout.pad(frame["reward"].to_numpy(), 0.0)
    logged = behaviour[np.arange(len(frame)), actions]
    low, high = support_bound_terms(target, behaviour, logged, actions, rewards, layout, threshold=threshold,
                                    bounds=(-10.0, 10.0), gamma=0.9)
    return frame, actions, layout, behaviour, target, rewards, logged, low, high


def test_inside_the_support_both_bounds_are_wis() -> None:
    frame, actions, layout, _, target, rewards, logged, low, high = _random_case(1e-9)
    weights = importance_weights(layout.pad(target[np.arange(len(frame)), actions], 1.0),
                                 layout.pad(logged, 1.0), layout.mask)
    wis = wis_terms(weights, rewards, 0.9).value()
    assert low.value() == pytest.approx(wis) == pytest.approx(high.value())
    assert low.stay_probability() == 1.0


def test_bounds_follow_the_stay_probability_step_by_step() -> None:
    """The vectorised bounds against a plain loop over steps and episodes."""
    threshold = 0.3
    frame, actions, _, behaviour, target, _, _, low, high = _random_case(threshold)
    inside = behaviour >= threshold
    episodes = [np.flatnonzero(frame["episode_id"].to_numpy() == e) for e in ("a", "b")]
    w_prev = np.ones(2)
    stay, returns = 1.0, np.zeros(2)
    for t in range(3):
        leave = [(target[rows[t]] * ~inside[rows[t]]).sum() if t < len(rows) else 0.0 for rows in episodes]
        stay *= 1.0 - np.dot(w_prev, leave) / w_prev.sum()
        for i, rows in enumerate(episodes):
            if t < len(rows):
                r, a = rows[t], actions[rows[t]]
                w_prev[i] *= (target[r, a] if inside[r, a] else 0.0) / behaviour[r, a]
                returns[i] += 0.9**t * frame["reward"].to_numpy()[r]
    v_in = np.dot(w_prev, returns) / w_prev.sum() if w_prev.sum() > 0 else 0.0
    stay = stay if w_prev.sum() > 0 else 0.0
    assert stay < 1.0 and low.stay_probability() == pytest.approx(stay)
    assert low.value() == pytest.approx(stay * v_in - 10.0 * (1 - stay))
    assert high.value() == pytest.approx(stay * v_in + 10.0 * (1 - stay))


def test_nothing_in_support_gives_the_whole_return_range() -> None:
    *_, low, high = _random_case(1.01)
    assert (low.value(), high.value()) == pytest.approx((-10.0, 10.0))
    assert low.stay_probability() == 0.0


def _bounds_on_episodes(table: np.ndarray, n: int = 4000, seed: int = 5) -> tuple[dict, tuple[float, float]]:
    """Estimated bounds and the exact range on clinician-logged ICU-Sepsis episodes; the support is
    every action the clinicians ever take."""
    mdp = load_icu_sepsis_mdp()
    behaviour = behaviour_policy_matrix("clinician", mdp)
    raw = simulate_episodes(n, behaviour, seed=seed, mdp=mdp)
    layout = episode_layout(raw.rename(columns={"ep": "episode_id"}))
    s, a = raw["s"].to_numpy(), raw["a"].to_numpy()
    low, high = support_bound_terms(table[s], behaviour[s], raw["p"].to_numpy(), a,
                                       layout.pad(raw["r"].to_numpy(float), 0.0), layout, threshold=1e-12,
                                       bounds=(0.0, 1.0), gamma=1.0)
    results = bootstrap_intervals({"low": low, "high": high}, n_resamples=1000, seed=0, bca=False)
    return results, support_value_bounds(table, behaviour, mdp)


def test_softened_clinicians_are_only_bounded_and_the_bounds_match_the_exact_range() -> None:
    """Softening the clinicians' policy (epsilon 0.3 over all 25 actions) puts mass on actions they
    never take: the value is then only bounded, and the estimates find the exact range."""
    mdp = load_icu_sepsis_mdp()
    table = 0.7 * mdp.clinician_policy + 0.3 / mdp.n_actions
    results, (exact_low, exact_high) = _bounds_on_episodes(table)
    assert exact_high - exact_low > 0.5
    assert results["low"].ci_low <= exact_low <= results["low"].ci_high
    assert results["high"].ci_low <= exact_high <= results["high"].ci_high
    assert results["low"].ci_low <= exact_policy_value(table, mdp) <= results["high"].ci_high


def test_the_clinicians_own_value_is_identified() -> None:
    mdp = load_icu_sepsis_mdp()
    results, (exact_low, exact_high) = _bounds_on_episodes(mdp.clinician_policy)
    assert exact_low == pytest.approx(exact_high)
    assert results["low"].value == pytest.approx(results["high"].value)
    assert results["low"].ci_low <= exact_low <= results["high"].ci_high


def test_a_near_greedy_policy_gets_a_wide_range_that_holds_its_value() -> None:
    """The optimal policy (epsilon 0.1): heavy importance weights make each bound noisy, but their
    errors widen the range, which still holds the true value."""
    table = 0.9 * optimal_policy() + 0.1 / load_icu_sepsis_mdp().n_actions
    results, (exact_low, exact_high) = _bounds_on_episodes(table)
    # Relative to the exact range (0.46 on these episodes), not a fixed width: the sampled episodes,
    # and so the estimated bounds, move slightly with the CPU's floating-point summation order.
    assert results["high"].value - results["low"].value > 0.5 * (exact_high - exact_low)
    assert results["low"].ci_low <= exact_policy_value(table) <= results["high"].ci_high


def test_a_range_wider_than_the_headline_interval_is_warned_about() -> None:
    wis = OpeEstimate(estimator="WIS", target="policy", value=0.8, ci_low=0.75, ci_high=0.85,
                      lower_bound_95=0.76, n_episodes=100)
    wide = SupportBounds(target="policy", value_low=0.5, value_high=0.9, ci_low=0.45, ci_high=0.95,
                         return_low=0.0, return_high=1.0, return_range_source="observed",
                         share_leaving_support=0.4, threshold=0.01)
    narrow = wide.model_copy(update={"value_low": 0.79, "value_high": 0.81, "share_leaving_support": 0.02})
    (message,) = bound_warnings([wide], [wis])
    assert "about 40 % of its episodes" in message and "[0.500, 0.900]" in message and "WIS" in message
    assert bound_warnings([narrow], [wis]) == []
