"""Estimators, bootstrap and diagnostics on hand-made arrays: closed forms against explicit loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import BadInputError
from dosewise.models.ope.bootstrap import bootstrap_intervals, bootstrap_replicates, resample_counts
from dosewise.models.ope.diagnostics import kish_ess, per_decision_ess, support_flags, support_summary
from dosewise.models.ope.doubly_robust import dr_terms, wdr_terms
from dosewise.models.ope.episodes import episode_layout, sort_episodes
from dosewise.models.ope.importance_sampling import (
    importance_weights,
    is_terms,
    pdis_terms,
    pdwis_terms,
    wis_terms,
)


def _random_batch(seed: int, n: int = 40, horizon: int = 6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, horizon + 1, n)
    mask = np.arange(horizon)[None, :] < lengths[:, None]
    target = np.where(mask, rng.uniform(0.0, 1.0, (n, horizon)), 1.0)
    behaviour = np.where(mask, rng.uniform(0.1, 1.0, (n, horizon)), 1.0)
    rewards = np.where(mask, rng.normal(size=(n, horizon)), 0.0)
    q = np.where(mask, rng.normal(size=(n, horizon)), 0.0)
    v = np.where(mask, rng.normal(size=(n, horizon)), 0.0)
    return importance_weights(target, behaviour, mask), rewards, q, v, mask


def _loop_estimates(w, rewards, q, v, mask, gamma):
    """Textbook per-episode loops (Precup 2000, Jiang & Li 2016, Thomas & Brunskill 2016)."""
    n, horizon = rewards.shape
    ratios = w.ratios
    rho = np.ones((n, horizon))
    for i in range(n):
        running = 1.0
        for t in range(horizon):
            running *= ratios[i, t]
            rho[i, t] = running
    returns = np.array([sum(gamma**t * rewards[i, t] for t in range(horizon)) for i in range(n)])
    is_ = np.mean(rho[:, -1] * returns)
    wis = np.sum(rho[:, -1] * returns) / np.sum(rho[:, -1])
    pdis = sum(gamma**t * np.mean(rho[:, t] * rewards[:, t]) for t in range(horizon))
    pdwis = sum(gamma**t * np.sum(rho[:, t] * rewards[:, t]) / np.sum(rho[:, t]) for t in range(horizon))
    prev = np.concatenate([np.ones((n, 1)), rho[:, :-1]], axis=1)
    dr = np.mean([sum(gamma**t * (rho[i, t] * (rewards[i, t] - q[i, t]) + prev[i, t] * v[i, t])
                      for t in range(horizon)) for i in range(n)])
    wdr = sum(gamma**t * (np.sum(rho[:, t] * (rewards[:, t] - q[:, t])) / np.sum(rho[:, t])
                          + np.sum(prev[:, t] * v[:, t]) / np.sum(prev[:, t])) for t in range(horizon))
    return {"IS": is_, "WIS": wis, "PDIS": pdis, "PDWIS": pdwis, "DR": dr, "WDR": wdr}


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_vectorised_estimators_equal_textbook_loops(gamma: float) -> None:
    w, rewards, q, v, mask = _random_batch(1)
    expected = _loop_estimates(w, rewards, q, v, mask, gamma)
    got = {
        "IS": is_terms(w, rewards, gamma).value(), "WIS": wis_terms(w, rewards, gamma).value(),
        "PDIS": pdis_terms(w, rewards, gamma).value(), "PDWIS": pdwis_terms(w, rewards, gamma).value(),
        "DR": dr_terms(w, rewards, q, v, gamma).value(), "WDR": wdr_terms(w, rewards, q, v, gamma).value(),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-10), name


def test_wis_stays_within_the_return_range() -> None:
    w, rewards, *_ = _random_batch(2)
    returns = rewards.sum(axis=1)
    value = wis_terms(w, rewards, 1.0).value()
    assert returns.min() - 1e-12 <= value <= returns.max() + 1e-12


def test_clipping_caps_ratios_and_counts_them() -> None:
    mask = np.ones((2, 2), dtype=bool)
    w = importance_weights(np.array([[1.0, 1.0], [1.0, 0.5]]), np.array([[0.1, 1.0], [1.0, 1.0]]), mask,
                           max_weight=4.0)
    assert w.ratios.max() == 4.0
    assert w.n_clipped == 1


def test_zero_behaviour_probability_is_an_error() -> None:
    mask = np.ones((1, 2), dtype=bool)
    with pytest.raises(BadInputError, match="behaviour probability 0"):
        importance_weights(np.ones((1, 2)), np.array([[0.5, 0.0]]), mask)


def test_resample_counts_sum_to_n_and_bootstrap_matches_explicit_resampling() -> None:
    w, rewards, q, v, _ = _random_batch(3, n=25)
    counts = resample_counts(25, 30, np.random.default_rng(0))
    assert (counts.sum(axis=1) == 25).all()
    terms = wdr_terms(w, rewards, q, v, 1.0)
    fast = terms.resampled(counts)
    for b in range(counts.shape[0]):
        picks = np.repeat(np.arange(25), counts[b].astype(int))
        sub = wdr_terms(
            type(w)(w.ratios[picks], w.cumulative[picks], 0), rewards[picks], q[picks], v[picks], 1.0
        )
        assert fast[b] == pytest.approx(sub.value(), rel=1e-9)


def test_jackknife_matches_leaving_each_episode_out() -> None:
    w, rewards, *_ = _random_batch(4, n=12)
    terms = pdwis_terms(w, rewards, 1.0)
    loo = terms.jackknife()
    for i in range(12):
        keep = np.arange(12) != i
        sub = pdwis_terms(type(w)(w.ratios[keep], w.cumulative[keep], 0), rewards[keep], 1.0)
        assert loo[i] == pytest.approx(sub.value(), rel=1e-9)


def test_bootstrap_is_seeded_and_intervals_are_ordered() -> None:
    w, rewards, q, v, _ = _random_batch(5, n=60)
    terms = {"WIS": wis_terms(w, rewards, 1.0), "WDR": wdr_terms(w, rewards, q, v, 1.0)}
    a = bootstrap_replicates(terms, n_resamples=300, seed=7)
    b = bootstrap_replicates(terms, n_resamples=300, seed=7)
    np.testing.assert_array_equal(a["WDR"], b["WDR"])
    res = bootstrap_intervals(terms, n_resamples=300, seed=7)["WIS"]
    assert res.ci_low <= res.lower_bound_95 <= res.ci_high
    assert res.bca_low is not None and res.bca_low <= res.bca_high


def test_kish_ess_never_exceeds_n() -> None:
    w, _, _, _, mask = _random_batch(6)
    n = mask.shape[0]
    assert 1.0 <= kish_ess(w.trajectory) <= n
    assert 0.0 < per_decision_ess(w, mask) <= n
    assert kish_ess(np.ones(7)) == pytest.approx(7.0)


def test_episode_layout_pads_rows_by_episode_and_step() -> None:
    frame = sort_episodes(pd.DataFrame({"episode_id": ["b", "a", "a"], "step": [0, 1, 0],
                                        "reward": [5.0, 2.0, 1.0]}))
    layout = episode_layout(frame)
    padded = layout.pad(frame["reward"].to_numpy(), 0.0)
    assert list(layout.episode_ids) == ["a", "b"]
    np.testing.assert_array_equal(padded, [[1.0, 2.0], [5.0, 0.0]])
    np.testing.assert_array_equal(layout.mask, [[True, True], [True, False]])


def test_support_flags_mark_rare_recommendations() -> None:
    frame = pd.DataFrame({"episode_id": ["a", "a", "b"], "step": [0, 1, 0]})
    probs = np.array([[0.9, 0.1], [0.995, 0.005], [0.5, 0.5]])
    flags = support_flags(frame, np.array([0, 1, 1]), probs, threshold=0.01)
    assert flags["out_of_support"].tolist() == [False, True, False]
    summary = support_summary(flags, 0.01)
    assert summary.share_steps_out_of_support == pytest.approx(1 / 3)
    assert summary.share_episodes_with_any == pytest.approx(0.5)


def test_widen_for_refits_adds_variances_per_side() -> None:
    from scipy.stats import t

    from dosewise.models.ope.bootstrap import BootstrapResult, widen_for_refits

    base = BootstrapResult(value=0.5, replicates=np.zeros(3), ci_low=0.4, ci_high=0.7, lower_bound_95=0.45,
                           bca_low=None, bca_high=0.75)
    assert widen_for_refits(base, 0.0, 0.95, 5) == base
    wide = widen_for_refits(base, 0.03, 0.95, 5)
    q, q_one = t.ppf(0.975, 4), t.ppf(0.95, 4)  # Student t: the spread rests on 5 refits
    assert wide.ci_low == pytest.approx(0.5 - np.hypot(0.1, q * 0.03))
    assert wide.ci_high == pytest.approx(0.5 + np.hypot(0.2, q * 0.03))
    assert wide.lower_bound_95 == pytest.approx(0.5 - np.hypot(0.05, q_one * 0.03))
    assert wide.bca_low is None and wide.bca_high == pytest.approx(0.5 + np.hypot(0.25, q * 0.03))


def test_bca_survives_returns_near_the_smallest_float() -> None:
    """Hypothesis found this: jackknife spread**1.5 underflowed to 0 and BCa asked for NaN quantiles."""
    from dosewise.models.ope.bootstrap import bca_interval

    replicates = np.array([0.0, 2.2e-108, 4.4e-108, 6.7e-108])
    jackknife = np.array([2.2e-108, 3.3e-108, 3.3e-108])
    pair = bca_interval(replicates, 4.4e-108, jackknife, 0.95)
    assert pair is not None and 0.0 <= pair[0] <= pair[1] <= 6.7e-108


def test_refit_spread_is_not_blown_up_by_one_divergent_refit() -> None:
    from dosewise.models.ope.bootstrap import refit_spread

    calm = [0.78, 0.80, 0.79, 0.81, 0.80]
    assert refit_spread(calm) == pytest.approx(1.4826 * 0.01)
    diverged = [*calm[:-1], 250.0]  # one refit's Q-function blew up
    assert refit_spread(diverged) < 0.05 < float(np.std(diverged, ddof=1))


def test_refits_widen_with_student_t_and_need_two() -> None:
    from dosewise.models.ope.bootstrap import BootstrapResult, widen_for_refits

    base = BootstrapResult(value=0.8, replicates=np.array([0.7, 0.9]), ci_low=0.75, ci_high=0.85,
                           lower_bound_95=0.76, bca_low=None, bca_high=None)
    few, many = widen_for_refits(base, 0.02, 0.95, 3), widen_for_refits(base, 0.02, 0.95, 200)
    assert few.ci_high - few.ci_low > many.ci_high - many.ci_low > base.ci_high - base.ci_low
    assert many.ci_high == pytest.approx(0.8 + np.hypot(0.05, 1.972 * 0.02), abs=1e-3)
    with pytest.raises(ValueError, match="at least 2"):
        widen_for_refits(base, 0.02, 0.95, 1)


def test_shipped_ope_config_refits_fqe_by_default() -> None:
    from dosewise.data_schemas import load_config
    from dosewise.models import OpeConfig, config_folder

    assert load_config("ope_default", OpeConfig, [], search=[config_folder()]).fqe.bootstrap_refits >= 5
    assert OpeConfig().fqe.bootstrap_refits >= 5
