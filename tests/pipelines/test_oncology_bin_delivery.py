"""`BinDeliveredAsClinicians`: a bin choice delivered as the clinicians deliver an RDI in that bin,
the simulator's truth for discrete-action OPE on the RDI bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import BadInputError
from dosewise.pipelines import (
    BinDeliveredAsClinicians,
    ClinicianPolicy,
    ConstantPolicy,
    compare_policies,
)
from dosewise.pipelines.simulators.oncology_policy import option_rdi, rdi_bin_probabilities

EDGES = (0.0, 0.55, 0.7, 0.9)


def _states(n: int, cycle: int, prev_dose: float, anc: float, prev_neutropenia: int = 0) -> pd.DataFrame:
    """`n` copies of one state, with the columns the clinicians' table reads."""
    zeros = np.zeros(n, dtype=int)
    return pd.DataFrame({
        "cycle_number": np.full(n, cycle), "prev_dose_fraction": prev_dose, "anc_1e9_per_l": anc,
        "prev_grade_neutropenia": prev_neutropenia, "prev_febrile_neutropenia": zeros,
        "prev_grade_thrombocytopenia": zeros, "prev_grade_diarrhoea": zeros, "prev_grade_mucositis": zeros,
        "prev_grade_neuropathy": zeros,
    })


def _clinicians_bins(clinicians: ClinicianPolicy):  # type: ignore[no-untyped-def]
    """The clinicians' own probability of each RDI bin (what the ETL logs as behaviour_prob)."""
    def probs(states: pd.DataFrame) -> np.ndarray:
        return rdi_bin_probabilities(clinicians.option_probabilities(states), option_rdi(21.0),
                                     clinicians.dose_noise_sd, list(EDGES))
    return probs


def _always(bin_index: int):  # type: ignore[no-untyped-def]
    def probs(states: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(states), len(EDGES) + 1))
        out[:, bin_index] = 1.0
        return out
    return probs


def _rdi(decision) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(decision.dose_fraction * 21.0 / (21.0 + decision.delay_days))


@pytest.mark.parametrize(("cycle", "prev_dose", "anc", "prev_neutropenia"),
                         [(1, 1.0, 3.0, 0), (3, 1.0, 1.2, 0), (4, 0.8, 0.8, 4)])
def test_the_clinicians_bins_wrapped_give_the_clinicians_doses_and_delays(
        cycle: int, prev_dose: float, anc: float, prev_neutropenia: int) -> None:
    n, clinicians = 40_000, ClinicianPolicy()
    states = _states(n, cycle, prev_dose, anc, prev_neutropenia)
    wrapped = BinDeliveredAsClinicians(_clinicians_bins(clinicians), EDGES)
    own, via_bins = clinicians(states, np.random.default_rng(1)), wrapped(states, np.random.default_rng(2))
    grid = np.linspace(0.3, 1.2, 19)
    for a, b in [(np.histogram(_rdi(own), grid)[0], np.histogram(_rdi(via_bins), grid)[0]),
                 (np.bincount(own.delay_days.astype(int), minlength=15),
                  np.bincount(via_bins.delay_days.astype(int), minlength=15))]:
        assert np.abs(a / n - b / n).max() < 0.012, (a / n, b / n)


def test_every_dose_lands_in_its_bin_and_bin_zero_holds() -> None:
    parts = [_states(3000, 1, 1.0, 3.0), _states(3000, 3, 1.0, 1.2), _states(3000, 4, 0.8, 0.8, 4)]
    states = pd.concat(parts, ignore_index=True)
    bounds = [*EDGES, np.inf]
    for b in range(1, len(EDGES) + 1):
        decision = BinDeliveredAsClinicians(_always(b), EDGES)(states, np.random.default_rng(b))
        rdi = _rdi(decision)
        assert ((rdi > bounds[b - 1]) & (rdi <= bounds[b])).all(), b
    held = BinDeliveredAsClinicians(_always(0), EDGES)(states, np.random.default_rng(0))
    assert (held.dose_fraction == 0).all() and (held.delay_days == 0).all()


def test_a_mixed_choice_holds_some_and_doses_the_others_in_their_bins() -> None:
    # an epsilon-greedy policy: mostly bin 3, a little mass on every bin, hold (bin 0) included
    def softened(states: pd.DataFrame) -> np.ndarray:
        out = np.full((len(states), len(EDGES) + 1), 0.05)
        out[:, 3] = 0.8
        return out

    states = _states(20_000, 3, 1.0, 1.2)
    decision = BinDeliveredAsClinicians(softened, EDGES)(states, np.random.default_rng(4))
    rdi = _rdi(decision)
    held = decision.dose_fraction == 0
    assert abs(held.mean() - 0.05) < 0.01 and (decision.delay_days[held] == 0).all()
    shares = np.bincount(np.searchsorted(EDGES, rdi, side="left"), minlength=5) / len(rdi)
    assert np.allclose(shares, [0.05, 0.05, 0.05, 0.8, 0.05], atol=0.01), shares


def test_a_bin_with_one_option_gives_that_option() -> None:
    # with (almost) no dose noise only full dose on time has RDI above 0.9, in every state
    clinicians = ClinicianPolicy(dose_noise_sd=1e-6)
    states = pd.concat([_states(500, 1, 1.0, 3.0), _states(500, 4, 0.8, 0.8, 4)], ignore_index=True)
    decision = BinDeliveredAsClinicians(_always(4), EDGES, clinicians)(states, np.random.default_rng(3))
    assert np.allclose(decision.dose_fraction, 1.0, atol=1e-4) and (decision.delay_days == 0).all()
    # ... and the top bin of the real clinicians is, in value, always full dose (within MC error)
    top = BinDeliveredAsClinicians(_always(4), EDGES)
    table = compare_policies({"full": ConstantPolicy(1.0), "top bin": top}, n_patients=3000, seed=11)
    table = table.set_index("policy")
    row = table.loc["top bin"]
    assert abs(row["difference"]) < 4 * row["difference_se"] + 1e-9


def test_the_clinicians_bins_wrapped_reproduce_the_clinicians_value() -> None:
    clinicians = ClinicianPolicy()
    table = compare_policies(
        {"clinicians": clinicians,
         "their bins": BinDeliveredAsClinicians(_clinicians_bins(clinicians), EDGES),
         "bin (0.55, 0.7]": BinDeliveredAsClinicians(_always(2), EDGES)},
        n_patients=4000, seed=12).set_index("policy")
    same, lower = table.loc["their bins"], table.loc["bin (0.55, 0.7]"]
    assert abs(same["difference"]) < 4 * same["difference_se"]
    assert lower["difference"] < -4 * lower["difference_se"]  # the check can tell a different policy


def test_bad_bin_probabilities_and_edges_are_refused() -> None:
    states = _states(5, 2, 1.0, 3.0)
    with pytest.raises(BadInputError, match="probabilities"):
        BinDeliveredAsClinicians(lambda s: np.ones((len(s), 3)), EDGES)(states, np.random.default_rng(0))
    with pytest.raises(BadInputError, match="sum to 1"):
        BinDeliveredAsClinicians(lambda s: np.ones((len(s), 5)), EDGES)(states, np.random.default_rng(0))
    with pytest.raises(BadInputError, match="start at 0"):
        BinDeliveredAsClinicians(_always(1), (0.1, 0.5))
