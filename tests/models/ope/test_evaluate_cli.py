"""`dosewise evaluate` on a policy trained by `dosewise train`'s API, checked against its exact value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import load_config
from dosewise.data_schemas.ope import OpeReport
from dosewise.models import TrainConfig, config_folder, load_policy, train_policy
from dosewise.pipelines import exact_policy_value, load_icu_sepsis_mdp, write_icu_sepsis_episodes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("learned")
    data = root / "data"
    write_icu_sepsis_episodes(data, 1500, behaviour="epsilon:0.2", seed=11)
    config = load_config("discrete_cql", TrainConfig, ["n_steps=300", "log_every=100", "device=cpu"],
                         search=[config_folder()])
    result = train_policy(data, config, out_dir=root / "policy", show_progress=False)
    return data, result.policy_dir


def test_evaluate_command_writes_a_report_that_covers_the_exact_value(trained: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    data, policy_dir = trained
    out = tmp_path / "ope"
    result = CliRunner().invoke(app, [
        "evaluate", "--trajectories", str(data), "--policy", str(policy_dir), "--out", str(out),
        "--set", "epsilon=0.2", "--set", "n_bootstrap=300", "--set", "fqe.n_steps=300",
        "--set", "fqe.bootstrap_refits=2", "--set", "fqe.tabular_refits=20",
    ])
    assert result.exit_code == 0, result.output
    assert "Off-policy estimates" in result.output and "WDR" in result.output
    assert "tabular FQE, 20 refits" in result.output  # the FQE interval says what it rests on (auto: 716
    # ICU-Sepsis states repeat)
    assert "Range of values the data allow" in result.output
    report = OpeReport.model_validate_json((out / "ope_report.json").read_text())
    policy = load_policy(policy_dir)
    mdp = load_icu_sepsis_mdp()
    states = pd.DataFrame(mdp.state_features[mdp.non_terminal], columns=policy.feature_names)
    truth = exact_policy_value(policy.action_probabilities(states, 0.2), mdp)
    wis = report.estimate("WIS", report.policy_name)
    assert wis.ci_low <= truth <= wis.ci_high
    (bounds,) = report.support_bounds  # epsilon 0.2 reaches actions the clinicians never take
    assert bounds.ci_low <= truth <= bounds.ci_high
    assert report.epsilon == 0.2


def test_evaluate_command_reports_bad_input_with_exit_code_2(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, policy_dir = trained
    result = CliRunner().invoke(app, ["evaluate", "--trajectories", str(data), "--policy", str(policy_dir),
                                      "--out", str(tmp_path), "--set", "n_bootstrap=1"])
    assert result.exit_code == 2
    assert "n_bootstrap" in result.output


def test_evaluate_json_prints_the_report_even_when_quiet(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, policy_dir = trained
    result = CliRunner().invoke(app, [
        "--quiet", "evaluate", "--trajectories", str(data), "--policy", str(policy_dir),
        "--out", str(tmp_path),
        "--set", "epsilon=0.2", "--set", "n_bootstrap=50", "--set", "fqe.n_steps=50",
        "--set", "fqe.tabular_refits=5", "--no-track", "--json",
    ])
    assert result.exit_code == 0, result.output
    printed = OpeReport.model_validate_json(result.stdout)
    assert printed == OpeReport.model_validate_json((tmp_path / "ope_report.json").read_text())
