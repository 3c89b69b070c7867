"""`dosewise review-db-init`: prepare a PostgreSQL review database so the app's role has no DDL rights.

Run once by a database administrator. The tables, the append-only triggers and the hash chain are
created by the administrator's role, which keeps ownership; the app's role (created beforehand by
the administrator, e.g. `CREATE ROLE dosewise_app LOGIN PASSWORD '…'`) gets SELECT and INSERT
only. It then cannot drop or disable the triggers, alter the tables, update, delete or truncate.
`dosewise review` started with the app role's URL checks and prints this at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.console import cli_state, print_summary

if TYPE_CHECKING:
    from .review_store import ReviewStore


def provision_postgres(admin_url: str, app_role: str) -> ReviewStore:
    """Create the review tables as the administrator and grant `app_role` SELECT and INSERT only."""
    import sqlalchemy as sa  # imported here so that `dosewise --help` stays fast

    from .review_integrity import grant_statements
    from .review_store import ReviewStore

    store = ReviewStore(admin_url)
    if store.engine.dialect.name != "postgresql":
        raise BadInputError(
            f"--admin-url must be a PostgreSQL URL. Got `{store.display_url}`.",
            "SQLite has no roles: protect the file's permissions instead (README, Security).",
        )
    store.count()  # creates the tables and triggers under the administrator's role
    statements = grant_statements(app_role)
    with store.guard(f"grant {app_role} SELECT and INSERT"), store.engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": app_role}).first()
        if exists is None:
            raise BadInputError(
                f"The role `{app_role}` does not exist in {store.display_url}.",
                f"Create it first: CREATE ROLE {app_role} LOGIN PASSWORD '…';",
            )
        for statement in statements:
            conn.exec_driver_sql(statement)
    return store


def register(app: typer.Typer) -> None:
    """Add the `review-db-init` command to the root app."""

    @app.command("review-db-init")
    def review_db_init(
        ctx: typer.Context,
        admin_url: Annotated[str, typer.Option(help="PostgreSQL URL of a role that may create tables.")],
        app_role: Annotated[str, typer.Option(help="Existing role the review app connects as.")],
    ) -> None:
        """Create the PostgreSQL review tables so the app's role may only SELECT and INSERT."""
        store = provision_postgres(admin_url, app_role)
        report = store.check_integrity()
        rights = store.role_rights()
        print_summary("dosewise review-db-init", [
            ("database", store.display_url),
            ("tables owned by", rights.owner if rights else "?"),
            ("app role", f"{app_role}: SELECT, INSERT only"),
            ("reviews", f"{report.rows} (hash chain intact)"),
        ], quiet=cli_state(ctx).quiet)
