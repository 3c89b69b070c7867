"""Against a real `mlflow server`: tracked training and OPE, registration, fresh-process serving,
the promotion gate (passing and refusing), and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.ope import OpeReport
from dosewise.models import (
    PromotionConfig,
    PromotionRefused,
    list_registered_policies,
    load_policy,
    promote_policy,
    register_policy,
    resolve_registered,
)
from dosewise.models.behaviour import load_behaviour_model
from dosewise.models.tracking.pyfunc import SUPPORT_COLUMN, predict_recommendations
from dosewise.models.tracking.runs import (
    fetch_run_artifact,
    log_ope_results,
    log_training_outputs,
    start_run,
)
from dosewise.models.tracking.session import evaluate_tracked, train_tracked
from dosewise.models.tracking.stores import resolve_store, using_store

from .helpers import FEATURES, predict_in_fresh_process, sample_states, tiny_train_config

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")]
NAME = "sepsis-dosing"


def _ope_config():  # type: ignore[no-untyped-def]
    from dosewise.models.ope.config import OpeConfig

    return OpeConfig.model_validate({"estimators": ["WIS", "PDWIS"], "n_bootstrap": 100,
                                     "bca": False, "min_episodes": 10, "fqe": {"enabled": False},
                                     "behaviour": {"base": "logistic", "max_iter": 15,
                                                   "calibration": "none"}})


@pytest.fixture(scope="module")
def server_flow(mlflow_server: str, icu_trajectories: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Train and evaluate a tiny policy with tracking on the server, register it `@candidate`."""
    work = tmp_path_factory.mktemp("server_flow")
    trained = train_tracked(icu_trajectories, tiny_train_config(), out_dir=work / "policy",
                            tracking_uri=mlflow_server, show_progress=False)
    evaluated = evaluate_tracked(icu_trajectories, work / "policy", _ope_config(), split="test",
                                 out_dir=work / "ope", tracking_uri=mlflow_server, show_progress=False)
    registered = register_policy(trained.run_id, NAME, alias="candidate", tracking_uri=mlflow_server)
    return work, trained, evaluated, registered


def test_training_and_ope_are_recorded_in_one_run(server_flow, mlflow_server: str) -> None:  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    _, trained, evaluated, _ = server_flow
    assert evaluated.run_id == trained.run_id  # found through the policy folder's training run
    run = MlflowClient(mlflow_server).get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["algorithm.name"] == "discrete_cql" and run.data.params["n_steps"] == "100"
    for key in ("dosewise.data_sha256", "dosewise.git_sha", "dosewise.version"):
        assert run.data.tags[key]
    metrics = run.data.metrics
    assert {"train/loss", "train/td_loss", "data/n_transitions"} <= set(metrics)
    wis = evaluated.report.estimate("WIS", evaluated.report.policy_name)
    assert metrics["ope/wis_value"] == pytest.approx(wis.value)
    assert metrics["ope/wis_ci_low"] <= metrics["ope/wis_value"] <= metrics["ope/wis_ci_high"]
    assert 0 < metrics["ope/wis_ess"] <= metrics["ope/n_episodes"]
    assert 0 <= metrics["ope/support_share_steps_out"] <= 1 and "ope/clinicians/wis_value" in metrics
    assert metrics["ope/support_bounds_ci_low"] <= metrics["ope/support_bounds_ci_high"]
    for path in ("data/manifest.json", "policy/policy.json", "ope/ope_report.json",
                 "plots/learning_curves.png", "plots/ope_forest.png", "plots/action_heatmap.png"):
        assert fetch_run_artifact(trained.run_id, path, tracking_uri=mlflow_server).is_file(), path


