"""The root command line: help, version, error exit codes, config commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dosewise.app.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("config", "demo"):
        assert command in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("dosewise ")


def test_unknown_config_name_exits_2_with_hint() -> None:
    result = runner.invoke(app, ["config", "show", "no_such_config"])
    assert result.exit_code == 2
    assert "No config named `no_such_config`" in result.output
    assert "Hint:" in result.output


def test_config_validate_names_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "nonsense"\n')
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 2
    assert "`kind` must be one of" in " ".join(result.output.split())  # rich wraps at 80 columns


def test_debug_adds_traceback() -> None:
    result = runner.invoke(app, ["--debug", "config", "show", "no_such_config"])
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("dosewise")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "Usage" in out.stdout


def test_error_text_in_square_brackets_is_printed_verbatim(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "[auth]"\n')
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 2
    assert "[auth]" in result.output
