"""The whole sepsis ETL on the real MIMIC-III demo (CareVue and MetaVision), checked by invariants."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import MANIFEST_NAME, RunManifest, load_config
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline

from .sepsis_invariants import check_sepsis_output

pytestmark = pytest.mark.slow


def _config(*overrides: str) -> SepsisPipelineConfig:
    return load_config(
        "sepsis_mimic3",
        SepsisPipelineConfig,
        ["output.id_salt=test-salt-0123456789", *overrides],
        search=[config_folder()],
    )


@pytest.fixture(scope="module")
def demo_out(mimic3_demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_etl")
    run_sepsis_pipeline(_config(), mimic3_demo_dir, out, show_progress=False)
    return out


def test_demo_invariants(demo_out: Path) -> None:
    traj, manifest = check_sepsis_output(demo_out)
    assert manifest.extra["source_version"] == "mimic_iii"
    assert set(manifest.extra["care_systems"]["cohort"]) == {"carevue", "metavision"}
    assert traj["episode_id"].str.startswith("ep_").all()  # pseudonymised
    cohort = pd.read_parquet(demo_out / "cohort.parquet")
    assert "stay_id" not in cohort and "subject_id" not in cohort
    assert manifest.config["output"]["id_salt"] == "<redacted>"
    assert any(k.startswith("rules/") for k in manifest.inputs)
    assert (traj["fluid_ml_4h"] > 0).any() and (traj["norepi_eq_mcg_kg_min"] > 0).any()
    assert traj["terminal"].any() and traj["timeout"].any()


def test_event_flags_and_shifted_ages_are_counted_as_mimic_code_reads_them(
    demo_out: Path, mimic3_demo_dir: Path
) -> None:
    """error = 1 chart rows and Rewritten inputs are excluded and quarantined, one row per raw row;
    shifted ages get the documented median, and the manifest says for how many stays."""
    from dosewise.pipelines.sources.duckdb_catalog import load_rules

    rules = load_rules()
    items = rules["item_map"]
    iii = items["versions"].isin(["both", "iii"])
    chart_items = set(items.loc[(items["source_table"] == "chartevents") & iii, "itemid"])
    chart = pd.read_csv(mimic3_demo_dir / "CHARTEVENTS.csv.gz", usecols=["itemid", "error"])
    inputs = pd.read_csv(mimic3_demo_dir / "INPUTEVENTS_MV.csv.gz", usecols=["itemid", "statusdescription"])
    read = set(rules["fluid_items"]["itemid"]) | set(rules["vasopressor_equivalents"]["itemid"])
    manifest = RunManifest.read(demo_out)
    linkage = {s.name: s.quarantined_by_rule for s in manifest.stages}["stay_linkage"]
    in_error = int((chart["itemid"].isin(chart_items) & (chart["error"] == 1)).sum())
    rewritten = int((inputs["itemid"].isin(read) & (inputs["statusdescription"] == "Rewritten")).sum())
    assert linkage["charted_in_error"] == in_error > 0 and linkage["rewritten"] == rewritten > 0
    q = pd.read_parquet(demo_out / "quarantine" / "stay_linkage.parquet")
    assert q.loc[q["rule"] == "charted_in_error", "reason"].str.startswith("charted in error").all()
    stays = pd.read_csv(mimic3_demo_dir / "ICUSTAYS.csv.gz", parse_dates=["intime"])
    dob = pd.read_csv(mimic3_demo_dir / "PATIENTS.csv.gz", parse_dates=["dob"]).set_index("subject_id")["dob"]
    years = (stays["intime"].dt.year - dob.reindex(stays["subject_id"]).dt.year.to_numpy())
    shifted = manifest.extra["mimic_iii_shifted_ages"]
    assert shifted["stays"] == int((years >= 299).sum()) > 0 and "91.4" in shifted["action"]
    cohort = pd.read_parquet(demo_out / "cohort.parquet")
    assert int((cohort["age_years"] == 91.4).sum()) == shifted["episodes"] > 0
    assert cohort["age_years"].max() <= 120


def test_same_config_and_seed_give_identical_trajectories(
    demo_out: Path, mimic3_demo_dir: Path, tmp_path: Path
) -> None:
    run_sepsis_pipeline(_config(), mimic3_demo_dir, tmp_path, show_progress=False)
    for name in ("trajectories.parquet", "splits.parquet", "cohort.parquet"):
        assert (tmp_path / name).read_bytes() == (demo_out / name).read_bytes(), name


def test_crash_mid_write_keeps_the_earlier_run(
    demo_out: Path, mimic3_demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dosewise.pipelines.sepsis.stage_runs as pipeline

    out = tmp_path / "out"
    run_sepsis_pipeline(_config(), mimic3_demo_dir, out, show_progress=False)
    before = (out / MANIFEST_NAME).read_bytes()
    real = pipeline.write_table_atomic

    def crash(frame: pd.DataFrame, path: Path) -> Path:
        if Path(path).name == "cohort.parquet":
            raise OSError("disk full")
        return real(frame, path)

    monkeypatch.setattr(pipeline, "write_table_atomic", crash)
    with pytest.raises(OSError, match="disk full"):
        run_sepsis_pipeline(_config("seed=9"), mimic3_demo_dir, out, show_progress=False)
    assert (out / MANIFEST_NAME).read_bytes() == before  # the earlier complete run, untouched
    RunManifest.read(out).verify_outputs(out)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder or temp file left


def test_bin_hours_and_shaping_are_configurable(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    cfg = _config("binning.bin_hours=2", "reward.intermediate_shaping=true", "output.pseudonymize_ids=false")
    manifest = run_sepsis_pipeline(cfg, mimic3_demo_dir, tmp_path, show_progress=False)
    traj, _ = check_sepsis_output(tmp_path)
    assert manifest.dataset is not None and manifest.dataset.bin_hours == 2
    assert "fluid_ml_2h" in traj and traj["episode_id"].str.startswith("stay_").all()
    assert (traj.loc[~(traj["terminal"] | traj["timeout"]), "reward"] != 0).any()


def test_cli_summary_and_keep_concepts(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "etl",
            "sepsis",
            "--source",
            str(mimic3_demo_dir),
            "--out",
            str(tmp_path),
            "--config",
            "sepsis_mimic3",
            "--set",
            "output.id_salt=x-salt-of-16-chars",
            "--keep-concepts",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cohort (episodes)" in result.output and "Inclusion funnel" in result.output
    assert (tmp_path / "concepts" / "sofa.parquet").exists() and (tmp_path / MANIFEST_NAME).exists()
    sofa = pd.read_parquet(tmp_path / "concepts" / "sofa.parquet")
    assert not sofa.duplicated(["stay_id", "hr"]).any()


def test_fluid_action_is_tonicity_adjusted_and_the_raw_volume_is_kept(demo_out: Path) -> None:
    traj, manifest = check_sepsis_output(demo_out)
    assert manifest.config["doses"]["tonicity_adjusted"] is True  # the AI Clinician convention by default
    assert "tonicity-adjusted" in manifest.extra["fluid_action"]
    adjusted, raw = traj["fluid_ml_4h"], traj["fluid_raw_ml_4h"]
    assert (raw >= 0).all() and raw.sum() > adjusted.sum() > 0  # free water (D5W, sterile water) counts 0
    assert ((raw - adjusted) > 1).mean() > 0.05  # many bins hold hypotonic fluid
