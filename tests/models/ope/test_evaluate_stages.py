"""`evaluate_policy` as declared stages: the trajectories folder is read and validated once per
`dosewise evaluate` (the evaluated split, the behaviour model's and both FQE fits' splits are all
taken from that one read), and the estimate stage computes the report without writing anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import validation
from dosewise.data_schemas.ope import OpeReport
from dosewise.models import OpeConfig
from dosewise.models.constant_policy import constant_policy
from dosewise.models.datasets import LoadedTrajectories
from dosewise.models.ope.report import EVALUATE_STAGES, estimate_policy_value
from dosewise.models.ope.writing import write_evaluation
from dosewise.pipelines import write_icu_sepsis_episodes

from .continuous_mdp import write_continuous_folder

FAST = ["--set", "n_bootstrap=50", "--set", "bca=false", "--set", "fqe.n_steps=20",
        "--set", "fqe.bootstrap_refits=0", "--set", "fqe.hidden_units=[8]"]


@pytest.fixture
def parquet_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """File names read by `read_trajectories`: the real reader, counted on its way through."""
    reads: Counter[str] = Counter()
    real: Callable[[Path], pd.DataFrame] = validation.read_parquet_checked

    def counting(path: Path) -> pd.DataFrame:
        reads[Path(path).name] += 1
        return real(path)

    monkeypatch.setattr(validation, "read_parquet_checked", counting)
    return reads


def test_evaluate_command_reads_the_trajectories_once(tmp_path: Path, parquet_reads: Counter[str]) -> None:
    data = tmp_path / "data"
    write_icu_sepsis_episodes(data, 60, behaviour="clinician", seed=5)
    parquet_reads.clear()
    out = tmp_path / "ope"
    result = CliRunner().invoke(app, ["--quiet", "evaluate", "--trajectories", str(data), "--policy",
                                      "constant:3", "--out", str(out), "--no-track", *FAST])
    assert result.exit_code == 0, result.output
    report = OpeReport.model_validate_json((out / "ope_report.json").read_text())
    assert {"DR", "WDR", "FQE"} <= {e.estimator for e in report.estimates}  # both FQE fits ran
    assert parquet_reads == Counter({"trajectories.parquet": 1, "splits.parquet": 1})


def test_estimate_stage_writes_nothing_and_the_write_stage_writes_its_report(
    tmp_path: Path, parquet_reads: Counter[str]
) -> None:
    data = tmp_path / "data"
    write_continuous_folder(data, n_episodes=120, seed=3)
    parquet_reads.clear()
    loaded = LoadedTrajectories.read(data)
    config = OpeConfig.model_validate({"n_bootstrap": 50, "bca": False,
                                       "fqe": {"n_steps": 20, "bootstrap_refits": 0, "hidden_units": [8]}})
    before = sorted(tmp_path.rglob("*"))
    evaluation = estimate_policy_value(loaded, constant_policy("constant:0.9", loaded.info), config,
                                       show_progress=False)
    assert sorted(tmp_path.rglob("*")) == before  # computing wrote nothing
    assert evaluation.report.action_space == "continuous"
    assert parquet_reads["trajectories.parquet"] == 1  # continuous FQE took its split from `loaded`
    write_evaluation(evaluation, tmp_path / "ope")
    written = OpeReport.model_validate_json((tmp_path / "ope" / "ope_report.json").read_text())
    assert written == evaluation.report
    assert set(evaluation.report.files.values()) <= {p.name for p in (tmp_path / "ope").iterdir()}
    assert [name for name, _ in EVALUATE_STAGES] == ["read_trajectories", "estimate_policy_value",
                                                      "write_report"]
