"""`dosewise run` refuses bad configs in the first second, with exit 2 and the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.app.pipeline import ETL_KINDS, EtlKind, load_pipeline_config
from dosewise.app.pipeline.stages import ResolvedConfigs
from dosewise.data_schemas import ConfigError

runner = CliRunner()


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", "--config", "pipeline_demo", "--out", str(tmp_path / "run"), *args])
    return result.exit_code, result.output


def test_unknown_stage_setting_names_the_key(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--set", "train.settings.algorithm.alhpa=0.1")
    assert code == 2
    assert "Pipeline stage `train`" in output and "alhpa" in output
    assert not (tmp_path / "run").exists()  # nothing ran, nothing was written


def test_unknown_pipeline_key_and_stage_names(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--set", "trian.settings.n_steps=5")
    assert code == 2 and "trian" in output
    code, output = _run(tmp_path, "--from", "training")
    assert code == 2 and "`--from` must be one of source, etl, train" in output


def test_only_needs_the_finished_inputs(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--only", "evaluate")
    assert code == 2 and "needs the finished stages etl, train" in output
    assert not (tmp_path / "run").exists()


def test_source_path_required_and_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"source\.path"):
        load_pipeline_config("pipeline_sepsis_mimic4", [])
    result = runner.invoke(app, ["run", "--config", "pipeline_sepsis_mimic4", "--out", str(tmp_path / "r"),
                                 "--set", f"source.path={tmp_path / 'absent'}"])
    assert result.exit_code == 2 and "must be a folder of raw records" in result.output


def test_unreachable_tracking_server_fails_with_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--tracking-uri", "http://127.0.0.1:9", "run", "--config", "pipeline_demo",
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output


def test_etl_kind_must_be_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ETL_KINDS, "other", EtlKind("NoSuchConfig", "run_no_such_pipeline"))
    config = load_pipeline_config("pipeline_demo", ["etl.kind=other"])
    with pytest.raises(ConfigError, match=r"`etl\.kind` must be one of sepsis"):
        ResolvedConfigs.of(config)
