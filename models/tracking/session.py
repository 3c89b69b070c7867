"""Training and evaluation with MLflow tracking around them (what `dosewise train/evaluate` run).

Training checks the tracking store before spending any compute, then records everything into one
run. Evaluation computes and writes its local outputs first and logs them to the policy's run
afterwards, so a tracking failure never costs the results on disk.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dosewise.data_schemas import BadInputError, DosewiseError, RunManifest, TrackingError

from .mlflow_logger import MLflowAdapterFactory, log_run_context
from .registry import load_registered_policy, parse_model_uri, resolve_registered
from .runs import end_run, log_ope_results, log_training_outputs, start_run
from .stores import connect, resolve_store, tracking_errors

POLICY_DIR_TAG = "dosewise.policy_dir"


@dataclass(frozen=True)
class TrackedTraining:
    """A finished training run: its local result and the MLflow run that records it."""

    result: Any  # TrainResult
    run_id: str
    tracking_uri: str


@dataclass(frozen=True)
class TrackedEvaluation:
    """A finished evaluation: the report and the run it was logged to (None: not tracked)."""

    report: Any  # OpeReport
    run_id: str | None
    tracking_uri: str | None


def train_tracked(
    trajectories_dir: Path, config: Any, *, out_dir: Path, tracking_uri: str | None = None,
    experiment: str | None = None, run_name: str | None = None, show_progress: bool = True,
    extra_logger: Any = None, ddp: Any = None, device: str | None = None, parent_run_id: str | None = None,
) -> TrackedTraining:
    """`train_policy` inside a new MLflow run: params, data/code tags, manifest, `train/*` metrics,
    the saved policy folder and its learning curves (`extra_logger`: another d3rlpy factory;
    `ddp`/`device`: rank 0 of a DDP job, see `distributed.py`; `parent_run_id`: nest the run under a
    pipeline's or a sweep's run)."""
    from .. import train_policy

    out_dir = Path(out_dir).resolve()
    store, run_id = start_run(tracking_uri, experiment=experiment,
                              run_name=run_name or f"{config.algorithm.name}-seed{config.seed}",
                              parent_run_id=parent_run_id)
    try:
        manifest = RunManifest.read(Path(trajectories_dir))
        log_run_context(config, manifest, run_id=run_id, trajectories_dir=Path(trajectories_dir),
                        tracking_uri=store.uri)
        from ..device import quiet_d3rlpy

        quiet_d3rlpy()  # import d3rlpy without its gym banner
        from d3rlpy.logging import CombineAdapterFactory  # d3rlpy's own logger fan-out

        factory = MLflowAdapterFactory(run_id, tracking_uri=store.uri)
        fan_out = CombineAdapterFactory([f for f in (factory, extra_logger) if f is not None])
        result = train_policy(Path(trajectories_dir), config, out_dir=out_dir, logger_factory=fan_out,
                              show_progress=show_progress, ddp=ddp, device=device)
    except BaseException:
        _end_quietly(run_id, store.uri)
        raise
    try:
        if factory.failures:
            raise TrackingError(f"Training metrics could not be logged: {factory.failures[0]}")
        _, client = connect(store.uri)
        with tracking_errors(store, f"tag run {run_id}"):
            client.set_tag(run_id, POLICY_DIR_TAG, str(out_dir))
        log_training_outputs(run_id, out_dir, tracking_uri=store.uri, metrics=result.metrics)
        end_run(run_id, tracking_uri=store.uri)
    except DosewiseError as exc:
        _end_quietly(run_id, store.uri)
        raise TrackingError(
            f"{exc.message} The trained policy is saved in {out_dir} (MLflow run {run_id}).", exc.hint
        ) from exc
    return TrackedTraining(result=result, run_id=run_id, tracking_uri=store.uri)


def _end_quietly(run_id: str, tracking_uri: str) -> None:
    with contextlib.suppress(DosewiseError):  # the store is the problem; the original error says so
        end_run(run_id, failed=True, tracking_uri=tracking_uri)


def find_policy_run(policy_dir: Path, tracking_uri: str | None = None) -> str | None:
    """The latest run whose `dosewise train` saved its policy in `policy_dir` (None if none)."""
    store = resolve_store(tracking_uri)
    if store.uri.startswith("sqlite:///") and not Path(store.uri[len("sqlite:///"):]).is_file():
        return None  # no local store yet: nothing was tracked, and searching must not create one
    store, client = connect(tracking_uri)
    path = str(Path(policy_dir).resolve()).replace("'", "\\'")
    with tracking_errors(store, "search runs"):
        experiments = [e.experiment_id for e in client.search_experiments()]
        query = f"tags.`{POLICY_DIR_TAG}` = '{path}'"
        runs = client.search_runs(experiments, query, order_by=["attributes.start_time DESC"],
                                  max_results=1) if experiments else []
    return str(runs[0].info.run_id) if runs else None


def load_policy_ref(policy: str | Path, tracking_uri: str | None = None,
                    trajectories_dir: Path | None = None) -> tuple[Any, str | None]:
    """A policy from a folder, a `models:/NAME@ALIAS` URI or a `constant:ACTION` reference policy
    (built against `trajectories_dir`'s contract), with the run it came from if known."""
    text = str(policy)
    from ..constant_policy import constant_policy, is_constant_spec

    if is_constant_spec(text):
        if trajectories_dir is None:
            raise BadInputError(f"`{text}` needs the trajectories it is evaluated on.",
                                "Pass --trajectories.")
        info = RunManifest.read(Path(trajectories_dir)).dataset
        if info is None:
            raise BadInputError(f"{trajectories_dir} is not a trajectories folder.",
                                "Pass the --out folder of `dosewise etl` or `dosewise synth`.")
        return constant_policy(text, info), None
    if text.startswith("models:/"):
        registered = resolve_registered(text, tracking_uri)
        return load_registered_policy(text, tracking_uri), registered.run_id
    from .. import load_policy

    return load_policy(Path(text)), None


def default_ope_dir(policy: str | Path, split: str) -> Path:
    """`<policy folder>/ope_<split>`, or `ope_<name>-<alias|vN>_<split>` for a registered model."""
    text = str(policy)
    if text.startswith("models:/"):
        name, alias, version = parse_model_uri(text)
        return Path(f"ope_{name}-{alias or f'v{version}'}_{split}")
    if text.startswith("constant:"):
        body = "".join(ch if ch.isalnum() or ch in ".-_" else "-" for ch in text[len("constant:"):])
        return Path(f"ope_constant-{body}_{split}")
    return Path(text) / f"ope_{split}"


def evaluate_tracked(
    trajectories_dir: Path, policy: str | Path, config: Any, *, split: str = "test", out_dir: Path,
    tracking_uri: str | None = None, track: bool = True, show_progress: bool = True,
) -> TrackedEvaluation:
    """`evaluate_policy` on a policy folder or registered model, then `ope/...` metrics, the
    report and plots logged to the policy's run (found by URI or by the folder's training run)."""
    from .. import evaluate_policy

    loaded, run_id = load_policy_ref(policy, tracking_uri, Path(trajectories_dir))
    if str(policy).startswith("constant:"):
        track = False  # a reference policy has no training run to log to
    report = evaluate_policy(Path(trajectories_dir), loaded, config, split=split, out_dir=Path(out_dir),
                             show_progress=show_progress)
    if not track:
        return TrackedEvaluation(report=report, run_id=None, tracking_uri=None)
    try:
        if run_id is None:
            run_id = find_policy_run(Path(policy), tracking_uri)
        if run_id is None:
            return TrackedEvaluation(report=report, run_id=None, tracking_uri=None)
        store, _ = connect(tracking_uri)
        log_ope_results(run_id, Path(out_dir), tracking_uri=store.uri)
    except DosewiseError as exc:
        kind = TrackingError if isinstance(exc, TrackingError) else BadInputError
        saved = f"The OPE outputs are saved in {Path(out_dir).resolve()}."
        raise kind(f"{exc.message} {saved}", exc.hint) from exc
    return TrackedEvaluation(report=report, run_id=run_id, tracking_uri=store.uri)
