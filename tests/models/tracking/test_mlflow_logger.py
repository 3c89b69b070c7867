"""The d3rlpy -> MLflow logger and the run context, driven by a real d3rlpy fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dosewise.data_schemas import RunManifest
from dosewise.models import MLflowAdapterFactory, log_run_context
from dosewise.models.tracking.mlflow_logger import data_sha256, flatten_config
from dosewise.models.tracking.promotion import PromotionConfig
from dosewise.models.tracking.runs import end_run, fetch_run_artifact, log_training_outputs, start_run
from dosewise.models.tracking.stores import local_store_uri


def _tiny_dataset(seed: int):  # type: ignore[no-untyped-def]
    import d3rlpy

    rng = np.random.default_rng(seed)
    n = 60
    terminals = np.zeros(n)
    terminals[19::20] = 1.0
    return d3rlpy.dataset.MDPDataset(
        observations=rng.normal(size=(n, 4)).astype(np.float32),
        actions=rng.integers(0, 3, size=n),
        rewards=rng.normal(size=n).astype(np.float32),
        terminals=terminals,
        action_space=d3rlpy.ActionSpace.DISCRETE,
        action_size=3,
    )


def _fit(factory: MLflowAdapterFactory, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         steps: int = 30) -> None:
    import d3rlpy

    monkeypatch.chdir(tmp_path)  # d3rlpy must not need its ./d3rlpy_logs folder
    algo = d3rlpy.algos.DiscreteCQLConfig(batch_size=8).create(device="cpu:0")
    algo.fit(_tiny_dataset(seed), n_steps=steps, n_steps_per_epoch=10, logger_adapter=factory,
             show_progress=False, experiment_name="tiny")


def test_d3rlpy_fit_logs_train_metrics_into_its_own_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    uri = local_store_uri(tmp_path)
    factory = MLflowAdapterFactory(tracking_uri=uri, experiment="logger-test")
    _fit(factory, seed, tmp_path, monkeypatch)
    assert factory.failures == []
    assert not (tmp_path / "d3rlpy_logs").exists()
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    run = client.get_run(factory.adapters[0].run_id)
    assert run.info.status == "FINISHED"  # the adapter owned the run and closed it
    assert run.info.run_name.startswith("tiny")
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [10, 20, 30]
    assert all(np.isfinite(m.value) for m in history)
    assert client.get_metric_history(run.info.run_id, "train/epoch")[-1].value == 3.0
    assert run.data.params["config.params.batch_size"] == "8"


def test_run_context_training_outputs_and_learning_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, icu_trajectories: Path
) -> None:
    uri = local_store_uri(tmp_path / "store")
    _, run_id = start_run(uri, run_name="context")
    manifest = RunManifest.read(icu_trajectories)
    config = PromotionConfig(margin=0.02)
    tags = log_run_context(config, manifest, run_id=run_id, trajectories_dir=icu_trajectories,
                           tracking_uri=uri)
    factory = MLflowAdapterFactory(run_id, tracking_uri=uri)
    _fit(factory, seed, tmp_path, monkeypatch, steps=10)
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    (policy_dir / "policy.json").write_text(json.dumps({"name": "tiny"}))
    log_training_outputs(run_id, policy_dir, tracking_uri=uri)
    end_run(run_id, tracking_uri=uri)

    from mlflow import MlflowClient

    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["margin"] == "0.02" and run.data.params["estimator"] == "WIS"
    assert run.data.tags["dosewise.data_sha256"] == tags["dosewise.data_sha256"] == data_sha256(
        manifest, icu_trajectories)
    assert len(tags["dosewise.data_sha256"]) == 64
    assert run.data.tags["dosewise.version"] and run.data.tags["dosewise.git_sha"]
    assert "train/loss" in run.data.metrics
    saved = fetch_run_artifact(run_id, "data/manifest.json", tracking_uri=uri, dst=tmp_path / "dl")
    assert RunManifest.model_validate_json(saved.read_text()).config_sha256 == manifest.config_sha256
    curve = fetch_run_artifact(run_id, "plots/learning_curves.png", tracking_uri=uri, dst=tmp_path / "dl")
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fetch_run_artifact(run_id, "policy/policy.json", tracking_uri=uri, dst=tmp_path / "dl").is_file()


def test_data_hash_changes_with_the_data(tmp_path: Path, icu_trajectories: Path) -> None:
    manifest = RunManifest.read(icu_trajectories)
    edited = manifest.model_copy(update={"seed": 12345})
    assert data_sha256(manifest, icu_trajectories) != data_sha256(edited, icu_trajectories)
    assert data_sha256(manifest, icu_trajectories) == data_sha256(manifest, icu_trajectories)


def test_flatten_config_nests_with_dots_and_truncates_long_values() -> None:
    flat = flatten_config({"a": {"b": {"c": 1}}, "long": "x" * 7000, "flag": True})
    assert flat == {"a.b.c": "1", "long": "x" * 6000, "flag": "True"}


def test_logging_to_a_dead_server_fails_before_training(dead_server_uri: str) -> None:
    from dosewise.data_schemas import TrackingError

    with pytest.raises(TrackingError):
        MLflowAdapterFactory(tracking_uri=dead_server_uri).create(None, "x", 10)


def test_adapter_never_interrupts_training_when_the_server_dies(dead_server_uri: str) -> None:
    """A server that goes away mid-training: writes fail within the bounded retries, are
    remembered once, and later intervals are skipped without waiting again."""
    import time

    from mlflow import MlflowClient

    from dosewise.models import MLflowAdapter
    from dosewise.models.tracking.stores import bound_http_retries, resolve_store

    bound_http_retries()
    adapter = MLflowAdapter(MlflowClient(dead_server_uri), resolve_store(dead_server_uri), "0" * 32,
                            owns_run=True)
    started = time.monotonic()
    adapter.before_write_metric(1, 10)
    adapter.write_metric(1, 10, "loss", 0.5)
    adapter.after_write_metric(1, 10)
    first = time.monotonic() - started
    assert len(adapter.failures) == 1 and "not reachable" in adapter.failures[0]
    assert first < 30
    started = time.monotonic()
    adapter.after_write_metric(2, 20)
    adapter.close()
    assert time.monotonic() - started < 0.5 and len(adapter.failures) == 1
