"""Tracking stores: the pinned local default, any server by URI, bounded failure when unreachable."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dosewise.data_schemas import BadInputError, TrackingError
from dosewise.models.tracking.runs import start_run
from dosewise.models.tracking.stores import (
    ARTIFACT_FOLDER,
    BOUNDED_HTTP_SETTINGS,
    connect,
    local_store_uri,
    resolve_store,
)


def test_default_store_is_sqlite_in_cwd_with_pinned_artifacts_and_no_mlruns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = resolve_store()
    assert store.uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert store.artifact_root == (tmp_path.resolve() / ARTIFACT_FOLDER).as_uri()
    _, run_id = start_run(run_name="default-store")
    from mlflow import MlflowClient

    client = MlflowClient(store.uri)
    note = tmp_path / "note.txt"
    note.write_text("hello")
    client.log_artifact(run_id, str(note), "notes")
    assert (tmp_path / "mlflow.db").is_file()
    assert list((tmp_path / ARTIFACT_FOLDER).rglob("note.txt"))
    assert not (tmp_path / "mlruns").exists()


def test_env_var_and_explicit_uri_win_over_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_uri = local_store_uri(tmp_path / "from_env")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    assert resolve_store().uri == env_uri
    explicit = local_store_uri(tmp_path / "explicit")
    store = resolve_store(explicit)
    assert store.uri == explicit
    assert store.artifact_root == (tmp_path / "explicit" / ARTIFACT_FOLDER).resolve().as_uri()
    assert resolve_store("http://127.0.0.1:5000").artifact_root is None  # the server decides


def test_unreachable_server_fails_fast_with_a_tracking_error(
    dead_server_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in BOUNDED_HTTP_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    started = time.monotonic()
    with pytest.raises(TrackingError) as info:
        start_run(dead_server_uri, run_name="never")
    assert time.monotonic() - started < 15
    assert dead_server_uri in info.value.message
    assert "--tracking-uri" in info.value.hint
    key = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
    assert os.environ[key] == BOUNDED_HTTP_SETTINGS[key]


def test_user_http_settings_are_respected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    connect(local_store_uri(tmp_path))
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_server_store_creates_runs_through_http(mlflow_server: str) -> None:
    store, client = connect(mlflow_server)
    assert store.is_remote
    _, run_id = start_run(mlflow_server, run_name="over-http")
    assert client.get_run(run_id).info.run_name == "over-http"


@pytest.mark.parametrize("uri", ["foo://bar", "s3://bucket/runs", "postgres-typo://u@h/db"])
def test_unknown_scheme_names_the_schemes_that_work(uri: str) -> None:
    with pytest.raises(BadInputError, match=r"must be one of sqlite:///FILE\.db .*http\(s\)://.*postgresql://"):
        resolve_store(uri)


def test_unusable_sqlite_store_is_a_clear_error(tmp_path: Path) -> None:
    for uri in ("sqlite:////proc/mlflow.db", "sqlite:////proc/no/such/mlflow.db"):
        with pytest.raises(BadInputError, match="Cannot use the tracking database"):
            resolve_store(uri)
    not_a_db = tmp_path / "mlflow.db"
    not_a_db.write_text("plain text, not SQLite")
    with pytest.raises(BadInputError, match="file is not a database"):
        resolve_store(f"sqlite:///{not_a_db}")
    assert resolve_store(f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}").uri.endswith("new/mlflow.db")
    assert not (tmp_path / "new" / "mlflow.db").exists()  # checking creates nothing but the folder
    for known in ("postgresql+psycopg2://u@h/db", "mysql://u@h/db", "databricks", "file:///tmp/runs"):
        resolve_store(known)


@pytest.mark.parametrize(("uri", "says"), [
    ("foo://bar", "must be one of sqlite:///FILE.db"),
    ("sqlite:////proc/mlflow.db", "Cannot use the tracking database /proc/mlflow.db"),
])
def test_cli_bad_tracking_uri_is_one_line_and_exit_2(uri: str, says: str) -> None:
    from typer.testing import CliRunner

    from dosewise.app.cli import app

    result = CliRunner().invoke(app, ["--tracking-uri", uri, "promote", "--name", "m", "--version", "1"])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()) and "Traceback" not in result.output
