"""`dosewise review`: start the packaged Streamlit clinician review app.

Without a login the app binds to loopback only; a non-loopback `--host` needs an OIDC provider
(`st.login`), configured through the environment (see `dosewise.app.settings`). Streamlit is
imported inside the command body so that `dosewise --help` stays fast.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import socket
import tempfile
import tomllib
from importlib.resources import as_file, files
from pathlib import Path
from typing import Annotated

import typer

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.console import cli_state, print_summary

from .settings import (
    ENV_AUTH_REQUIRED,
    ENV_DATA_ROOT,
    ENV_HOST,
    ENV_REVIEW_DB,
    ENV_TRACKING,
    AppSettings,
)


def _check_port_free(host: str, port: int) -> None:
    """Fail early, with a hint, when another program holds the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BadInputError(
                f"Cannot listen on {host}:{port} ({exc.strerror}).",
                "Pass another --port, or stop the program that uses this one.",
            ) from exc


def _auth_secrets(settings: AppSettings, host: str, port: int, folder: Path) -> Path | None:
    """The secrets file holding the `[auth]` section for `st.login`, or None without a login."""
    if settings.auth_secrets_file is not None:
        path = settings.auth_secrets_file
        try:
            auth = tomllib.loads(path.read_text(encoding="utf-8")).get("auth")
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BadInputError(f"Cannot read the secrets file {path}: {exc}.",
                                "Point DOSEWISE_AUTH_SECRETS at a readable secrets.toml.") from exc
        if not isinstance(auth, dict):
            raise BadInputError(f"{path} has no `auth` section.",
                                "Add Streamlit's `auth` table (redirect_uri, cookie_secret, client_id, "
                                "client_secret, server_metadata_url).")
        return path
    if settings.oidc is not None:
        from .auth import write_secrets_file

        return write_secrets_file(settings.oidc, host, port, folder)
    return None


def review_command_line(data_root: Path, *, port: int = 8501, tracking_uri: str | None = None) -> str:
    """The shell command that opens the review app on `data_root` (for `dosewise demo` to print).

    The registry is found as `mlflow.db` in the data root; another store is passed explicitly.

    >>> review_command_line(Path("/tmp/out"))
    'dosewise review --data-root /tmp/out --port 8501'
    """
    root = Path(data_root).expanduser().resolve()
    parts = ["dosewise"]
    if tracking_uri and tracking_uri != f"sqlite:///{root / 'mlflow.db'}":
        parts += ["--tracking-uri", shlex.quote(tracking_uri)]
    parts += ["review", "--data-root", shlex.quote(str(root)), "--port", str(port)]
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    """Add the `review` and `review-db-init` commands to the root app."""
    from .review_db_cli import register as register_db_init

    register_db_init(app)

    @app.command("review")
    def review(
        ctx: typer.Context,
        port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8501,
        host: Annotated[
            str, typer.Option(help="Address to listen on; anything but loopback needs a login (OIDC).")
        ] = "127.0.0.1",
        data_root: Annotated[
            Path, typer.Option(envvar=ENV_DATA_ROOT, help="Folder searched for datasets, policies, reports.")
        ] = Path("dosewise_out"),
        review_db: Annotated[
            str | None,
            typer.Option(envvar=ENV_REVIEW_DB, help="SQLAlchemy URL of the review database "
                                                    "(default: sqlite file reviews.db in the data root)."),
        ] = None,
    ) -> None:
        """Start the clinician review app (Streamlit) on the datasets and policies under --data-root."""
        state = cli_state(ctx)
        env = dict(os.environ)
        env[ENV_DATA_ROOT] = str(data_root.expanduser().resolve())
        env[ENV_HOST] = host
        if review_db:
            env[ENV_REVIEW_DB] = review_db
        if state.tracking_uri:
            env[ENV_TRACKING] = state.tracking_uri
        bind = AppSettings.from_env(env).check_exposure()  # resolved once: checked and bound alike
        env[ENV_HOST] = bind
        settings = AppSettings.from_env(env)
        _check_port_free(bind, port)
        guarantee = _open_review_store(settings.review_db_url)
        url_host = _url_host(host, bind)
        with tempfile.TemporaryDirectory(prefix="dosewise-review-") as private:
            _serve(settings, env, (bind, url_host, port), Path(private), guarantee, quiet=state.quiet)


