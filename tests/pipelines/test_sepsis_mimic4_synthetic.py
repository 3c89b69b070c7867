"""The sepsis ETL on synthetic MIMIC-IV (`dosewise synth icu`): the real MIMIC-IV reader, planted truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dosewise.data_schemas import load_config
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline
from dosewise.pipelines.simulators.synthetic_icu import write_synthetic_icu

from .sepsis_invariants import check_sepsis_output

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthetic_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth_mimic4")
    write_synthetic_icu(folder, 120, seed=3, show_progress=False)
    return folder


@pytest.mark.parametrize("file_format", ["csv.gz", "parquet"])
def test_mimic4_end_to_end_recovers_planted_sepsis(tmp_path: Path, file_format: str) -> None:
    source = tmp_path / "src"
    write_synthetic_icu(source, 120, seed=3, show_progress=False, file_format=file_format)
    cfg = load_config(
        "sepsis_mimic4", SepsisPipelineConfig, ["output.pseudonymize_ids=false"], search=[config_folder()]
    )
    out = tmp_path / "out"
    manifest = run_sepsis_pipeline(cfg, source, out, show_progress=False)
    traj, _ = check_sepsis_output(out)
    assert manifest.extra["source_version"] == "mimic_iv"
    truth_file = next((source / "truth").glob("stays.*"))
    truth = pd.read_parquet(truth_file) if truth_file.suffix == ".parquet" else pd.read_csv(truth_file)
    cohort = pd.read_parquet(out / "cohort.parquet")
    planted = truth[truth["planted_sepsis"] & ~truth["is_minor"] & ~truth["is_readmission"]]
    recovered = planted["stay_id"].isin(cohort["stay_id"]).mean()
    assert recovered >= 0.8, f"only {recovered:.0%} of planted Sepsis-3 stays found"
    never = truth[truth["case"].isin(["none", "other_shock"]) | truth["is_minor"]]
    assert not never["stay_id"].isin(cohort["stay_id"]).any()
    # the generator's unit quirks were converted: temperatures in C, weights in kg
    assert traj["temp_c"].between(30, 43).all() and traj["weight_kg"].between(20, 300).all()


def test_demo_config_on_synthetic(synthetic_source: Path, tmp_path: Path) -> None:
    cfg = load_config("demo", SepsisPipelineConfig, search=[config_folder()])
    manifest = run_sepsis_pipeline(cfg, synthetic_source, tmp_path, show_progress=False)
    traj, _ = check_sepsis_output(tmp_path)
    assert manifest.dataset is not None and manifest.dataset.n_actions == 25
    assert traj["action"].nunique() > 5
