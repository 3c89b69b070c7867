"""Property: when the target policy is the behaviour policy, every importance-sampling estimator
is the on-policy mean return (all weights are 1), for any episodes and rewards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dosewise.models.ope.bootstrap import bootstrap_intervals
from dosewise.models.ope.diagnostics import kish_ess
from dosewise.models.ope.importance_sampling import (
    importance_weights,
    is_terms,
    pdis_terms,
    pdwis_terms,
    wis_terms,
)


@st.composite
def episodes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 30))
    horizon = draw(st.integers(1, 8))
    lengths = draw(arrays(np.int64, n, elements=st.integers(1, horizon)))
    mask = np.arange(horizon)[None, :] < lengths[:, None]
    probs = draw(arrays(np.float64, (n, horizon), elements=st.floats(0.01, 1.0)))
    rewards = draw(arrays(np.float64, (n, horizon), elements=st.floats(-10, 10)))
    return mask, np.where(mask, probs, 1.0), np.where(mask, rewards, 0.0)


@settings(max_examples=60, deadline=None)
@given(episodes(), st.sampled_from([1.0, 0.95]))
def test_target_equal_behaviour_gives_the_on_policy_mean(data, gamma: float) -> None:
    mask, probs, rewards = data
    weights = importance_weights(probs, probs, mask)
    on_policy = float(np.mean(rewards @ gamma ** np.arange(rewards.shape[1])))
    for make in (is_terms, wis_terms, pdis_terms, pdwis_terms):
        assert make(weights, rewards, gamma).value() == pytest.approx(on_policy, abs=1e-9)
    assert kish_ess(weights.trajectory) == pytest.approx(mask.shape[0])


@settings(max_examples=20, deadline=None)
@given(episodes())
def test_bootstrap_of_the_on_policy_mean_brackets_it(data) -> None:
    mask, probs, rewards = data
    terms = {"IS": is_terms(importance_weights(probs, probs, mask), rewards, 1.0)}
    res = bootstrap_intervals(terms, n_resamples=50, seed=0)["IS"]
    returns = rewards.sum(axis=1)
    assert returns.min() - 1e-9 <= res.ci_low <= res.ci_high <= returns.max() + 1e-9
