"""`dosewise train --ddp 2` on the CPU: two real torchrun ranks on gloo, one policy, one MLflow run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app

runner = CliRunner()
SMALL = ["--steps", "30", "--set", "batch_size=16", "--set", "log_every=10",
         "--set", "algorithm.hidden_units=[16, 16]", "--device", "cpu", "--seed", "5"]


def _dosewise(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dosewise.app.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_two_ranks_keep_identical_weights_and_save_one_policy(traj_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "policy"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = _dosewise(["--quiet", "--tracking-uri", uri, "train", "--trajectories", str(traj_dir),
                      "--algo", "discrete_cql", "--out", str(out), "--ddp", "2", *SMALL], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    ddp = manifest["extra"]["ddp"]
    assert ddp["world_size"] == 2 and ddp["backend"] == "gloo"
    first, second = ddp["rank_weight_sha256"]
    assert first == second, "the ranks' weights drifted apart"
    # Rank 0 alone wrote: one policy folder, one model file, one run id printed, one MLflow run.
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "traj")
    assert written == ["mlartifacts", "mlflow.db", "policy"]
    assert len(list(out.glob("*.d3"))) + len(list(out.glob("*.pt"))) == 1
    run_ids = done.stdout.split()
    assert len(run_ids) == 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_id for r in runs] == run_ids
    from dosewise.models.distributed import weight_digest
    from dosewise.models.policy import load_policy

    assert weight_digest(load_policy(out).algo) == first, "the saved policy is not the ranks' weights"


@pytest.mark.parametrize(("args", "needle"), [
    (["--ddp", "4096"], "must be at most the"),
    (["--ddp", "1"], "must be 2 or more"),
    (["--ddp", "2", "--set", "batch_size=15"], "divisible by the --ddp process count 2"),
])
def test_bad_ddp_requests_exit_2(traj_dir: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["train", "--trajectories", str(traj_dir), "--no-track", "--device", "cpu",
                                 "--out", str(tmp_path / "p"), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert not (tmp_path / "p").exists()
