"""`dosewise train`: a real run, config resolution, and every bad input exits 2 with a hint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dosewise.app.cli import app

from .conftest import binned_info, binned_trajectories, write_folder

runner = CliRunner()
SMALL = ["--no-track", "--steps", "20", "--set", "batch_size=16", "--set", "log_every=10",
         "--set", "algorithm.hidden_units=[16, 16]"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each command in a fresh folder: nothing may land in the repository."""
    monkeypatch.chdir(tmp_path)


def test_train_writes_a_loadable_policy_and_prints_a_summary(traj_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "policy"
    result = runner.invoke(app, ["train", "--trajectories", str(traj_dir), "--algo", "double_dqn",
                                 "--device", "cpu", "--seed", "3", "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    assert "step 10/20" in result.output and "step 20/20" in result.output
    assert "dosewise train" in result.output and "train/loss" in result.output
    meta = json.loads((out / "policy.json").read_text())
    assert meta["name"] == "double_dqn" and meta["config"]["seed"] == 3 and meta["config"]["n_steps"] == 20
    assert meta["config"]["algorithm"]["hidden_units"] == [16, 16]
    assert (out / "manifest.json").is_file()


def test_quiet_train_prints_nothing_and_writes_no_d3rlpy_logs(traj_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--quiet", "train", "--trajectories", str(traj_dir), "--device", "cpu",
                                 "--algo", "discrete_cql", *SMALL])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policies", "traj"]
    (policy,) = (tmp_path / "policies").iterdir()
    assert policy.name.startswith("discrete_cql-") and (policy / "policy.json").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--algo", "ppo"], "must be one of"),
        (["--config", "iql", "--algo", "dqn"], "contradicts"),
        (["--algo", "discrete_cql", "--set", "algorithm.alpha=-1"], "`algorithm.alpha` must be"),
        (["--set", "n_stepz=3"], "not a known setting"),
        (["--device", "tpu"], "not a device name"),
    ],
)
def test_bad_arguments_exit_2(traj_dir: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["train", "--no-track", "--trajectories", str(traj_dir),
                                 "--out", str(tmp_path / "p"), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_cuda_without_cuda_exits_2(traj_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--no-track", "--trajectories", str(traj_dir), "--device", "cuda",
                                 "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "no usable CUDA device" in result.output and "Hint" in result.output


def test_bad_folders_exit_2(tmp_path: Path) -> None:
    unfinished = write_folder(tmp_path / "unfinished", binned_trajectories(), binned_info(), manifest=False)
    frame = binned_trajectories()
    frame.loc[4, "action"] = 99
    out_of_range = write_folder(tmp_path / "oor", frame, binned_info())
    for folder in (unfinished, out_of_range, tmp_path / "missing"):
        result = runner.invoke(app, ["train", "--trajectories", str(folder), "--device", "cpu",
                                     "--algo", "discrete_cql", "--out", str(tmp_path / "p"), *SMALL])
        assert result.exit_code == 2, (folder, result.output)
    assert not (tmp_path / "p").exists()


def test_the_default_is_pessimistic_planning(traj_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "default"
    result = runner.invoke(app, ["--quiet", "train", "--no-track", "--trajectories", str(traj_dir),
                                 "--set", "algorithm.min_count=1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "policy.json").read_text())["name"] == "pessimistic_mbp"


def test_importing_models_and_cli_help_do_not_import_torch() -> None:
    code = ("import sys, dosewise.models, dosewise.models.cli, dosewise.app.cli; "
            "print('torch' in sys.modules, 'd3rlpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120)
    assert done.stdout.strip() == "False False"
