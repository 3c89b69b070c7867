"""Where runs and models are tracked: the default local sqlite store or any MLflow server.

With nothing configured, runs go to `sqlite:///<cwd>/mlflow.db` and artifacts to the pinned
folder `mlartifacts/` beside the database (MLflow's own default would scatter them into a
stray `./mlruns`). `MLFLOW_TRACKING_URI` or `--tracking-uri` selects any other store. HTTP
retries are bounded, so an unreachable server fails in seconds instead of minutes.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from dosewise.data_schemas import BadInputError, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_DB_NAME = "mlflow.db"
ARTIFACT_FOLDER = "mlartifacts"
DEFAULT_EXPERIMENT = "dosewise"
HEALTH_TIMEOUT_S = 5.0

# MLflow's defaults retry a dead server 7 times with exponential backoff (about four minutes).
# These apply only where the user has not set the variables themselves.
BOUNDED_HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # our own summaries say what was fetched
}
_MISSING_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
# How MLflow's REST client words a server that stopped answering (it wraps the requests error).
_CONNECTION_FAILURES = ("Max retries exceeded", "Connection refused", "Read timed out", "ConnectTimeout")
_BAD_INPUT_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"}
# The back ends MLflow's SQLAlchemy store accepts (mlflow.store.db.db_types), with or without +driver.
_DATABASE_SCHEMES = frozenset({"postgresql", "mysql", "mssql"})
_SCHEMES_HINT = (
    "sqlite:///FILE.db (a local file), a folder or file:///FOLDER, http(s)://HOST:PORT (an MLflow "
    "server), postgresql://, mysql:// or mssql:// (a database), or databricks"
)


@dataclass(frozen=True)
class TrackingStore:
    """A resolved tracking URI and, for local stores, the pinned artifact folder."""

    uri: str
    artifact_root: str | None

    @property
    def is_remote(self) -> bool:
        """True for an MLflow tracking server reached over HTTP(S)."""
        return urlparse(self.uri).scheme in {"http", "https"}


def local_store_uri(folder: Path) -> str:
    """The sqlite tracking URI of a store kept in `folder` (e.g. a demo's output folder)."""
    return f"sqlite:///{(Path(folder).resolve() / DEFAULT_DB_NAME).as_posix()}"


def resolve_store(tracking_uri: str | None = None) -> TrackingStore:
    """`tracking_uri`, else `MLFLOW_TRACKING_URI`, else the local sqlite store in the cwd."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri(Path.cwd())
    parsed = urlparse(uri)
    if parsed.scheme in {"http", "https", "databricks"}:
        return TrackingStore(uri=uri, artifact_root=None)
    if parsed.scheme == "sqlite":
        db_path = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
        if db_path is None or not str(db_path):
            raise BadInputError(
                f"Tracking URI `{uri}` names no database file.",
                "Use sqlite:////absolute/path/mlflow.db or sqlite:///relative/mlflow.db.",
            )
        _check_sqlite_store(uri, db_path)
        return TrackingStore(uri=uri, artifact_root=(db_path.parent.resolve() / ARTIFACT_FOLDER).as_uri())
    if parsed.scheme.split("+")[0] not in _DATABASE_SCHEMES | {"", "file"}:
        raise BadInputError(
            f"--tracking-uri (or MLFLOW_TRACKING_URI) must be one of {_SCHEMES_HINT}. Got `{uri}`.",
            "Leave both unset to track into ./mlflow.db.",
        )
    if parsed.scheme in {"", "file"}:
        # MLflow's file store keeps its artifacts inside the store folder itself.
        folder = Path(parsed.path if parsed.scheme == "file" else uri).resolve()
        return TrackingStore(uri=folder.as_uri(), artifact_root=None)
    # Other database back ends (postgresql, mysql, mssql): pin artifacts in the cwd.
    return TrackingStore(uri=uri, artifact_root=(Path.cwd() / ARTIFACT_FOLDER).resolve().as_uri())


def _check_sqlite_store(uri: str, db_path: Path) -> None:
    """Fail with a clear error now, not with a traceback from deep inside MLflow, when the tracking
    database's folder cannot be made or written, or the file is not an SQLite database."""
    hint = "Pass --tracking-uri sqlite:////a/writable/folder/mlflow.db, or leave it unset for ./mlflow.db."
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        if db_path.exists():
            with sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=rw", uri=True) as probe:
                probe.execute("PRAGMA schema_version").fetchone()
            probe.close()
        else:
            with tempfile.NamedTemporaryFile(dir=db_path.parent, prefix=".dosewise-probe-"):
                pass  # the folder takes new files: SQLite can create the database and its journal
    except (OSError, sqlite3.Error) as exc:
        why = f"{db_path.parent} takes no new files: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
        message = f"Cannot use the tracking database {db_path} from `{uri}` ({why})."
        raise BadInputError(message, hint) from exc


def bound_http_retries() -> None:
    """Cap MLflow's HTTP retries and timeout unless the user configured them."""
    for key, value in BOUNDED_HTTP_SETTINGS.items():
        os.environ.setdefault(key, value)


def check_reachable(store: TrackingStore, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Raise `TrackingError` within about `timeout_s` if a tracking server does not answer."""
    if not store.is_remote:
        return
    import requests

    url = store.uri.rstrip("/") + "/health"
    started = time.monotonic()
    try:
        response = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        raise _unreachable(store, f"{type(exc).__name__} after {time.monotonic() - started:.1f} s") from exc
    if response.status_code >= 500:
        raise _unreachable(store, f"HTTP {response.status_code} from {url}")


def _unreachable(store: TrackingStore, why: str) -> TrackingError:
    return TrackingError(
        f"MLflow tracking server {store.uri} is not reachable ({why}).",
        "Start it (mlflow server --host 127.0.0.1 --port 5000) or pass another --tracking-uri; "
        "without --tracking-uri and MLFLOW_TRACKING_URI runs go to ./mlflow.db. "
        "Outputs already written on disk are kept.",
    )


@contextmanager
def using_store(store: TrackingStore) -> Iterator[None]:
    """Point MLflow's fluent API (`mlflow.pyfunc.*`, `models:/` URIs) at `store` for a block."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    previous = tracking_utils._tracking_uri
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(store.uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


def connect(tracking_uri: str | None = None) -> tuple[TrackingStore, MlflowClient]:
    """Resolve the store, bound HTTP retries, check a server answers, return a client."""
    from mlflow import MlflowClient

    store = resolve_store(tracking_uri)
    bound_http_retries()
    check_reachable(store)
    with tracking_errors(store, "open the tracking store"):
        return store, MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)


def ensure_experiment(client: MlflowClient, store: TrackingStore, name: str | None = None) -> str:
    """Id of experiment `name` (default `MLFLOW_EXPERIMENT_NAME` or `dosewise`), created with
    the store's pinned artifact location when it does not exist."""
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    with tracking_errors(store, f"open experiment `{name}`"):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(client.create_experiment(name, artifact_location=store.artifact_root))


@contextmanager
def tracking_errors(store: TrackingStore, action: str) -> Iterator[None]:
    """Turn MLflow and network failures into Dosewise errors that say what to do."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", ""))
        message = _first_line(exc)
        if any(sign in str(exc) for sign in _CONNECTION_FAILURES):
            raise _unreachable(store, f"{action}: {message[:200]}") from exc
        if code in _MISSING_CODES:
            raise BadInputError(f"Could not {action}: {message}", _hint(store)) from exc
        if code in _BAD_INPUT_CODES:
            raise BadInputError(f"Could not {action}: {message}", "Check the names and ids given.") from exc
        raise TrackingError(f"Could not {action} in {store.uri}: {message}", _hint(store)) from exc
    except requests.RequestException as exc:
        raise _unreachable(store, _first_line(exc)) from exc


def _first_line(exc: Any) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


def _hint(store: TrackingStore) -> str:
    return f"Dosewise looked in {store.uri}; pass --tracking-uri (or MLFLOW_TRACKING_URI) for another store."
