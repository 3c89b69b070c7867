"""The review database's tables, their append-only triggers and the hash chain's digest.

Two tables: `clinician_reviews` holds the reviews; `clinician_reviews_chain` holds, for each review
row, a SHA-256 that covers the row's content and the previous row's digest (a hash chain, as in
certificate-transparency logs). Editing, deleting or inserting a row behind the store's back breaks
the chain at that row, and `ReviewStore.verify` names it. Both tables refuse UPDATE and DELETE by
trigger; on PostgreSQL the app's role additionally gets no right to drop those triggers
(`dosewise review-db-init`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from dosewise.data_schemas import REVIEW_COLUMNS, DosewiseError
from dosewise.data_schemas.review import CHEMO_COLUMNS

TABLE = "clinician_reviews"
CHAIN_TABLE = "clinician_reviews_chain"
GENESIS = "0" * 64  # the "previous digest" of the first chained row


class ReviewStoreError(DosewiseError):
    """The review database could not be reached or refused the write."""


class ReviewConflictError(ReviewStoreError):
    """A review with this `review_id` is stored already, with different content."""


class ReviewIntegrityError(ReviewStoreError):
    """The stored reviews no longer match their hash chain: rows were edited, deleted or slipped in."""


metadata = sa.MetaData()
reviews_table = sa.Table(
    TABLE,
    metadata,
    sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("review_id", sa.String(64), nullable=False, unique=True),
    sa.Column("reviewer", sa.String(200), nullable=False, index=True),
    sa.Column("episode_id", sa.String(200), nullable=False, index=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("bin_start", sa.DateTime(timezone=True)),
    sa.Column("action_given", sa.Integer, nullable=False),
    sa.Column("action_recommended", sa.Integer, nullable=False),
    sa.Column("given_fluid_ml_4h", sa.Float),
    sa.Column("given_norepi_eq_mcg_kg_min", sa.Float),
    sa.Column("recommended_fluid_ml_4h", sa.Float),
    sa.Column("recommended_norepi_eq_mcg_kg_min", sa.Float),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("reviewer_fluid_ml_4h", sa.Float),  # NULL in chemotherapy reviews
    sa.Column("reviewer_norepi_eq_mcg_kg_min", sa.Float),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("policy_name", sa.String(200), nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("dataset_name", sa.String(500), nullable=False),
    sa.Column("dataset_sha256", sa.String(64), nullable=False),
    # Chemotherapy reviews (added after the sepsis columns; older databases get them by ADD COLUMN).
    sa.Column("given_dose_pct_of_planned", sa.Float),
    sa.Column("given_delay_days", sa.Float),
    sa.Column("recommended_rdi_fraction", sa.Float),
    sa.Column("reviewer_dose_pct_of_planned", sa.Float),
    sa.Column("reviewer_delay_days", sa.Integer),
)
chain_table = sa.Table(
    CHAIN_TABLE,
    metadata,
    sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("chain_sha256", sa.String(64), nullable=False),
)
TABLES = (reviews_table, chain_table)


def _sqlite_append_only(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
        "BEGIN SELECT RAISE(ABORT, 'clinician reviews are append-only'); END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
        "BEGIN SELECT RAISE(ABORT, 'clinician reviews are append-only'); END",
    ]


_POSTGRES_FUNCTION = (
    f"CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'clinician reviews are append-only'; END; $$"
)


def _postgres_append_only(table: str) -> list[str]:
    return [
        f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()",
    ]


APPEND_ONLY: dict[str, list[str]] = {
    "sqlite": [s for t in (TABLE, CHAIN_TABLE) for s in _sqlite_append_only(t)],
    "postgresql": [_POSTGRES_FUNCTION] + [s for t in (TABLE, CHAIN_TABLE) for s in _postgres_append_only(t)],
}
#: Triggers that must exist, per dialect, for the store to call itself append-only.
TRIGGER_NAMES: dict[str, set[str]] = {
    "sqlite": {f"{t}_{kind}" for t in (TABLE, CHAIN_TABLE) for kind in ("no_update", "no_delete")},
    "postgresql": {f"{t}_append_only" for t in (TABLE, CHAIN_TABLE)},
}


def _canonical_value(value: Any) -> Any:
    """One spelling per value whatever the driver returns (SQLite gives naive UTC datetimes)."""
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None).isoformat(timespec="microseconds")
    if isinstance(value, float):
        return repr(value)
    return value


def canonical_review(values: Mapping[Any, Any], *, only: str | None = None) -> str:
    """The review's stored fields (or field `only`) as canonical JSON with sorted keys, spelled the
    same whether they come from a validated form or from a database row. The chemotherapy columns
    enter only where they hold a value, so a sepsis review's digest is the one it had before they
    existed (chains written by earlier versions still verify)."""
    names = REVIEW_COLUMNS if only is None else (only,)
    content = {name: _canonical_value(values[name]) for name in names
               if not (name in CHEMO_COLUMNS and values[name] is None and only is None)}
    return json.dumps(content, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def added_column_statements(present: set[str], dialect: Any) -> list[str]:
    """ALTER TABLE statements for review columns a database made by an earlier version lacks."""
    return [f"ALTER TABLE {TABLE} ADD COLUMN {col.name} {col.type.compile(dialect=dialect)}"
            for col in reviews_table.columns if col.name not in present]


def chain_digest(previous: str, row_id: int, canonical: str) -> str:
    """SHA-256 over the previous digest, the row id and the row's canonical content."""
    return hashlib.sha256(f"{previous}\n{row_id}\n{canonical}".encode()).hexdigest()
