"""Invariants every sepsis ETL output folder must satisfy (shared by the MIMIC-III and MIMIC-IV tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dosewise.data_schemas import MANIFEST_NAME, QuarantineSchema, RunManifest, read_trajectories, sha256_file
from dosewise.data_schemas import columns as c
from dosewise.pipelines.sepsis.actions import discretize_doses


def check_sepsis_output(out: Path) -> tuple[pd.DataFrame, RunManifest]:
    """Assert the contract and the ETL invariants on a finished output folder; return frame and manifest."""
    traj, manifest = read_trajectories(out)  # validates one row per episode x step, contiguous steps, ends
    info = manifest.dataset
    assert info is not None and len(info.state_columns) >= 40
    assert not traj.duplicated([c.EPISODE_ID, c.STEP]).any()
    assert traj[c.EPISODE_ID].nunique() == manifest.extra["n_episodes"] > 0
    # actions inside their bins
    fluid_col, vaso_col = info.continuous_action_columns
    fluid_bin = discretize_doses(traj[fluid_col], info.action_bin_edges[fluid_col])
    vaso_bin = discretize_doses(traj[vaso_col], info.action_bin_edges[vaso_col])
    assert np.array_equal(traj[c.ACTION].to_numpy(), fluid_bin * info.action_grid[1] + vaso_bin)
    assert traj[c.ACTION].between(0, info.n_actions - 1).all()
    # rows in = rows out + quarantined at every stage that keeps its grain
    for stage in manifest.stages:
        if not stage.note.startswith("grain"):
            assert stage.rows_in == stage.rows_out + stage.rows_quarantined, stage
        assert (
            sum(v for k, v in stage.quarantined_by_rule.items() if not k.endswith("_clipped"))
            == stage.rows_quarantined
        ), stage
    # quarantine files hold exactly the counted rows, with rule and reason
    for stage in manifest.stages:
        path = out / "quarantine" / f"{stage.name}.parquet"
        if path.exists():
            q = QuarantineSchema.validate(pd.read_parquet(path))
            assert len(q) == sum(stage.quarantined_by_rule.values()), stage.name
    # fluid volume conserved across binning
    assert manifest.extra["fluid_ml_binned"] == pytest_approx(manifest.extra["fluid_ml_in_window_kept"])
    # cohort, splits, manifest last and complete
    cohort = pd.read_parquet(out / "cohort.parquet")
    assert cohort[c.EPISODE_ID].is_unique and set(cohort[c.EPISODE_ID]) == set(traj[c.EPISODE_ID])
    assert set(traj[c.SPLIT]) <= {"train", "validation", "test"}
    manifest_mtime = (out / MANIFEST_NAME).stat().st_mtime_ns
    for rel, digest in manifest.outputs.items():
        assert (out / rel).stat().st_mtime_ns <= manifest_mtime
        assert sha256_file(out / rel) == digest
    funnel = [f.remaining for f in manifest.funnel]
    assert funnel == sorted(funnel, reverse=True) and funnel[-1] == manifest.extra["n_episodes"]
    return traj, manifest


def pytest_approx(value: float) -> object:
    import pytest

    return pytest.approx(value, rel=1e-9, abs=0.01)
