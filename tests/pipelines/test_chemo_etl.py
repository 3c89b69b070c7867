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
