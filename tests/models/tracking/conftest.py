"""Real MLflow for the tracking tests: a `mlflow server` on a loopback port, and local stores."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

SERVER_START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (it was started in its own session) by its PID."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` (sqlite backend, one worker, proxied artifacts) on a free loopback port."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed in teardown
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited early: {(root / 'server.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer /health within {SERVER_START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield uri
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def dead_server_uri() -> str:
    """A loopback URL where no tracking server listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def icu_trajectories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ICU-Sepsis trajectories folder (real MDP dynamics, clinicians' behaviour)."""
    from dosewise.pipelines import write_icu_sepsis_episodes

    out = tmp_path_factory.mktemp("icu_sepsis")
    write_icu_sepsis_episodes(out, n_episodes=300, behaviour="clinician", seed=0)
    return out
