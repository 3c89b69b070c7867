"""Who is reviewing: Streamlit's native OIDC login (`st.login`) when configured, else loopback only.

With a login, every page is guarded and the reviewer identity is the logged-in user, never a text
box. Without one, `dosewise review` refuses any non-loopback address and every page says so.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dosewise.data_schemas import write_text_atomic

from .settings import AppSettings, OidcSettings


@dataclass(frozen=True)
class Reviewer:
    """The identity reviews are stored under."""

    identity: str
    display_name: str
    authenticated: bool


def secrets_toml(oidc: OidcSettings, host: str, port: int) -> str:
    """The `[auth]` secrets section Streamlit's `st.login` reads, for one OIDC provider."""
    redirect = oidc.redirect_uri or f"http://{_url_host(host)}:{port}/oauth2callback"
    values = {
        "redirect_uri": redirect,
        "cookie_secret": oidc.cookie_secret,
        "client_id": oidc.client_id,
        "client_secret": oidc.client_secret,
        "server_metadata_url": oidc.server_metadata_url,
    }
    lines = ["[auth]"] + [f"{key} = {_toml_string(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def write_secrets_file(oidc: OidcSettings, host: str, port: int, folder: Path) -> Path:
    """Write the `[auth]` secrets into a private file (mode 0600) for `streamlit run`."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = write_text_atomic(folder / "secrets.toml", secrets_toml(oidc, host, port))
    path.chmod(0o600)
    return path


def _url_host(host: str) -> str:
    if host in {"0.0.0.0", "::"}:
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def login_configured() -> bool:
    """True when Streamlit's secrets hold an `[auth]` section (so `st.login` works)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises its own not-found error
        return False


def require_reviewer(settings: AppSettings) -> Reviewer:
    """Guard the page behind the login when configured; return who is reviewing.

    Stops the script (nothing below renders) until the user has logged in.
    """
    if login_configured():
        if not st.user.get("is_logged_in", False):
            st.title("Dosewise clinician review")
            st.info("Please log in with your organisation's account to review recommendations.")
            st.button("Log in", type="primary", on_click=st.login, key="login_button")
            st.stop()
        identity = str(st.user.get("email") or st.user.get("preferred_username") or st.user.get("sub"))
        name = str(st.user.get("name") or identity)
        with st.sidebar:
            st.caption(f"Signed in as **{identity}**")
            st.button("Log out", on_click=st.logout, key="logout_button")
        return Reviewer(identity=identity, display_name=name, authenticated=True)
    if settings.auth_required:
        st.error(
            "A login was requested but Streamlit has no `[auth]` secrets section, so the app will "
            "not open. Restart `dosewise review` with the OIDC settings."
        )
        st.stop()
    st.warning(
        f"No login configured: this app listens on loopback ({settings.host}) only, so only this "
        "machine can reach it, and reviewers are identified by the name below, not by a login.",
        icon=":material/lock:",
    )
    default = st.session_state.get("local_reviewer") or _os_user()
    name = st.sidebar.text_input("Reviewer name (local mode)", value=default, key="local_reviewer")
    identity = (name or default).strip() or "local"
    return Reviewer(identity=f"local:{identity}", display_name=identity, authenticated=False)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"
