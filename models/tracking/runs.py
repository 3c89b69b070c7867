"""One MLflow run per trained policy: open it, add the policy folder, curves and OPE results.

Artifact layout of a run (what the registry and the review app read back):
`data/manifest.json`, `policy/` (the saved policy folder), `ope/ope_report.json` (+ the
behaviour model and support flags), `plots/*.png` (learning curves, OPE forest plot, action
heatmap, ...). Metrics: `train/...` while training, `ope/...` after evaluation.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.ope import OpeReport

from .mlflow_logger import TRAIN_PREFIX
from .plots import learning_curve_figure
from .stores import TrackingStore, connect, ensure_experiment, tracking_errors

POLICY_PATH = "policy"
OPE_PATH = "ope"
PLOTS_PATH = "plots"
REPORT_NAME = "ope_report.json"


PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag (what `mlflow.start_run(nested=True)` sets)


def start_run(
    tracking_uri: str | None = None, *, experiment: str | None = None, run_name: str | None = None,
    parent_run_id: str | None = None, tags: dict[str, str] | None = None,
) -> tuple[TrackingStore, str]:
    """Create a run in the store's experiment (artifacts in the pinned folder); return its id.

    With `parent_run_id` the run is nested under that run, as MLflow's UI shows it."""
    store, client = connect(tracking_uri)
    experiment_id = ensure_experiment(client, store, experiment)
    all_tags = dict(tags or {}) | ({PARENT_TAG: parent_run_id} if parent_run_id else {})
    with tracking_errors(store, "create a run"):
        run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    return store, str(run.info.run_id)


def log_to_run(
    run_id: str, *, metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None,
    tracking_uri: str | None = None,
) -> None:
    """Add metrics (step 0) and tags to an open run in one batch (a pipeline stage's counts)."""
    from mlflow.entities import Metric, RunTag

    store, client = connect(tracking_uri)
    now = int(time.time() * 1000)
    with tracking_errors(store, f"log to run {run_id}"):
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
                         tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()])


def end_run(run_id: str, *, failed: bool = False, tracking_uri: str | None = None) -> None:
    """Mark a run FINISHED (or FAILED)."""
    store, client = connect(tracking_uri)
    with tracking_errors(store, f"close run {run_id}"):
        client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")


def log_training_outputs(
    run_id: str, policy_dir: Path, *, tracking_uri: str | None = None, metrics: dict[str, float] | None = None
) -> None:
    """Add the saved policy folder (`policy/`), the learning curves (`plots/`) and the final
    non-`train/` metrics (e.g. `data/n_transitions`) to a run."""
    policy_dir = Path(policy_dir)
    if not policy_dir.is_dir():
        raise BadInputError(f"Policy folder {policy_dir} does not exist.", "Train a policy first.")
    store, client = connect(tracking_uri)
    with tracking_errors(store, f"log the policy folder to run {run_id}"):
        client.log_artifacts(run_id, str(policy_dir), artifact_path=POLICY_PATH)
        extra = {k: float(v) for k, v in (metrics or {}).items() if not k.startswith(TRAIN_PREFIX)}
        if extra:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in extra.items()])
        run = client.get_run(run_id)
        history = {
            key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
            for key in run.data.metrics
            if key.startswith(TRAIN_PREFIX) and key != f"{TRAIN_PREFIX}epoch"
        }
    if any(history.values()):
        figure = learning_curve_figure(history, title=f"Training: {run.info.run_name}")
        with tracking_errors(store, f"log learning curves to run {run_id}"):
            client.log_figure(run_id, figure, f"{PLOTS_PATH}/learning_curves.png")


def ope_metrics(report: OpeReport) -> dict[str, float]:
    """`ope/<estimator>_<field>` for the policy, `ope/clinicians/...` for the clinicians,
    `ope/support_...` for the support diagnostics and bounds (cleanrl-style namespaced names)."""
    metrics: dict[str, float] = {}
    for item in report.estimates:
        prefix = f"{OPE_PATH}/" if item.target == report.policy_name else f"{OPE_PATH}/{item.target}/"
        name = item.estimator.lower()
        for field in ("value", "ci_low", "ci_high", "lower_bound_95", "ess", "ess_share"):
            value = getattr(item, field)
            if value is not None:
                metrics[f"{prefix}{name}_{field}"] = float(value)
    support = report.support
    metrics[f"{OPE_PATH}/support_share_steps_out"] = support.share_steps_out_of_support
    metrics[f"{OPE_PATH}/support_share_steps_in"] = 1.0 - support.share_steps_out_of_support
    metrics[f"{OPE_PATH}/support_share_episodes_with_any_out"] = support.share_episodes_with_any
    for bounds in report.support_bounds:
        prefix = f"{OPE_PATH}/" if bounds.target == report.policy_name else f"{OPE_PATH}/{bounds.target}/"
        for field in ("value_low", "value_high", "ci_low", "ci_high", "share_leaving_support"):
            value = getattr(bounds, field)
            if value is not None:
                metrics[f"{prefix}support_bounds_{field}"] = float(value)
    metrics[f"{OPE_PATH}/n_episodes"] = float(report.n_episodes)
    return metrics


def log_ope_results(run_id: str, ope_dir: Path, *, tracking_uri: str | None = None) -> dict[str, float]:
    """Log an `evaluate` output folder to the policy's run: `ope/...` metrics, the whole folder
    (report, behaviour model, support flags, figures) under `ope/`, and its PNGs under `plots/`."""
    ope_dir = Path(ope_dir)
    report_path = ope_dir / REPORT_NAME
    if not report_path.is_file():
        raise BadInputError(f"{ope_dir} has no {REPORT_NAME}.",
                            "Pass the --out folder of `dosewise evaluate`.")
    report = OpeReport.model_validate_json(report_path.read_text(encoding="utf-8"))
    metrics = ope_metrics(report)
    store, client = connect(tracking_uri)
    with tracking_errors(store, f"log OPE results to run {run_id}"):
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            tags=[RunTag("dosewise.ope_split", report.split),
                  RunTag("dosewise.ope_policy", report.policy_name)],
        )
        client.log_artifacts(run_id, str(ope_dir), artifact_path=OPE_PATH)  # the folder as written
        for path in sorted(ope_dir.glob("*.png")):
            client.log_artifact(run_id, str(path), artifact_path=PLOTS_PATH)  # images beside the curves
    return metrics


def fetch_run_artifact(
    run_id: str, path: str, *, tracking_uri: str | None = None, dst: Path | None = None
) -> Path:
    """Download one artifact file or folder of a run (e.g. `ope/ope_report.json`) to a local path."""
    store, client = connect(tracking_uri)
    with tracking_errors(store, f"read run {run_id}"):
        client.get_run(run_id)
        parent = str(Path(path).parent) if "/" in path.strip("/") else None
        listed = {item.path for item in client.list_artifacts(run_id, parent)}
    if path.strip("/") not in listed:
        raise BadInputError(
            f"Run {run_id} has no artifact `{path}`"
            + (f"; under `{parent or '/'}` it has: {', '.join(sorted(listed))}." if listed else "."),
            "Train (policy/), evaluate (ope/, plots/) the run first, or check the path.",
        )
    target = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="dosewise-artifact-"))
    target.mkdir(parents=True, exist_ok=True)
    with tracking_errors(store, f"download `{path}` of run {run_id}"):
        return Path(client.download_artifacts(run_id, path, str(target)))
