"""`dosewise review` and the app settings: loopback-only without a login, OIDC secrets, clear refusals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise.app.auth import secrets_toml
from dosewise.app.cli import app
from dosewise.app.review_cli import review_command_line
from dosewise.app.settings import AppSettings, OidcSettings, is_loopback, resolve_bind_host
from dosewise.data_schemas import BadInputError

runner = CliRunner()
OIDC_ENV = {
    "DOSEWISE_OIDC_METADATA_URL": "http://127.0.0.1:9/.well-known/openid-configuration",
    "DOSEWISE_OIDC_CLIENT_ID": "dosewise",
    "DOSEWISE_OIDC_CLIENT_SECRET": "s3cret",
}


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("10.0.0.5", False), ("::", False), ("example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_settings_defaults_and_local_registry(tmp_path: Path) -> None:
    settings = AppSettings.from_env({"DOSEWISE_DATA_DIR": str(tmp_path)})
    assert settings.data_root == tmp_path.resolve()
    assert settings.review_db_url == f"sqlite:///{tmp_path.resolve() / 'reviews.db'}"
    assert settings.tracking_uri is None and not settings.auth_configured
    (tmp_path / "mlflow.db").touch()
    assert AppSettings.from_env({"DOSEWISE_DATA_DIR": str(tmp_path)}).tracking_uri == (
        f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    )
    explicit = AppSettings.from_env({"DOSEWISE_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": "http://x:5000"})
    assert explicit.tracking_uri == "http://x:5000"


def test_non_loopback_needs_a_login(tmp_path: Path) -> None:
    env = {"DOSEWISE_DATA_DIR": str(tmp_path), "DOSEWISE_REVIEW_HOST": "0.0.0.0"}
    with pytest.raises(BadInputError, match="without a login"):
        AppSettings.from_env(env).check_exposure()
    AppSettings.from_env({**env, **OIDC_ENV}).check_exposure()  # allowed with OIDC configured


def test_oidc_needs_client_id_and_secret(tmp_path: Path) -> None:
    env = {"DOSEWISE_DATA_DIR": str(tmp_path),
           "DOSEWISE_OIDC_METADATA_URL": OIDC_ENV["DOSEWISE_OIDC_METADATA_URL"]}
    with pytest.raises(BadInputError, match="DOSEWISE_OIDC_CLIENT_ID"):
        AppSettings.from_env(env)


def test_secrets_toml_is_streamlit_auth_section() -> None:
    oidc = OidcSettings(server_metadata_url="http://127.0.0.1:9/meta", client_id="c", client_secret='a"b',
                        cookie_secret="x" * 64)
    auth = tomllib.loads(secrets_toml(oidc, "127.0.0.1", 8600))["auth"]
    assert auth["redirect_uri"] == "http://127.0.0.1:8600/oauth2callback"
    assert auth["client_secret"] == 'a"b' and auth["server_metadata_url"] == "http://127.0.0.1:9/meta"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20"])
def test_cli_refuses_public_host_without_login(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in OIDC_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DOSEWISE_AUTH_SECRETS", raising=False)
    result = runner.invoke(app, ["review", "--host", host, "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert f"Refusing to listen on {host} without a login" in result.output
    assert "Hint:" in result.output


def test_cli_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["review", "--port", str(port), "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output


def test_cli_refuses_secrets_file_without_auth_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[other]\nx = 1\n")
    monkeypatch.setenv("DOSEWISE_AUTH_SECRETS", str(secrets))
    result = runner.invoke(app, ["review", "--host", "0.0.0.0", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert "no `auth` section" in " ".join(result.output.split())


def test_root_cli_does_not_import_streamlit() -> None:
    code = "import sys, dosewise.app.cli; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_review_command_line_for_the_demo(tmp_path: Path) -> None:
    root = tmp_path / "demo out"
    assert review_command_line(root, port=8600) == f"dosewise review --data-root '{root}' --port 8600"
    local = f"sqlite:///{root / 'mlflow.db'}"
    assert "--tracking-uri" not in review_command_line(root, tracking_uri=local)
    remote = review_command_line(root, tracking_uri="http://127.0.0.1:5000")
    assert remote.startswith("dosewise --tracking-uri http://127.0.0.1:5000 review --data-root")


def _without_login(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*OIDC_ENV, "DOSEWISE_AUTH_SECRETS"):
        monkeypatch.delenv(name, raising=False)


def test_empty_host_is_every_interface_and_needs_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_login(monkeypatch)
    settings = AppSettings.from_env({"DOSEWISE_DATA_DIR": str(tmp_path), "DOSEWISE_REVIEW_HOST": ""})
    assert settings.host == "" and resolve_bind_host("") == "0.0.0.0"
    with pytest.raises(BadInputError, match=r"Refusing to listen on 0\.0\.0\.0"):
        settings.check_exposure()
    result = runner.invoke(app, ["review", "--host", "", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert "Refusing to listen on 0.0.0.0 (--host ``) without a login" in " ".join(result.output.split())


def test_names_are_resolved_once_and_outside_addresses_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_login(monkeypatch)
    answers = {"review.example": ["127.0.0.1", "10.1.2.3"], "loop.example": ["127.0.0.1", "::1"]}
    real = socket.getaddrinfo

    def resolver(host: str, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host not in answers:
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)  # the DNS answer; everything else is real
    assert resolve_bind_host("loop.example") == "127.0.0.1"
    assert resolve_bind_host("review.example") == "10.1.2.3"
    result = runner.invoke(app, ["review", "--host", "review.example", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert "Refusing to listen on 10.1.2.3 (--host `review.example`)" in " ".join(result.output.split())
    with pytest.raises(BadInputError, match="must be an address or a name this machine can resolve"):
        resolve_bind_host("no-such-host.invalid")


_AUDIT = """
import ipaddress, json, sys
log = open(sys.argv[1], "a", buffering=1)
def hook(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple):
        log.write(json.dumps([event, str(args[1][0])]) + "\\n")
    elif event == "socket.getaddrinfo":
        log.write(json.dumps([event, str(args[0])]) + "\\n")
