"""`dosewise synth oncology` -> `dosewise etl chemo` on the registry format: contract, counts, dirt, truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import MANIFEST_NAME, RunManifest, read_trajectories
from dosewise.data_schemas import columns as c
from dosewise.models.datasets import load_training_data
from dosewise.pipelines import ChemoPipelineConfig, run_chemo_pipeline, write_synthetic_oncology
from dosewise.pipelines.chemo.states import STATE_COLUMNS


@pytest.fixture(scope="module")
def registry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, RunManifest]:
    root = tmp_path_factory.mktemp("chemo")
    write_synthetic_oncology(root / "raw", 400, seed=3, fmt="registry")
    cfg = ChemoPipelineConfig(output={"id_salt": "test-salt-0123456789"})
    manifest = run_chemo_pipeline(cfg, root / "raw", root / "traj", show_progress=False)
    return root / "raw", root / "traj", manifest


def test_output_follows_the_trajectory_contract(registry_run: tuple[Path, Path, RunManifest]) -> None:
    _, traj_dir, _manifest = registry_run
    frame, read_back = read_trajectories(traj_dir)
    info = read_back.dataset
    assert info is not None and info.state_columns == STATE_COLUMNS
    assert info.continuous_action_columns == [c.RDI_FRACTION] and info.n_actions == 5
    assert info.has_behaviour_prob and "febrile" in info.reward_description
    assert (traj_dir / MANIFEST_NAME).exists() and set(frame[c.SPLIT]) == {"train", "validation", "test"}
    assert frame[c.EPISODE_ID].str.startswith("ep_").all()  # pseudonymised, no raw ids
    discrete = load_training_data(traj_dir, split="train")
    continuous = load_training_data(traj_dir, split="train", action_space="continuous")
    assert discrete.action_size == 5 and continuous.action_size == 1
    assert np.abs(continuous.actions).max() <= 1.0


def test_rows_in_equal_rows_out_plus_quarantined(registry_run: tuple[Path, Path, RunManifest]) -> None:
    _, traj_dir, manifest = registry_run
    for stage in manifest.stages:
        assert stage.rows_in == stage.rows_out + stage.rows_quarantined, stage.name
    cycles = next(s for s in manifest.stages if s.name == "cycles")
    q = pd.read_parquet(traj_dir / "quarantine" / "cycles.parquet")
    assert len(q) == cycles.rows_quarantined and (q["reason"].str.len() > 0).all()


def test_planted_dirt_is_repaired(registry_run: tuple[Path, Path, RunManifest]) -> None:
    raw_dir, traj_dir, manifest = registry_run
    planted = pd.read_parquet(raw_dir / "truth" / "planted.parquet")
    counts = planted["dirt"].value_counts()
    assert manifest.stages[1].quarantined_by_rule.get("duplicate_row", 0) == counts["duplicate_row"]
    assert manifest.extra["bsa_derived_mosteller"] == counts["bsa_blank_derive_mosteller"]
    frame, _ = read_trajectories(traj_dir)
    assert frame["anc_1e9_per_l"].max() < 100  # cells/uL rows converted to 1e9/L
    assert frame["platelets_1e9_per_l"].max() < 2000
    assert manifest.extra["filled_values"]["anc_1e9_per_l"] == counts["missing_anc"]


def test_rdi_parts_and_known_propensities(registry_run: tuple[Path, Path, RunManifest]) -> None:
    _, traj_dir, _ = registry_run
    frame, _ = read_trajectories(traj_dir)
    first = frame[c.STEP] == 0
    assert (frame.loc[first, c.DELAY_DAYS] == 0).all()
    assert np.allclose(frame[c.RDI_FRACTION], frame[c.DOSE_FRACTION] * 21 / (21 + frame[c.DELAY_DAYS]))
    assert (frame[c.BEHAVIOUR_PROB] > 0).all() and (frame[c.BEHAVIOUR_DENSITY] > 0).all()
    # the table's own choice is logged most of the time: its probability is about 1 - deviation
    assert 0.5 < frame[c.BEHAVIOUR_PROB].median() <= 1.0


def test_omop_and_registry_give_the_same_trajectories(tmp_path: Path) -> None:
    cfg = ChemoPipelineConfig(output={"id_salt": "same-salt-0123456789"})
    frames = {}
    for fmt in ("registry", "omop"):
        write_synthetic_oncology(tmp_path / fmt, 300, seed=11, fmt=fmt, file_format="csv.gz")
        manifest = run_chemo_pipeline(cfg, tmp_path / fmt, tmp_path / f"traj_{fmt}", show_progress=False)
        assert manifest.extra["source_format"] == fmt
        for stage in manifest.stages:
            assert stage.rows_in == stage.rows_out + stage.rows_quarantined, (fmt, stage.name)
        frames[fmt] = pd.read_parquet(tmp_path / f"traj_{fmt}" / "trajectories.parquet")
    pd.testing.assert_frame_equal(frames["registry"], frames["omop"])


def test_ipcw_rewards_weight_by_the_censoring_kaplan_meier() -> None:
    """Hand-worked: horizon 100 d; B censored at 50 and D at 80, so G(60-) = 3/4 and G(100-) = 1/2."""
    from dosewise.pipelines.chemo.config import ChemoEpisodeConfig, ChemoRewardConfig
    from dosewise.pipelines.chemo.rewards import patient_outcomes, rewards_and_ends

    day = pd.Timestamp("2020-01-01")
    days = pd.to_timedelta
    patients = pd.DataFrame({
        "patient_id": list("ABCDE"),
        "first_cycle_date": day,
        "death_date": [pd.NaT, pd.NaT, day + days(30, "D"), pd.NaT, pd.NaT],
        "progression_date": pd.NaT,
        "last_followup_date": [day + days(n, "D") for n in (200, 50, 30, 80, 150)],
    })
    graded = ("thrombocytopenia", "neuropathy", "diarrhoea", "mucositis", "fatigue")
    cycles = pd.DataFrame({"patient_id": list("AABCDE"), "cycle_number": [1, 2, 1, 1, 1, 1],
                           "grade_febrile_neutropenia": 0, "action": 1,
                           **{f"grade_{k}": [0, 3, 0, 0, 0, 0] for k in graded}})
    decision_days = np.array([0.0, 60.0, 0.0, 0.0, 0.0, 0.0])
    ipcw = ChemoRewardConfig(horizon_days=100, censoring="ipcw_km", censoring_strata="none")
    outcomes = patient_outcomes(patients, ipcw)
    out = rewards_and_ends(cycles, outcomes, ipcw, ChemoEpisodeConfig(), decision_days)
    np.testing.assert_allclose(out["reward"], [0.0, 2.0 - 0.1 / 0.75, 0.0, 0.0, 0.0, 2.0])
    assert out["terminal"].tolist() == [False, True, True, True, True, True] and not out["timeout"].any()
    # the mean IPCW outcome reward is the Kaplan-Meier survival at the horizon (4/5: C died at 30)
    from dosewise.pipelines.chemo.censoring import kaplan_meier_at

    km = kaplan_meier_at(outcomes["endpoint_days"], outcomes["end_reason"] == "death", 100.0).survival
    assert abs(float((out["reward"] + np.r_[0, 0.1 / 0.75, 0, 0, 0, 0]).sum()) / 5 - km) < 1e-12
    # without IPCW a censored outcome is missing and the episode a timeout
    plain = rewards_and_ends(cycles, patient_outcomes(patients, ChemoRewardConfig(horizon_days=100)),
                             ChemoRewardConfig(horizon_days=100), ChemoEpisodeConfig(), decision_days)
    np.testing.assert_allclose(plain["reward"], [0.0, 0.9, 0.0, 0.0, 0.0, 1.0])
    assert plain["timeout"].tolist() == [False, False, True, False, True, False]


def test_censoring_curve_equals_the_one_point_reverse_kaplan_meier() -> None:
    from dosewise.pipelines.chemo.censoring import censoring_survival_before, censoring_survival_curve

    rng = np.random.default_rng(5)
    time, event = rng.integers(0, 60, 400).astype(float), rng.random(400) < 0.7
    curve = censoring_survival_curve(time, event)
    at = np.array([0.0, 0.5, 7.0, 30.0, 59.0, 61.0])
    np.testing.assert_allclose(curve(at), [censoring_survival_before(time, event, t) for t in at])


def test_ipcw_cycle_trajectories_end_terminal_and_reweight_outcomes(
    registry_run: tuple[Path, Path, RunManifest], tmp_path: Path
) -> None:
    raw, plain_dir, _ = registry_run
    cfg = ChemoPipelineConfig(output={"id_salt": "test-salt-0123456789"},
                              reward={"censoring": "ipcw_km", "censoring_strata": "none"})
    run_chemo_pipeline(cfg, raw, tmp_path / "ipcw", show_progress=False)
    plain, _ = read_trajectories(plain_dir)
    ipcw, manifest = read_trajectories(tmp_path / "ipcw")
    assert "IPCW" in manifest.dataset.reward_description
    last = ipcw.groupby(c.EPISODE_ID)[c.STEP].transform("max") == ipcw[c.STEP]
    assert ipcw.loc[last, c.TERMINAL].all() and not ipcw[c.TIMEOUT].any()
    lost = plain.loc[plain[c.TIMEOUT], c.EPISODE_ID]
    assert len(lost) > 0  # the simulator loses some patients to follow-up
    # the censored get no outcome; every observed success gets the same 1 / G(horizon-) > 1
    gain = ipcw.loc[last, c.REWARD].to_numpy() - plain.loc[last, c.REWARD].to_numpy()
    success = plain.loc[last, c.REWARD].to_numpy() > 0.5
    assert (gain[success] > 0).all() and np.ptp(gain[success]) < 0.05
    returns = [frame.groupby(c.EPISODE_ID)[c.REWARD].sum().mean() for frame in (ipcw, plain)]
    assert returns[0] > returns[1]
