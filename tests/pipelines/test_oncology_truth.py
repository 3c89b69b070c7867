"""The oncology simulator's Monte-Carlo truth: reproducible, common random numbers, exact propensities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dosewise.pipelines import (
    ClinicianPolicy,
    ConstantPolicy,
    compare_policies,
    simulate_cohort,
    true_policy_value,
)
from dosewise.pipelines.simulators.oncology_policy import OPTIONS, option_rdi, rdi_bin_probabilities
from dosewise.pipelines.simulators.oncology_zhao import zhao_policy_value


def test_same_seed_same_value_and_a_standard_error() -> None:
    a = true_policy_value(ConstantPolicy(1.0), n_patients=600, seed=5)
    b = true_policy_value(ConstantPolicy(1.0), n_patients=600, seed=5)
    assert a.value == b.value and 0 < a.se < 0.1
    lo, hi = a.interval()
    assert lo < a.value < hi


def test_common_random_numbers_shrink_the_paired_error() -> None:
    table = compare_policies(
        {"full": ConstantPolicy(1.0), "reduced": ConstantPolicy(0.6)}, n_patients=800, seed=2
    )
    row = table.set_index("policy").loc["reduced"]
    assert row["difference_se"] < 0.7 * row["se"]
    assert row["difference"] < 0  # 60 % of the dose shrinks tumours less: a lower value


def test_logged_bins_follow_the_known_propensities() -> None:
    cohort = simulate_cohort(ClinicianPolicy(), 1500, seed=4)
    cols = [f"p_option_{i}" for i in range(len(OPTIONS))]
    edges = [0.0, 0.55, 0.7, 0.9]
    probs = rdi_bin_probabilities(cohort.cycles[cols].to_numpy(), option_rdi(21.0), 0.03, edges)
    assert np.allclose(probs.sum(axis=1), 1.0)
    cyc = cohort.cycles
    rdi = cyc["dose_fraction"] * 21 / (21 + cyc["delay_days"])
    observed = pd.Series(np.searchsorted(edges, rdi, side="left")).value_counts(normalize=True).sort_index()
    expected = pd.Series(probs.mean(axis=0))
    for b, share in observed.items():
        assert abs(share - expected[b]) < 0.03, (b, share, expected[b])


def test_zhao_2009_no_treatment_is_far_worse_than_treating() -> None:
    none = zhao_policy_value(lambda s, rng: np.zeros(len(s)), n=3000, seed=1)
    high = zhao_policy_value(lambda s, rng: np.full(len(s), 0.75), n=3000, seed=1)
    assert none.se > 0 and high.se > 0
    assert high.value - none.value > 10 * (high.se + none.se)  # untreated tumours grow and kill