def test_signature_and_fresh_process_prediction_over_http(  # type: ignore[no-untyped-def]
    server_flow, mlflow_server: str, icu_trajectories: Path, tmp_path: Path
) -> None:
    import mlflow

    work, trained, _, registered = server_flow
    assert registered.aliases == ("candidate",)
    with using_store(resolve_store(mlflow_server)):
        info = mlflow.models.get_model_info(f"models:/{NAME}@candidate")
    inputs = info.signature.inputs.to_dict()
    assert [c["name"] for c in inputs] == FEATURES and {c["type"] for c in inputs} == {"double"}
    outputs = {c["name"]: c["type"] for c in info.signature.outputs.to_dict()}
    assert outputs["recommended_action"] == "long" and outputs[SUPPORT_COLUMN] == "boolean"
    assert [n for n in outputs if n.startswith("q_")] == [f"q_{a:02d}" for a in range(25)]

    states = sample_states(icu_trajectories)
    out = predict_in_fresh_process(f"models:/{NAME}@candidate", states, tmp_path, mlflow_server)
    policy = load_policy(trained.result.policy_dir)
    np.testing.assert_array_equal(out["recommended_action"].to_numpy(), policy.recommend(states))
    report = OpeReport.model_validate_json((work / "ope" / "ope_report.json").read_text())
    behaviour = load_behaviour_model(work / "ope" / "behaviour_model.joblib")
    expected = predict_recommendations(policy, states, behaviour, FEATURES, report.support.threshold)
    np.testing.assert_allclose(out["behaviour_prob_recommended"], expected["behaviour_prob_recommended"])
    np.testing.assert_array_equal(out[SUPPORT_COLUMN], expected[SUPPORT_COLUMN])
    assert out["behaviour_prob_recommended"].between(0, 1).all()


