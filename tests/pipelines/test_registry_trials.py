"""Real trial records through the flat registry mapping: NCCTG colon (one randomised decision) and the
AML myeloid trial (randomised arm, then transplant or not), from ../shared/data/r-clinical-datasets.

Colon: "always arm k" off-policy (WIS with the known 1/3 propensity) must agree with the arm's
Kaplan-Meier 5-year recurrence-free survival on the same split, and the fitted behaviour model must
recover 1/3 for every arm, each within its interval.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import BadInputError, RunManifest, load_config, read_trajectories
from dosewise.data_schemas import columns as c
from dosewise.models import config_folder as model_configs
from dosewise.models.constant_policy import constant_policy
from dosewise.models.ope.config import OpeConfig
from dosewise.models.ope.report import evaluate_policy
from dosewise.pipelines import ChemoPipelineConfig, config_folder, run_chemo_pipeline
from dosewise.pipelines.chemo.censoring import ipcw_outcome, kaplan_meier_at

SALT = ["output.id_salt=test-salt-0123456789abcdef"]


def _etl(source: Path, name: str, out: Path) -> RunManifest:
    cfg = load_config(name, ChemoPipelineConfig, SALT, search=[config_folder()])
    return run_chemo_pipeline(cfg, source, out, show_progress=False)


@pytest.fixture(scope="module")
def colon(trials_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunManifest]:
    out = tmp_path_factory.mktemp("colon") / "traj"
    return out, _etl(trials_dir, "registry_colon", out)


def test_kaplan_meier_and_ipcw_match_hand_computation() -> None:
    # times 1, 2+, 3, 4+, 5: S(3) = (1 - 1/5) (1 - 1/3) = 0.5333; censoring G(3-) = 1 - 1/4 = 0.75
    time = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    event = np.array([True, False, True, False, True])
    km = kaplan_meier_at(time, event, 3.0)
    assert km.survival == pytest.approx(0.8 * (2 / 3)) and km.ci_low < km.survival < km.ci_high
    reward, known, g = ipcw_outcome(time, event, 3.0, np.zeros(5, np.int64))
    assert g == {"0": pytest.approx(0.75)} and known.tolist() == [True, False, True, True, True]
    assert reward.mean() == pytest.approx(km.survival)  # IPCW mean = Kaplan-Meier (Satten & Datta 2001)


def test_colon_is_one_randomised_decision(colon: tuple[Path, RunManifest]) -> None:
    out, manifest = colon
    frame, read_back = read_trajectories(out)
    info = read_back.dataset
    assert info is not None and info.action_labels == ["Obs", "Lev", "Lev+5FU"] and info.has_behaviour_prob
    assert len(frame) == frame[c.EPISODE_ID].nunique() == 929 and frame[c.TERMINAL].all()
    assert np.allclose(frame[c.BEHAVIOUR_PROB], 1 / 3)
    assert constant_policy("constant:Lev+5FU", info).recommend(frame.head(2)).tolist() == [2, 2]
    with pytest.raises(BadInputError, match=r"or a label: Obs, Lev, Lev\+5FU\. Got 'Placebo'"):
        constant_policy("constant:Placebo", info)
    assert frame[c.ACTION].value_counts().sort_index().tolist() == [315, 310, 304]
    for stage in manifest.stages:
        assert stage.rows_in == stage.rows_out + stage.rows_quarantined, stage.name
    observed, ipcw = manifest.extra["observed_by_arm"]["all"], manifest.extra["ipcw_mean_by_arm"]
    for arm in info.action_labels:  # G within each arm: the IPCW arm mean is the arm's Kaplan-Meier
        assert ipcw[arm] == pytest.approx(observed[arm]["km"], abs=1e-9)
    assert (
        observed["Lev+5FU"]["ci_low"] > observed["Obs"]["ci_high"]
    )  # Moertel 1990: Lev+5FU lowers recurrence


def test_colon_always_arm_agrees_with_kaplan_meier(colon: tuple[Path, RunManifest], tmp_path: Path) -> None:
    out, manifest = colon
    observed = manifest.extra["observed_by_arm"]["test"]
    overrides = ['estimators=["IS","WIS"]', "fqe.enabled=false", "n_bootstrap=500", "bca=false"]
    _, read_back = read_trajectories(out)
    info = read_back.dataset
    assert info is not None
    for k, arm in enumerate(info.action_labels):
        refits = [f"behaviour.propensity_refits={40 if k == 0 else 0}"]
        config = load_config("ope_trial", OpeConfig, overrides + refits, search=[model_configs()])
        report = evaluate_policy(
            out,
            constant_policy(f"constant:{arm}", info),
            config,
            split="test",
            out_dir=tmp_path / arm,
            show_progress=False,
        )
        wis = next(e for e in report.estimates if e.estimator == "WIS" and e.target != "clinicians")
        km = observed[arm]
        assert wis.ci_low <= km["km"] <= wis.ci_high, (arm, wis, km)
        assert km["ci_low"] <= wis.value <= km["ci_high"], (arm, wis, km)
        if k == 0:
            by_action = report.behaviour.by_action
            assert report.behaviour.source == "logged_behaviour_prob" and len(by_action) == 3
            for row in by_action:
                assert row.known == pytest.approx(1 / 3)
                assert row.ci_low is not None and row.ci_high is not None
                assert row.ci_low <= 1 / 3 <= row.ci_high, row
                assert row.ci_low <= row.fitted <= row.ci_high, row


def _colon_subset(
    trials_dir: Path, tmp: Path, change: dict[str, object] | None = None, drop: str | None = None
) -> Path:
    src = tmp / "src"
    src.mkdir()
    raw = pd.read_csv(trials_dir / "survival_colon.csv.gz").head(60)
    if change:
        raw.loc[raw.index[:2], list(change)] = list(change.values())
    if drop:
        raw = raw.drop(columns=drop)
    raw.to_csv(src / "survival_colon.csv.gz", index=False)
    return src


@pytest.mark.parametrize(
    ("change", "drop", "fragments"),
    [
        (None, "rx", ["no arm column", "`rx` renamed to `arm`", "Obs, Lev, Lev+5FU"]),
        (
            {"rx": "Placebo"},
            None,
            ["unknown arm value(s)", "'Placebo' (1 records)", "Known arms: Obs, Lev, Lev+5FU"],
        ),
    ],
)
def test_missing_or_unknown_arm_exits_2(
    trials_dir: Path, tmp_path: Path, change: dict[str, object] | None, drop: str | None, fragments: list[str]
) -> None:
    src = _colon_subset(trials_dir, tmp_path, change, drop)
    result = CliRunner().invoke(
        app,
        [
            "etl",
            "chemo",
            "--source",
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--config",
            "registry_colon",
            "--set",
            SALT[0],
        ],
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_repeated_pivot_key_is_quarantined(trials_dir: Path, tmp_path: Path) -> None:
    src = _colon_subset(trials_dir, tmp_path)
    raw = pd.read_csv(src / "survival_colon.csv.gz")
    pd.concat([raw, raw.iloc[[0]]]).to_csv(src / "survival_colon.csv.gz", index=False)
    manifest = _etl(src, "registry_colon", tmp_path / "out")
    sources = manifest.stages[0]
    assert sources.quarantined_by_rule == {"pivot_repeated_key": 3}  # both rows of the patient + the copy
    assert sources.rows_in == sources.rows_out + sources.rows_quarantined == 61
    assert manifest.extra["n_episodes"] == 29
    q = pd.read_parquet(tmp_path / "out" / "quarantine" / "sources.parquet")
    assert q["row_key"].str.startswith("episode_id=ep_").all()  # the patient by pseudonym, not raw id


def test_myeloid_two_stages_and_a_learned_second_stage(trials_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "traj"
    manifest = _etl(trials_dir, "registry_myeloid", out)
    frame, read_back = read_trajectories(out)
    info = read_back.dataset
    assert info is not None and not info.has_behaviour_prob and info.n_actions == 2
    assert manifest.extra["stage_action_labels"] == [["A", "B"], ["no_transplant", "transplant"]]
    second = frame[frame[c.STEP] == 1]
    assert set(second[c.ACTION]) == {0, 1} and len(second) == manifest.extra["n_episodes_by_steps"]["2"]
    cohort = pd.read_parquet(out / "cohort.parquet")
    transplanted = cohort["transplant_action"] == "transplant"
    assert transplanted.sum() == (second[c.ACTION] == 1).sum()
    assert (second["stage"] == 1).all() and (frame.loc[frame[c.STEP] == 0, "stage"] == 0).all()
    policy = tmp_path / "policy"
    result = CliRunner().invoke(
        app,
        [
            "--quiet",
            "train",
            "--trajectories",
            str(out),
            "--algo",
            "discrete_cql",
            "--steps",
            "200",
            "--device",
            "cpu",
            "--out",
            str(policy),
            "--no-track",
            "--set",
            "algorithm.gamma=1.0",
            "--set",
            "log_every=100",
            "--set",
            "mask.min_count=5",
        ],
    )
    assert result.exit_code == 0, result.output
    from dosewise.models.policy import load_policy

    learned = load_policy(policy)
    recommended = np.asarray(learned.recommend(second[learned.feature_names]))
    assert recommended.shape == (len(second),) and set(recommended) <= {0, 1}
    shutil.rmtree(policy)


def test_bad_records_are_quarantined_once_each(trials_dir: Path, tmp_path: Path) -> None:
    src = _colon_subset(trials_dir, tmp_path, {"age": -4, "sex": 7})  # one patient, two broken checks
    manifest = _etl(src, "registry_colon", tmp_path / "out")
    records = next(s for s in manifest.stages if s.name == "records")
    assert records.rows_in == records.rows_out + records.rows_quarantined and records.rows_quarantined == 1
    assert set(records.quarantined_by_rule) == {"age_years:in_range(0, 120)", "sex:isin(['M', 'F'])"}


def test_check_sources_names_the_trial_configs(trials_dir: Path) -> None:
    result = CliRunner().invoke(app, ["etl", "check-sources", "--source", str(trials_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["version"] == "trial"
    assert [t["table"] for t in report["tables"]] == ["registry_colon", "registry_myeloid"]
