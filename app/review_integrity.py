"""What the review store can prove about itself: the hash chain, and (PostgreSQL) the app role's rights.

`verify_chain` recomputes every review's chained digest and names the first row that was edited,
deleted or inserted behind the store's back. `role_rights` says whether the connected PostgreSQL
role could remove the append-only triggers (it owns the tables, or is a superuser); and
`provision_postgres` sets up the tables as an administrator so that the app's role can only
SELECT and INSERT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dosewise.data_schemas import REVIEW_COLUMNS

from .review_tables import (
    CHAIN_TABLE,
    GENESIS,
    TABLE,
    ReviewConflictError,
    canonical_review,
    chain_digest,
    chain_table,
    reviews_table,
)

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_CONFLICT_IGNORES = ("reviewed_at",)  # a retried submission may carry a new time, nothing else


@dataclass(frozen=True)
class ChainReport:
    """The outcome of recomputing the hash chain over every stored review."""

    rows: int
    head: str
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        """True when every row's digest matched."""
        return self.broken_at is None


def verify_chain(conn: Connection) -> ChainReport:
    """Recompute the chain in row order; stop at the first row edited, deleted or slipped in."""
    columns = [reviews_table.c.row_id, *[reviews_table.c[name] for name in REVIEW_COLUMNS]]
    reviews = {int(r["row_id"]): r for r in conn.execute(sa.select(*columns)).mappings().all()}
    chained = {
        int(i): str(d) for i, d in conn.execute(sa.select(chain_table.c.row_id, chain_table.c.chain_sha256))
    }
    previous, count = GENESIS, 0
    for row_id in sorted(reviews.keys() | chained.keys()):
        stored, row = chained.get(row_id), reviews.get(row_id)
        if row is None:
            return ChainReport(
                count, previous, row_id, "its chain entry remains but the review is gone (deleted)"
            )
        if stored is None:
            return ChainReport(count, previous, row_id, "it has no chain entry (inserted outside Dosewise)")
        if stored != chain_digest(previous, row_id, canonical_review(row)):
            return ChainReport(count, previous, row_id, "its content no longer matches its digest (edited)")
        previous, count = stored, count + 1
    return ChainReport(count, previous)


def last_digest(conn: Connection) -> str:
    """The chain's head: the digest of the newest review, or the genesis value."""
    query = sa.select(chain_table.c.chain_sha256).order_by(chain_table.c.row_id.desc()).limit(1)
    return conn.execute(query).scalar_one_or_none() or GENESIS


@dataclass(frozen=True)
class RoleRights:
    """Whether the connected PostgreSQL role could undo the append-only rule."""

    role: str
    owner: str
    superuser: bool
    can_ddl: bool


def role_rights(conn: Connection) -> RoleRights:
    """The connected role, the tables' owner, and whether this role could drop the triggers."""
    row = (
        conn.execute(
            sa.text(
                "SELECT current_user AS role, t.tableowner AS owner, r.rolsuper AS superuser, "
                "pg_has_role(current_user, t.tableowner, 'USAGE') AS member "
                "FROM pg_tables t JOIN pg_roles r ON r.rolname = current_user "
                "WHERE t.tablename = :table AND t.schemaname = current_schema()"
            ),
            {"table": TABLE},
        )
        .mappings()
        .one()
    )
    can_ddl = bool(row["superuser"]) or bool(row["member"])
    return RoleRights(str(row["role"]), str(row["owner"]), bool(row["superuser"]), can_ddl)


def check_role_name(role: str) -> str:
    """A plain lower-case PostgreSQL role name (it is spliced into GRANT statements)."""
    if not _ROLE_NAME.match(role):
        from dosewise.data_schemas import BadInputError

        raise BadInputError(
            f"--app-role must be a lower-case PostgreSQL role name (letters, digits, _). Got `{role}`.",
            "Create the role first: CREATE ROLE dosewise_app LOGIN PASSWORD '…'.",
        )
    return role


