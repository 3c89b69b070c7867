"""`dosewise evaluate` refuses trajectories made with another id salt than the policy's training data.

Two runs of the real sepsis ETL on one source, differing only in the salt, give other episode ids and
another split; a policy trained on the first must not be evaluated on the second as if it were new data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import load_config
from dosewise.models import TrainConfig, train_policy
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline
from dosewise.pipelines.privacy import salt_fingerprint
from tests.pipelines.mimic_builders import merge_tables, septic_stay_tables, write_mimic4

SALT_A, SALT_B = "first-salt-of-the-run", "second-salt-of-the-run"
FAST = ["--set", "n_bootstrap=20", "--set", "fqe.enabled=false", "--set", "min_episodes=1", "--set",
        'estimators=["WIS"]', "--set", "behaviour.calibration=none", "--set", "bca=false", "--no-track"]


@pytest.fixture(scope="module")
def two_salts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("salts")
    source = write_mimic4(root / "src", merge_tables(*(septic_stay_tables(i, i, i) for i in range(1, 13))))
    outs = []
    for salt in (SALT_A, SALT_B):
        config = load_config("sepsis_mimic4", SepsisPipelineConfig,
                             [f"output.id_salt={salt}", "output.split_fractions=[0.5, 0.25, 0.25]"],
                             search=[config_folder()])
        outs.append(run_sepsis_pipeline(config, source, root / f"traj_{salt[:5]}", show_progress=False))
    train = TrainConfig.model_validate({"device": "cpu", "algorithm": {"name": "pessimistic_mbp",
                                                                       "min_count": 1}})
    policy = train_policy(root / "traj_first", train, out_dir=root / "policy", show_progress=False)
    return root / "traj_first", root / "traj_secon", policy.policy_dir


def _evaluate(traj: Path, policy: Path, out: Path, *extra: str) -> object:
    return CliRunner().invoke(app, ["evaluate", "--trajectories", str(traj), "--policy", str(policy),
                                    "--out", str(out), *FAST, *extra], env={"COLUMNS": "1000"})


def test_another_salt_is_refused_naming_both_fingerprints(two_salts: tuple[Path, Path, Path],
                                                          tmp_path: Path) -> None:
    _, second, policy = two_salts
    meta = json.loads((policy / "policy.json").read_text())
    assert meta["data_id_salt_fingerprint"] == salt_fingerprint(SALT_A)
    other = _evaluate(second, policy, tmp_path / "other")
    text = " ".join(other.output.split())
    assert other.exit_code == 2, other.output
    assert salt_fingerprint(SALT_A) in text and salt_fingerprint(SALT_B) in text and "split" in text
    assert SALT_A not in text and SALT_B not in text
    assert not (tmp_path / "other").exists()


def test_external_validation_may_evaluate_with_a_recorded_warning(two_salts: tuple[Path, Path, Path],
                                                                 tmp_path: Path) -> None:
    first, second, policy = two_salts
    result = _evaluate(second, policy, tmp_path / "warn", "--set", "id_salt_mismatch=warn")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "warn" / "ope_report.json").read_text())
    assert any(salt_fingerprint(SALT_B) in w and "id_salt_mismatch = warn" in w for w in report["warnings"])
    same = json.loads((first / "manifest.json").read_text())  # the training folder itself: no warning
    assert same["extra"]["id_salt_fingerprint"] == salt_fingerprint(SALT_A)