sys.addaudithook(hook)
sys.argv = ["dosewise", *sys.argv[2:]]
from dosewise.app.cli import main
main()
"""


def _foreign_origin_handshake(port: int) -> str:
    """A WebSocket upgrade from a page of another origin: Streamlit checks that origin against this
    machine's internal and external IPs, which it looks up (UDP towards 8.8.8.8, checkip.amazonaws.com)."""
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\nOrigin: http://foreign.example\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        return conn.recv(200).decode(errors="replace").split("\r\n")[0]


def test_startup_makes_no_outbound_call(tmp_path: Path) -> None:
    """Bound to every interface (login configured), Streamlit would look up its external IP at start-up,
    and both of its IPs whenever a page of a foreign origin connects."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events, out = tmp_path / "events.jsonl", tmp_path / "out.log"
    env = {**os.environ, **OIDC_ENV, "DOSEWISE_OIDC_COOKIE_SECRET": "c" * 64}
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", _AUDIT, str(events), "review", "--host", "0.0.0.0",
                                 "--port", str(port), "--data-root", str(tmp_path)],
                                stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, out.read_text()
        time.sleep(3)  # the start-up banner (and any lookup it makes) follows the health route
        status = _foreign_origin_handshake(port)
        assert " 101 " not in status, status  # the foreign origin is refused ...
        time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    hosts = {json.loads(line)[1] for line in events.read_text().splitlines()}
    outside = sorted(h for h in hosts if h and not is_loopback(h) and h not in {"0.0.0.0", "::"})
    assert outside == [], (outside, out.read_text()[-2000:])
    assert "gatherUsageStats" not in out.read_text()


def test_review_refuses_to_start_on_an_altered_review_database(tmp_path: Path) -> None:
    from dosewise.app.review_store import ReviewStore
    from tests.app.reviews import make_review

    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    store.append_many([make_review(step=s) for s in range(3)])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER clinician_reviews_no_update")
        conn.exec_driver_sql("UPDATE clinician_reviews SET comment = 'rewritten' WHERE step = 2")
    store.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(app, ["review", "--data-root", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "altered outside Dosewise: review row 3 fails the hash chain" in text and "Hint:" in text
