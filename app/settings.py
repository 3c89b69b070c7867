"""`AppSettings`: where the review app finds data, the registry, the review database and the login.

Machine-specific values come from the environment (kedro's `conf/local` idea), never from shipped
configs; `dosewise review` sets them for the Streamlit process it starts.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dosewise.data_schemas import BadInputError

ENV_DATA_ROOT = "DOSEWISE_DATA_DIR"
ENV_REVIEW_DB = "DOSEWISE_REVIEW_DB_URL"
ENV_TRACKING = "MLFLOW_TRACKING_URI"
ENV_HOST = "DOSEWISE_REVIEW_HOST"
ENV_AUTH_REQUIRED = "DOSEWISE_AUTH_REQUIRED"
ENV_OIDC_METADATA = "DOSEWISE_OIDC_METADATA_URL"
ENV_OIDC_CLIENT_ID = "DOSEWISE_OIDC_CLIENT_ID"
ENV_OIDC_CLIENT_SECRET = "DOSEWISE_OIDC_CLIENT_SECRET"
ENV_OIDC_COOKIE_SECRET = "DOSEWISE_OIDC_COOKIE_SECRET"
ENV_OIDC_REDIRECT = "DOSEWISE_OIDC_REDIRECT_URI"
ENV_AUTH_SECRETS = "DOSEWISE_AUTH_SECRETS"

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_bind_host(host: str) -> str:
    """The one address the app binds, resolved once and given to both the exposure check and Streamlit.

    An empty host means every interface (what Streamlit makes of `--server.address=`), so it
    resolves to 0.0.0.0; a literal address is kept; a name is looked up, and the first
    non-loopback address it resolves to wins over loopback ones, so a name that reaches the
    network is treated as reaching it.

    >>> resolve_bind_host(""), resolve_bind_host("[::1]"), resolve_bind_host("127.0.0.1")
    ('0.0.0.0', '::1', '127.0.0.1')
    """
    name = host.strip().strip("[]")
    if not name:
        return "0.0.0.0"
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadInputError(
            f"--host must be an address or a name this machine can resolve. Got `{host}` ({exc}).",
            "Use --host 127.0.0.1 (this machine only), or a resolvable name with a login configured.",
        ) from exc
    addresses = [str(info[4][0]) for info in found]
    outside = [a for a in addresses if not is_loopback(a)]
    return (outside or addresses)[0]


class OidcSettings(BaseModel):
    """An OpenID Connect provider for Streamlit's `st.login` (the `[auth]` secrets section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server_metadata_url: str = Field(description="The provider's /.well-known/openid-configuration URL.")
    client_id: str = Field(min_length=1, description="OAuth client id registered with the provider.")
    client_secret: str = Field(min_length=1, description="OAuth client secret.")
    cookie_secret: str = Field(min_length=32, description="Secret that signs the identity cookie.")
    redirect_uri: str | None = Field(
        default=None, description="App URL ending in /oauth2callback (default: from host and port)."
    )


class AppSettings(BaseModel):
    """Everything the review app reads from its environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_root: Path = Field(description="Folder searched for datasets, policies and OPE reports.")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI (registry); default: `mlflow.db` in the data root."
    )
    review_db_url: str = Field(description="SQLAlchemy URL of the review database.")
    host: str = Field(default="127.0.0.1", description="Address the app listens on.")
    auth_required: bool = Field(default=False, description="True when a login must guard every page.")
    oidc: OidcSettings | None = Field(default=None, description="OIDC provider, when configured.")
    auth_secrets_file: Path | None = Field(
        default=None, description="A ready secrets.toml holding an [auth] section."
    )

    @property
    def auth_configured(self) -> bool:
        """True when a login provider is configured by environment or secrets file."""
        return self.oidc is not None or self.auth_secrets_file is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """Read the settings from environment variables (defaults: `./dosewise_out`, sqlite)."""
        env = os.environ if environ is None else environ
        data_root = Path(env.get(ENV_DATA_ROOT) or "dosewise_out").expanduser().resolve()
        review_db = env.get(ENV_REVIEW_DB) or f"sqlite:///{data_root / 'reviews.db'}"
        local_registry = data_root / "mlflow.db"
        tracking = env.get(ENV_TRACKING) or (
            f"sqlite:///{local_registry}" if local_registry.is_file() else None
        )
        oidc = None
        if env.get(ENV_OIDC_METADATA):
            missing = [k for k in (ENV_OIDC_CLIENT_ID, ENV_OIDC_CLIENT_SECRET) if not env.get(k)]
            if missing:
                raise BadInputError(
                    f"{ENV_OIDC_METADATA} is set but {', '.join(missing)} is not.",
                    "Set the OIDC client id and secret registered with your provider.",
                )
            oidc = OidcSettings(
                server_metadata_url=env[ENV_OIDC_METADATA],
                client_id=env[ENV_OIDC_CLIENT_ID],
                client_secret=env[ENV_OIDC_CLIENT_SECRET],
                cookie_secret=env.get(ENV_OIDC_COOKIE_SECRET) or os.urandom(32).hex(),
                redirect_uri=env.get(ENV_OIDC_REDIRECT) or None,
            )
        secrets = env.get(ENV_AUTH_SECRETS)
        return cls(
            data_root=data_root,
            tracking_uri=tracking,
            review_db_url=review_db,
            host=env.get(ENV_HOST, "127.0.0.1"),  # set but empty means every interface, not loopback
            auth_required=env.get(ENV_AUTH_REQUIRED, "") in {"1", "true", "yes"},
            oidc=oidc,
            auth_secrets_file=Path(secrets).expanduser().resolve() if secrets else None,
        )

    def check_exposure(self) -> str:
        """Refuse a non-loopback address without a login: reviews would be open to the network.

        Returns the resolved address (`resolve_bind_host`), the one to hand to Streamlit.
        """
        address = resolve_bind_host(self.host)
        if not is_loopback(address) and not self.auth_configured:
            given = "" if address == self.host else f" (--host `{self.host}`)"
            raise BadInputError(
                f"Refusing to listen on {address}{given} without a login: anyone on the network could "
                "read patient data and write reviews.",
                f"Use --host 127.0.0.1, or configure OIDC ({ENV_OIDC_METADATA}, {ENV_OIDC_CLIENT_ID}, "
                f"{ENV_OIDC_CLIENT_SECRET}) or {ENV_AUTH_SECRETS}.",
            )
        return address