def _url_host(requested: str, bind: str) -> str:
    """The host in the app's URL: the name asked for, else the address (localhost for a wildcard)."""
    name = requested.strip().strip("[]")
    if name and name != bind and not _is_address(name):
        return name
    if bind in {"0.0.0.0", "::"}:
        return "localhost"
    return f"[{bind}]" if ":" in bind else bind


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _open_review_store(url: str) -> str:
    """Open the review database, verify its hash chain (refusing to start when it is broken),
    and say what protects the reviews."""
    from .review_store import ReviewStore

    store = ReviewStore(url)
    try:
        return store.guarantee(store.check_integrity())
    finally:
        store.dispose()


def _no_ip_lookups() -> None:
    """Stop Streamlit's own look-ups of this machine's addresses, which reach outside hosts.

    Streamlit (1.67, `web/server/server_util.is_url_from_allowed_origins`) checks the Origin of a
    cross-origin WebSocket against localhost, `browser.serverAddress`, then this machine's internal
    IP (`net_util.get_internal_ip`: a UDP connect towards 8.8.8.8) and external IP
    (`net_util.get_external_ip`: HTTP to checkip.amazonaws.com), then `server.corsAllowedOrigins`.
    No option skips the two look-ups short of `server.enableCORS=false`, which would admit every
    origin. A page from a foreign origin could thus make the app call out on each connection. The
    look-ups answer "unknown" instead: a foreign origin is then refused unless it is localhost, the
    server address or listed in `server.corsAllowedOrigins`, and nothing leaves the machine.
    """
    from streamlit import net_util

    def unknown() -> str | None:
        return None

    net_util.get_internal_ip = unknown
    net_util.get_external_ip = unknown


def _serve(settings: AppSettings, env: dict[str, str], where: tuple[str, str, int], private: Path,
           guarantee: str, *, quiet: bool) -> None:
    """Write the login secrets (if any), export the settings, and run Streamlit until stopped."""
    bind, url_host, port = where
    secrets = _auth_secrets(settings, url_host.strip("[]"), port, private)
    env[ENV_AUTH_REQUIRED] = "1" if secrets else "0"
    os.environ.update(env)
    print_summary("dosewise review", [
        ("open", f"http://{url_host}:{port}"),
        ("listens on", f"{bind}:{port}" + ("" if secrets else " (loopback only: no login)")),
        ("data root", settings.data_root),
        ("review database", settings.review_db_url),
        ("reviews", guarantee),
        ("registry", settings.tracking_uri or "default local store"),
        ("login", "OIDC (st.login)" if secrets else "none: loopback only"),
    ], quiet=quiet)
    from streamlit.web import cli as streamlit_cli

    _no_ip_lookups()
    # browser.serverAddress set by hand stops Streamlit's start-up lookup of the external IP
    # (an HTTP call to checkip.amazonaws.com); gatherUsageStats=false stops its usage statistics.
    flags = [
        "--server.headless=true", f"--server.address={bind}", f"--server.port={port}",
        f"--browser.serverAddress={url_host.strip('[]')}", "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none", "--server.runOnSave=false", "--client.toolbarMode=minimal",
    ]
    if secrets is not None:
        flags.append(f"--secrets.files={secrets}")
    with as_file(files("dosewise.app") / "streamlit_app.py") as script:
        args = ["run", str(script), *flags]
        streamlit_cli.main.main(args=args, prog_name="streamlit", standalone_mode=False)
