"""Inputs that used to give wrong trajectories with exit 0 now stop with a clear error or a quarantine.

Each case alters a copy of the real MIMIC-III demo (or a builder folder) the way the issue found it.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import ConfigError, MissingSourceTable, load_config
from dosewise.models import TrainConfig
from dosewise.models import config_folder as models_config_folder
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline

pytestmark = pytest.mark.slow

CFG = SepsisPipelineConfig(output={"pseudonymize_ids": False}, threads=1)


def _demo_copy(mimic3_demo_dir: Path, dest: Path, drop: tuple[str, ...] = ()) -> Path:
    dest.mkdir()
    for path in mimic3_demo_dir.glob("*.csv.gz"):
        if path.name.split(".")[0] not in drop:
            shutil.copy(path, dest / path.name)
    return dest


def _header_only(path: Path) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = handle.readline()
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(header)


def _etl(source: Path, out: Path) -> CliRunner:
    return CliRunner().invoke(app, ["etl", "sepsis", "--source", str(source), "--out", str(out),
                                    "--config", "sepsis_mimic3", "--set", "output.pseudonymize_ids=false"],
                              env={"COLUMNS": "1000"})


def test_missing_carevue_inputs_is_an_error_not_zero_doses(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src", drop=("INPUTEVENTS_CV",))
    result = _etl(source, tmp_path / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "INPUTEVENTS_CV is missing" in text and "carevue" in text
    assert not (tmp_path / "out").exists()
    check = CliRunner().invoke(app, ["etl", "check-sources", "--source", str(source)])
    assert check.exit_code == 2


def test_header_only_input_table_of_a_present_care_system(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src")
    _header_only(source / "INPUTEVENTS_MV.csv.gz")
    with pytest.raises(MissingSourceTable, match=r"metavision stay\(s\), but INPUTEVENTS_MV is empty"):
        run_sepsis_pipeline(CFG, source, tmp_path / "out", show_progress=False)


def test_header_only_chartevents_is_an_error(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src")
    _header_only(source / "CHARTEVENTS.csv.gz")
    result = _etl(source, tmp_path / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "CHARTEVENTS.csv.gz has a header but no rows" in text, text


def test_two_files_for_one_table_name_both(mimic3_demo_dir: Path, tmp_path: Path) -> None:
    source = _demo_copy(mimic3_demo_dir, tmp_path / "src")
    with gzip.open(source / "CHARTEVENTS.csv.gz", "rt", encoding="utf-8") as handle:
        half = [next(handle) for _ in range(1000)]
    (source / "CHARTEVENTS.csv").write_text("".join(half), encoding="utf-8")
    result = _etl(source, tmp_path / "out")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "2 files" in text and "CHARTEVENTS.csv.gz, CHARTEVENTS.csv;" in text and "ambiguous" in text


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_config_floats_must_be_finite(value: str) -> None:
    with pytest.raises(ConfigError, match=r"`reward\.c0` must be a finite number\. Got "):
        load_config("sepsis_mimic3", SepsisPipelineConfig, [f"reward.c0={value}"], search=[config_folder()])
    with pytest.raises(ConfigError, match=r"learning_rate` must be a finite number"):
        load_config("discrete_cql", TrainConfig, [f"algorithm.learning_rate={value}"],
                    search=[models_config_folder()])


def test_nan_shaping_coefficient_on_the_command_line(tmp_path: Path) -> None:
    args = ["etl", "sepsis", "--source", str(tmp_path), "--out", str(tmp_path / "o"),
            "--set", "reward.c0=nan"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "1000"})
    assert result.exit_code == 2 and "`reward.c0` must be a finite number. Got nan." in result.output
