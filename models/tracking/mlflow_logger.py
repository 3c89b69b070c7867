"""MLflow as a d3rlpy logger, plus the run context every Dosewise run records.

d3rlpy ships file, TensorBoard and W&B loggers but none for MLflow (takuseno/d3rlpy#285).
`MLflowAdapterFactory` implements its `LoggerAdapterFactory` protocol: training metrics land
under `train/...` in one MLflow run. `log_run_context` adds the flattened resolved config as
params and the data and code tags that tie a run to exactly what it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dosewise.data_schemas import (
    MANIFEST_NAME,
    RunManifest,
    TrackingError,
    canonical_json,
    current_code_version,
)

from .stores import TrackingStore, connect, ensure_experiment, tracking_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

TRAIN_PREFIX = "train/"
MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
DATA_FILES = ("trajectories.parquet", "splits.parquet")


def flatten_config(config: BaseModel | Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> `{"algorithm.alpha": "1.0", ...}`; lists as JSON, values as MLflow params.

    >>> flatten_config({"seed": 0, "algorithm": {"name": "dqn", "hidden": [64, 64]}})
    {'seed': '0', 'algorithm.name': 'dqn', 'algorithm.hidden': '[64, 64]'}
    """
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(value, default=str)[:MAX_PARAM_CHARS]
        else:
            flat[name] = str(value)[:MAX_PARAM_CHARS]
    return flat


def data_sha256(manifest: RunManifest, trajectories_dir: Path | None = None) -> str:
    """One hash over the trajectories, the splits and the manifest of a dataset.

    With the folder, the files themselves are hashed; without it, the file hashes that the
    producer recorded in the manifest stand in for them.
    """
    from dosewise.data_schemas import sha256_file

    digest = hashlib.sha256()
    for name in DATA_FILES:
        if trajectories_dir is not None and (Path(trajectories_dir) / name).is_file():
            file_hash = sha256_file(Path(trajectories_dir) / name)
        else:
            file_hash = manifest.outputs.get(name, "")
        digest.update(f"{name}:{file_hash}\n".encode())
    digest.update(canonical_json(manifest.model_dump(mode="json")).encode("utf-8"))
    return digest.hexdigest()


def dosewise_version() -> str:
    """The installed `dosewise` version (tag `dosewise.version`)."""
    try:
        return version("dosewise")
    except PackageNotFoundError:  # pragma: no cover - bare source tree
        return "0+unknown"


def log_run_context(
    config: BaseModel | Mapping[str, Any],
    manifest: RunManifest,
    *,
    run_id: str,
    trajectories_dir: Path | None = None,
    tracking_uri: str | None = None,
) -> dict[str, str]:
    """Log params (flattened config), data/code tags and the dataset manifest; return the tags."""
    store, client = connect(tracking_uri)
    code = current_code_version()
    tags = {
        "dosewise.data_sha256": data_sha256(manifest, trajectories_dir),
        "dosewise.git_sha": code.git_sha or "unknown",
        "dosewise.git_dirty": str(code.dirty).lower(),
        "dosewise.version": dosewise_version(),
        "dosewise.dataset_kind": manifest.kind,
        "dosewise.config_sha256": hashlib.sha256(
            canonical_json(flatten_config(config)).encode("utf-8")
        ).hexdigest(),
    }
    if code.git_sha:
        tags["mlflow.source.git.commit"] = code.git_sha
    if trajectories_dir is not None:
        tags["dosewise.trajectories"] = str(Path(trajectories_dir).resolve())
    with tracking_errors(store, f"log the run context of run {run_id}"):
        from mlflow.entities import Param, RunTag

        params = [Param(k, v) for k, v in flatten_config(config).items()]
        client.log_batch(run_id, params=params, tags=[RunTag(k, v) for k, v in tags.items()])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MANIFEST_NAME
            path.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
            client.log_artifact(run_id, str(path), artifact_path="data")
    return tags


