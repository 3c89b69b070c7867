"""No raw patient identifier leaves the pipeline unless configured: quarantine keys, messages, salt."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import ConfigError, RunManifest, load_config
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline
from dosewise.pipelines.privacy import pseudonymize_ids, salt_fingerprint

pytestmark = pytest.mark.slow

SALT = "identifiers-test-salt"


def _config(*overrides: str) -> SepsisPipelineConfig:
    return load_config("sepsis_mimic3", SepsisPipelineConfig, [f"output.id_salt={SALT}", *overrides],
                       search=[config_folder()])


def _raw_ids(source: Path) -> set[str]:
    stays = pd.read_csv(source / "ICUSTAYS.csv.gz")
    return {str(v) for col in ("icustay_id", "subject_id", "hadm_id") for v in stays[col]}


def _quarantine(out: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((out / "quarantine").glob("*.parquet"))],
                     ignore_index=True)


@pytest.fixture(scope="module")
def demo_run(mimic3_demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ids") / "out"
    run_sepsis_pipeline(_config(), mimic3_demo_dir, out, show_progress=False)
    return out


def test_quarantine_uses_the_trajectories_pseudonyms(demo_run: Path, mimic3_demo_dir: Path) -> None:
    q = _quarantine(demo_run)
    cohort_q = pd.read_parquet(demo_run / "quarantine" / "cohort.parquet")
    funnel = {f.rule: f.remaining for f in RunManifest.read(demo_run).funnel}
    n_stays = len(pd.read_csv(mimic3_demo_dir / "ICUSTAYS.csv.gz"))
    assert len(cohort_q) == n_stays - funnel["window_nonempty"] > 50  # every excluded stay, no raw id
    raw = _raw_ids(mimic3_demo_dir)
    tokens = {t for text in pd.concat([q["row_key"], q["failure_case"].dropna()])
              for t in re.split(r"[=|]", text)}
    # a row with no stay at all (an event charted in error outside any stay) is `stay_id=NULL`,
    # which names no one; any other `stay_id=` would be a raw id
    assert not q["row_key"].str.contains(r"stay_id=(?!NULL\b)", regex=True).any()
    assert not tokens & raw, sorted(tokens & raw)[:5]
    # every stay is named by the same pseudonym as in the trajectories (or would be, if excluded)
    stays = pd.read_csv(mimic3_demo_dir / "ICUSTAYS.csv.gz")["icustay_id"]
    assert set(cohort_q["row_key"]) <= {f"episode_id={e}" for e in pseudonymize_ids(stays, SALT)}
    traj = pd.read_parquet(demo_run / "trajectories.parquet")
    states_q = pd.read_parquet(demo_run / "quarantine" / "states.parquet")
    named = {k.split("|")[0].removeprefix("episode_id=") for k in q["row_key"]} - {"stay_id=NULL"}
    in_windows = {k.split("|")[0].removeprefix("episode_id=")
                  for name in ("measurements", "doses")
                  for k in pd.read_parquet(demo_run / "quarantine" / f"{name}.parquet")["row_key"]}
    states_eps = {k.split("|")[0].removeprefix("episode_id=") for k in states_q["row_key"]}
    assert in_windows and in_windows <= set(traj["episode_id"]) | states_eps
    assert all(n.startswith("ep_") for n in named)


def test_raw_keys_only_when_configured(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    run_sepsis_pipeline(_config("output.pseudonymize_ids=false"), mimic3_demo_dir, tmp_path / "o",
                        show_progress=False)
    keys = pd.read_parquet(tmp_path / "o" / "quarantine" / "cohort.parquet")["row_key"]
    assert keys.str.fullmatch(r"stay_id=\d+").all()


def _corrupt_chartevents(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    path = dest / "CHARTEVENTS.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    cells = lines[5].split(",")
    cells[5] = "2101-13-45 99:00:00"  # CHARTTIME: not a timestamp
    lines[5] = ",".join(cells)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(lines)
    return dest, lines[5]


def test_read_errors_name_file_line_and_column_never_values(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source, bad_line = _corrupt_chartevents(mimic3_demo_dir, tmp_path / "src")
    base = ["etl", "sepsis", "--source", str(source), "--config", "sepsis_mimic3",
            "--set", f"output.id_salt={SALT}"]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o")], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "CHARTEVENTS.csv.gz" in text and "charttime" in text.lower() and re.search(r"line \d+", text)
    ids = [c for c in bad_line.split(",")[:4] if c.strip().isdigit()]
    assert ids and not any(re.search(rf"\b{i}\b", text) for i in ids), text
    assert "Original Line" not in text and "2101-13-45" not in text
    debug = CliRunner().invoke(app, ["--debug", *base, "--out", str(tmp_path / "o2")],
                               env={"COLUMNS": "1000"})
    assert debug.exit_code == 2 and "may contain patient data" in debug.output


def test_salt_shorter_than_16_is_refused(tmp_path: Path, mimic3_demo_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"at least 16 characters\. Got 9 characters"):
        run_sepsis_pipeline(_config("output.id_salt=short-one"), mimic3_demo_dir, tmp_path / "o",
                            show_progress=False)


def test_salt_fingerprint_recorded_and_a_changed_salt_is_named(
    demo_run: Path, mimic3_demo_dir: Path, tmp_path: Path
) -> None:
    manifest = RunManifest.read(demo_run)
    assert manifest.extra["id_salt_fingerprint"] == salt_fingerprint(SALT)
    assert SALT not in (demo_run / "manifest.json").read_text()
    out = tmp_path / "o"
    shutil.copytree(demo_run, out)
    other = "another-salt-of-enough-length"
    again = run_sepsis_pipeline(_config(f"output.id_salt={other}"), mimic3_demo_dir, out, show_progress=False)
    warning = " ".join(again.extra["warnings"])
    assert salt_fingerprint(SALT) in warning and salt_fingerprint(other) in warning
    assert "splits" in warning


def test_duplicate_stay_failure_prints_no_stay_id(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(mimic3_demo_dir, source)
    path = source / "ICUSTAYS.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines([*lines, lines[3]])
    result = CliRunner().invoke(app, ["etl", "sepsis", "--source", str(source), "--config", "sepsis_mimic3",
                                      "--out", str(tmp_path / "o"), "--set", f"output.id_salt={SALT}"],
                           env={"COLUMNS": "1000"})
    assert result.exit_code != 0
    dup = lines[3].split(",")
    assert not any(re.search(rf"\b{v}\b", result.output) for v in dup[1:4]), result.output