def grant_statements(role: str) -> list[str]:
    """SELECT and INSERT for `role`, nothing else; the tables stay owned by the administrator."""
    role = check_role_name(role)
    return [
        f"REVOKE ALL ON {TABLE}, {CHAIN_TABLE} FROM PUBLIC",
        f"REVOKE ALL ON {TABLE}, {CHAIN_TABLE} FROM {role}",
        f"GRANT SELECT, INSERT ON {TABLE}, {CHAIN_TABLE} TO {role}",
        f"GRANT USAGE ON SEQUENCE {TABLE}_row_id_seq TO {role}",
    ]


def chain_unchained(conn: Connection) -> int:
    """Chain the reviews that have no chain entry yet, in row order (a store from before the chain)."""
    done = sa.select(chain_table.c.row_id)
    columns = [reviews_table.c.row_id, *[reviews_table.c[name] for name in REVIEW_COLUMNS]]
    query = sa.select(*columns).where(reviews_table.c.row_id.not_in(done)).order_by(reviews_table.c.row_id)
    previous, count = last_digest(conn), 0
    for row in conn.execute(query).mappings().all():
        previous = chain_digest(previous, int(row["row_id"]), canonical_review(row))
        conn.execute(chain_table.insert().values(row_id=int(row["row_id"]), chain_sha256=previous))
        count += 1
    return count


@dataclass(frozen=True)
class PresentObjects:
    """The review tables and append-only triggers found in the database."""

    tables: set[str]
    triggers: set[str]
    columns: set[str] = field(default_factory=set)  # of the reviews table
    not_null: set[str] = field(default_factory=set)


def present_objects(conn: Connection) -> PresentObjects:
    """The review tables and append-only triggers that exist already."""
    tables = {name for name in (TABLE, CHAIN_TABLE) if sa.inspect(conn).has_table(name)}
    columns, not_null = set(), set()
    if TABLE in tables:
        described = sa.inspect(conn).get_columns(TABLE)
        columns = {str(col["name"]) for col in described}
        not_null = {str(col["name"]) for col in described if not col["nullable"]}
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    elif conn.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        return PresentObjects(tables, set(), columns, not_null)
    triggers = {str(name) for name in conn.exec_driver_sql(query).scalars()}
    return PresentObjects(tables, triggers, columns, not_null)


def is_new_review(conn: Connection, row: dict[str, Any]) -> bool:
    """False when this exact review is stored already; raises when its id holds other content."""
    columns = [reviews_table.c[name] for name in REVIEW_COLUMNS]
    stored = conn.execute(sa.select(*columns).where(reviews_table.c.review_id == row["review_id"])).mappings()
    found = stored.first()
    if found is None:
        return True
    differing = [
        name
        for name in REVIEW_COLUMNS
        if name not in _CONFLICT_IGNORES
        and canonical_review(found, only=name) != canonical_review(row, only=name)
    ]
    if not differing:
        return False
    raise ReviewConflictError(
        f"Review {row['review_id']} is stored already with different {', '.join(differing)}; reviews are "
        "append-only, so the first submission stands and this one was not stored.",
        "Submit the changed judgement as a new review (reload the page for a fresh form).",
    )


def guarantee_line(
    report: ChainReport, restored: set[str], started_over: int, rights: RoleRights | None
) -> str:
    """What protects the reviews right now, in one line (the start-up summary)."""
    parts = [f"append-only (triggers); hash chain intact over {report.rows} reviews, head {report.head[:16]}"]
    if restored:
        parts.append(f"WARNING: trigger(s) {', '.join(sorted(restored))} were missing and are restored")
    if started_over:
        parts.append(f"chain started now over {started_over} earlier reviews")
    if rights is None:
        parts.append("anyone who can write the database file can drop the triggers")
    elif rights.can_ddl:
        parts.append(
            f"WARNING: role {rights.role} could drop the triggers (it owns the tables or is a "
            "superuser); run `dosewise review-db-init` and connect as an app role"
        )
    else:
        parts.append(f"role {rights.role} may only SELECT and INSERT (tables owned by {rights.owner})")
    return "; ".join(parts)