class MLflowAdapter:
    """d3rlpy `LoggerAdapter` writing one MLflow run; never interrupts training.

    A failed write is remembered in `failures` (and later writes are skipped) so the policy is
    still trained and saved locally; the caller reports the failure once training is done.
    """

    def __init__(
        self, client: MlflowClient, store: TrackingStore, run_id: str, *, owns_run: bool,
        algo: Any = None, log_checkpoints: bool = False, watch_gradients: bool = False,
    ) -> None:
        self.client, self.store, self.run_id = client, store, run_id
        self.owns_run = owns_run
        self.failures: list[str] = []
        self._algo = algo
        self._log_checkpoints = log_checkpoints
        self._watch_gradients = watch_gradients
        self._pending: list[Metric] = []
        self._unreachable = False

    def _safely(self, action: str, call: Any, *args: Any, **kwargs: Any) -> None:
        if self._unreachable:
            return  # do not wait on retries again for every logging interval
        try:
            with tracking_errors(self.store, action):
                call(*args, **kwargs)
        except TrackingError as exc:
            self._unreachable = True
            self.failures.append(str(exc))
        except Exception as exc:  # any failure of the tracker must not stop training
            self.failures.append(str(exc))

    def write_params(self, params: dict[str, Any]) -> None:
        """Log the trainer's params; keys the run already holds with another value go under `d3rlpy.`."""
        from mlflow.entities import Param

        def send() -> None:
            have = self.client.get_run(self.run_id).data.params
            flat = flatten_config(json.loads(json.dumps(params, default=str)))
            batch = [Param(k if have.get(k, v) == v else f"d3rlpy.{k}", v)
                     for k, v in flat.items() if have.get(k) != v]
            self.client.log_batch(self.run_id, params=batch)

        self._safely("log training params", send)

    def before_write_metric(self, epoch: int, step: int) -> None:
        """Start collecting one logging interval's metrics."""
        self._pending = []

    def write_metric(self, epoch: int, step: int, name: str, value: float) -> None:
        """Queue `train/<name>` (names with a namespace, e.g. `data/...`, as they are) at `step`."""
        from mlflow.entities import Metric

        key = name if "/" in name else f"{TRAIN_PREFIX}{name}"
        self._pending.append(Metric(key, float(value), int(time.time() * 1000), step))

    def after_write_metric(self, epoch: int, step: int) -> None:
        """Send the interval's metrics, plus `train/epoch`, in one request."""
        from mlflow.entities import Metric

        batch = [*self._pending, Metric(f"{TRAIN_PREFIX}epoch", float(epoch), int(time.time() * 1000), step)]
        self._pending = []
        self._safely("log training metrics", self.client.log_batch, self.run_id, metrics=batch)

    def save_model(self, epoch: int, algo: Any) -> None:
        """Log a full d3rlpy checkpoint as `checkpoints/model_<epoch>.d3` when enabled."""
        if not self._log_checkpoints:
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"model_{epoch}.d3"
            algo.save(str(path))
            self._safely("log a checkpoint", self.client.log_artifact, self.run_id, str(path), "checkpoints")

    def watch_model(self, epoch: int, step: int) -> None:
        """Log gradient mean and std per parameter as `train/grad/...` when enabled."""
        impl = getattr(self._algo, "impl", None)
        if not self._watch_gradients or impl is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = []
        for name, grad in impl.modules.get_gradients():
            batch.append(Metric(f"{TRAIN_PREFIX}grad/{name}_mean", float(grad.mean()), now, step))
            batch.append(Metric(f"{TRAIN_PREFIX}grad/{name}_std", float(grad.std()), now, step))
        self._safely("log gradients", self.client.log_batch, self.run_id, metrics=batch)

    def close(self) -> None:
        """End the run if this adapter started it."""
        if self.owns_run:
            status = "FAILED" if self.failures else "FINISHED"
            self._safely("end the run", self.client.set_terminated, self.run_id, status)


class MLflowAdapterFactory:
    """d3rlpy `LoggerAdapterFactory`: logs into `run_id`, or into a new run per `create` call.

    Pass `run_id` when the caller owns the run (as `dosewise train` does, to add the config,
    the policy folder and the plots to the same run); otherwise each `create` starts a run
    named after d3rlpy's experiment name and `close` ends it.
    """

    def __init__(
        self, run_id: str | None = None, *, tracking_uri: str | None = None,
        experiment: str | None = None, log_checkpoints: bool = False, watch_gradients: bool = False,
    ) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.log_checkpoints = log_checkpoints
        self.watch_gradients = watch_gradients
        self.adapters: list[MLflowAdapter] = []

    def create(self, algo: Any, experiment_name: str, n_steps_per_epoch: int) -> MLflowAdapter:
        """Open the adapter for one training run (called by d3rlpy or our training loop)."""
        store, client = connect(self.tracking_uri)
        owns = self.run_id is None
        if self.run_id is None:
            experiment_id = ensure_experiment(client, store, self.experiment)
            with tracking_errors(store, "create a run"):
                run_id = str(client.create_run(experiment_id, run_name=experiment_name).info.run_id)
        else:
            run_id = self.run_id
        with tracking_errors(store, f"tag run {run_id}"):
            client.set_tag(run_id, "dosewise.n_steps_per_epoch", str(n_steps_per_epoch))
        adapter = MLflowAdapter(
            client, store, run_id, owns_run=owns, algo=algo,
            log_checkpoints=self.log_checkpoints, watch_gradients=self.watch_gradients,
        )
        self.adapters.append(adapter)
        return adapter

    @property
    def failures(self) -> list[str]:
        """Tracking failures of every adapter created so far (empty when all writes succeeded)."""
        return [failure for adapter in self.adapters for failure in adapter.failures]