def test_predict_refuses_wrong_columns_and_dtypes(  # type: ignore[no-untyped-def]
    server_flow, mlflow_server: str, icu_trajectories: Path
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    _, trained, _, _ = server_flow
    with using_store(resolve_store(mlflow_server)):
        model = mlflow.pyfunc.load_model(f"models:/{NAME}@candidate")
    states = sample_states(icu_trajectories, 5)
    with pytest.raises(MlflowException, match=r"missing inputs.*cluster_centre_03"):
        model.predict(states.drop(columns=["cluster_centre_03"]))
    with pytest.raises(MlflowException, match="cluster_centre_00"):
        model.predict(states.assign(cluster_centre_00=np.arange(5) + 7))
    with pytest.raises(MlflowException, match="cluster_centre_01"):
        model.predict(states.assign(cluster_centre_01="high"))
    policy = load_policy(trained.result.policy_dir)
    with pytest.raises(BadInputError, match="float64"):
        predict_recommendations(policy, states.astype({"cluster_centre_02": "float32"}))
    with pytest.raises(BadInputError, match="missing 1 state column"):
        predict_recommendations(policy, states.drop(columns=["cluster_centre_46"]))


def test_evaluate_a_registered_model_logs_to_its_run(  # type: ignore[no-untyped-def]
    server_flow, mlflow_server: str, icu_trajectories: Path, tmp_path: Path
) -> None:
    _, trained, _, _ = server_flow
    again = evaluate_tracked(icu_trajectories, f"models:/{NAME}@candidate", _ope_config(), split="test",
                             out_dir=tmp_path / "ope", tracking_uri=mlflow_server, show_progress=False)
    assert again.run_id == trained.run_id
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    assert client.get_run(trained.run_id).data.tags["dosewise.ope_split"] == "test"
    assert len(client.get_metric_history(trained.run_id, "ope/wis_value")) == 2  # logged twice


def _good_version(work: Path, trained_dir: Path, uri: str, leaving: float | None = 0.05) -> str:
    """A second run with the same policy and a report whose WIS lower bound clearly beats the clinicians
    (`leaving`: its share of episodes leaving the support; None: a report without support bounds)."""
    report = OpeReport.model_validate_json((work / "ope" / "ope_report.json").read_text())
    clinicians = report.estimate("WIS", "clinicians").value
    estimates = [e.model_copy(update={"lower_bound_95": clinicians + 0.05, "ess": 120.0})
                 if (e.estimator, e.target) == ("WIS", report.policy_name) else e for e in report.estimates]
    folder = work / f"good_ope_{leaving}"
    folder.mkdir(exist_ok=True)
    bounds = [] if leaving is None else [b.model_copy(update={"share_leaving_support": leaving})
                                         for b in report.support_bounds]
    good = report.model_copy(update={"estimates": estimates, "support_bounds": bounds})
    (folder / "ope_report.json").write_text(good.model_dump_json())
    (folder / "behaviour_model.joblib").write_bytes((work / "ope" / "behaviour_model.joblib").read_bytes())
    _, run_id = start_run(uri, run_name="good")
    log_training_outputs(run_id, trained_dir, tracking_uri=uri)
    log_ope_results(run_id, folder, tracking_uri=uri)
    return register_policy(run_id, NAME, tracking_uri=uri).version


def test_promotion_gate_passes_and_refuses(server_flow, mlflow_server: str) -> None:  # type: ignore[no-untyped-def]
    work, trained, _, registered = server_flow
    good = _good_version(work, trained.result.policy_dir, mlflow_server)
    decision = promote_policy(NAME, good, PromotionConfig(min_ess=100), tracking_uri=mlflow_server)
    assert decision.passed and decision.ess == 120.0
    assert resolve_registered(f"models:/{NAME}@champion", mlflow_server).version == good

    with pytest.raises(PromotionRefused) as refused:  # survival can never beat clinicians + 1
        promote_policy(NAME, registered.version, PromotionConfig(margin=1.0), tracking_uri=mlflow_server)
    assert "margin 1.0000" in refused.value.message and "fails" in refused.value.message
    with pytest.raises(PromotionRefused, match=r"ESS 120\.0 vs minimum 500\.0"):
        promote_policy(NAME, good, PromotionConfig(min_ess=500), tracking_uri=mlflow_server)
    with pytest.raises(PromotionRefused, match=r"support 5\.0 % vs maximum 1\.0 % \(fails\)"):
        promote_policy(NAME, good, PromotionConfig(min_ess=100, max_leaving_support=0.01),
                       tracking_uri=mlflow_server)
    unknown = _good_version(work, trained.result.policy_dir, mlflow_server, leaving=None)
    with pytest.raises(PromotionRefused, match=r"support unknown \(re-run dosewise evaluate\)"):
        promote_policy(NAME, unknown, PromotionConfig(min_ess=100), tracking_uri=mlflow_server)
    assert resolve_registered(f"models:/{NAME}@champion", mlflow_server).version == good
    with pytest.raises(BadInputError, match="on the `test` split; the gate reads `validation`"):
        promote_policy(NAME, good, PromotionConfig(split="validation"), tracking_uri=mlflow_server)
    with pytest.raises(BadInputError, match="no version 99"):
        promote_policy(NAME, "99", tracking_uri=mlflow_server)


def test_cli_register_and_promote(server_flow, mlflow_server: str) -> None:  # type: ignore[no-untyped-def]
    _, trained, _, _ = server_flow
    runner = CliRunner()
    result = runner.invoke(app, ["--tracking-uri", mlflow_server, "register", "--run", trained.run_id,
                                 "--name", NAME, "--alias", "review"])
    assert result.exit_code == 0, result.output
    version = resolve_registered(f"models:/{NAME}@review", mlflow_server).version
    result = runner.invoke(app, ["--tracking-uri", mlflow_server, "promote", "--name", NAME,
                                 "--version", version, "--set", "margin=1.0"])
    assert result.exit_code == 2
    assert "was not promoted" in result.output and "clinicians" in result.output
    result = runner.invoke(app, ["--tracking-uri", mlflow_server, "register", "--run", "0" * 32,
                                 "--name", NAME])
    assert result.exit_code == 2 and "Error:" in result.output
    assert {r.version for r in list_registered_policies(mlflow_server)} >= {"1", version}


def test_dead_server_keeps_local_outputs(  # type: ignore[no-untyped-def]
    server_flow, dead_server_uri: str, icu_trajectories: Path, tmp_path: Path
) -> None:
    import time

    from dosewise.data_schemas import TrackingError

    work, _, _, _ = server_flow
    with pytest.raises(TrackingError, match=r"not reachable.*OPE outputs are saved"):
        evaluate_tracked(icu_trajectories, work / "policy", _ope_config(), split="test",
                         out_dir=tmp_path / "ope", tracking_uri=dead_server_uri, show_progress=False)
    assert (tmp_path / "ope" / "ope_report.json").is_file()
    assert (tmp_path / "ope" / "manifest.json").is_file()

    started = time.monotonic()
    result = CliRunner().invoke(app, ["--tracking-uri", dead_server_uri, "train", "--trajectories",
                                      str(icu_trajectories), "--out", str(tmp_path / "never")])
    assert result.exit_code == 1 and "not reachable" in result.output
    assert time.monotonic() - started < 20
    assert not (tmp_path / "never").exists()  # nothing trained before the store answered
