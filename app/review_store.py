"""Append-only clinician reviews in a real database through SQLAlchemy.

A SQLite file in WAL mode by default (readers never block the writer; a busy timeout queues
concurrent writers instead of failing them), any SQLAlchemy URL (PostgreSQL) by configuration.
Rows are only ever inserted: the store has no update or delete, and on SQLite and PostgreSQL
triggers refuse both.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from dosewise.data_schemas import (
    REVIEW_COLUMNS,
    BadInputError,
    ClinicianReviewSchema,
    DosewiseError,
    write_table_atomic,
    write_text_atomic,
)

TABLE = "clinician_reviews"
_BUSY_TIMEOUT_MS = 30_000
_SCHEMA_LOCK_KEY = 0x646F7365  # "dose": PostgreSQL advisory lock taken while creating the schema


class ReviewStoreError(DosewiseError):
    """The review database could not be reached or refused the write."""


_metadata = sa.MetaData()
reviews_table = sa.Table(
    TABLE,
    _metadata,
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
    sa.Column("reviewer_fluid_ml_4h", sa.Float, nullable=False),
    sa.Column("reviewer_norepi_eq_mcg_kg_min", sa.Float, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("policy_name", sa.String(200), nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("dataset_name", sa.String(500), nullable=False),
    sa.Column("dataset_sha256", sa.String(64), nullable=False),
)

_SQLITE_APPEND_ONLY = [
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'clinician reviews are append-only'); END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'clinician reviews are append-only'); END",
]

_POSTGRES_APPEND_ONLY = [
    f"CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'clinician reviews are append-only'; END; $$",
    f"CREATE OR REPLACE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()",
]
_APPEND_ONLY = {"sqlite": _SQLITE_APPEND_ONLY, "postgresql": _POSTGRES_APPEND_ONLY}


def _sqlite_pragmas(journal_mode: str) -> Any:
    """WAL lets readers run beside one writer; busy_timeout makes writers wait, not fail."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA journal_mode={journal_mode}")
        cursor.execute("PRAGMA synchronous=NORMAL" if journal_mode == "wal" else "PRAGMA synchronous=FULL")
        cursor.close()

    return on_connect


def _redacted(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


class ReviewStore:
    """Append and read clinician reviews at one SQLAlchemy URL."""

    def __init__(self, url: str, sqlite_journal_mode: str = "wal") -> None:
        """Args:
            url: SQLAlchemy URL, e.g. `sqlite:///reviews.db` or `postgresql+psycopg://u@host/db`.
            sqlite_journal_mode: `wal` (default); `delete` (SQLite's rollback journal) only to
                compare in `bench/review_load.py`.
        """
        if sqlite_journal_mode not in {"wal", "delete"}:
            raise BadInputError(f"Unknown SQLite journal mode `{sqlite_journal_mode}`.", "Use wal or delete.")
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise BadInputError(
                f"`{url}` is not a database URL.",
                "Use e.g. sqlite:///reviews.db or postgresql+psycopg://user@host/db.",
            ) from exc
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._folder: Path | None = None
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            if parsed.database and parsed.database != ":memory:":
                self._folder = Path(parsed.database).expanduser().parent
        try:
            self.engine: Engine = sa.create_engine(parsed, **kwargs)
        except ImportError as exc:
            raise BadInputError(
                f"No database driver for `{parsed.drivername}` is installed ({exc.name}).",
                "Use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB, or install the driver.",
            ) from exc
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas(sqlite_journal_mode))
        self._ready = False

    def _ensure_schema(self, attempts: int = 3) -> None:
        """Create the table and its append-only triggers on first use (idempotent, race-safe)."""
        if self._ready:
            return
        if self._folder is not None:
            try:
                self._folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ReviewStoreError(
                    f"Cannot create the folder {self._folder} for the review database ({exc.strerror}).",
                    "Point DOSEWISE_REVIEW_DB_URL at a writable location.",
                ) from exc
        for attempt in range(attempts):
            try:
                with self._guard("prepare the review table"), self.engine.begin() as conn:
                    # Several writers may open a fresh database at once: PostgreSQL serialises the DDL
                    # on an advisory lock (concurrent CREATE OR REPLACE deadlocks); SQLite's single
                    # writer lock and IF NOT EXISTS make the rest idempotent.
                    if self.engine.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
                    conn.execute(CreateTable(reviews_table, if_not_exists=True))
                    for index in reviews_table.indexes:
                        conn.execute(CreateIndex(index, if_not_exists=True))
                    for statement in _APPEND_ONLY.get(self.engine.dialect.name, []):
                        conn.exec_driver_sql(statement)
                break
            except ReviewStoreError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        self._ready = True

    @property
    def display_url(self) -> str:
        """The database URL with any password hidden."""
        return _redacted(self.url)

    def _guard(self, what: str) -> _Guard:
        return _Guard(self.url, what)

    def append(self, review: ClinicianReviewSchema, retries: int = 5) -> None:
        """Insert one validated review; resubmitting the same `review_id` is a no-op."""
        if not isinstance(review, ClinicianReviewSchema):
            raise BadInputError("Only a ClinicianReviewSchema can be stored.", "Validate the form first.")
        self._ensure_schema()
        row = review.model_dump()
        for attempt in range(retries + 1):
            try:
                with self._guard("store the review"), self.engine.begin() as conn:
                    conn.execute(reviews_table.insert().values(**row))
                return
            except ReviewStoreError as exc:
                if isinstance(exc.__cause__, IntegrityError) and self._exists(review.review_id):
                    return
                locked = isinstance(exc.__cause__, OperationalError) and "locked" in str(exc.__cause__)
                if not locked or attempt == retries:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def append_many(self, reviews: Iterable[ClinicianReviewSchema]) -> int:
        """Insert several reviews one transaction each; returns how many were stored."""
        count = 0
        for review in reviews:
            self.append(review)
            count += 1
        return count

    def _exists(self, review_id: str) -> bool:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(reviews_table.c.review_id == review_id)
            return bool(conn.execute(query).scalar_one())

    def count(self) -> int:
        """Number of stored reviews."""
        self._ensure_schema()
        with self._guard("count reviews"), self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(reviews_table)).scalar_one())

    def read(self, episode_id: str | None = None, reviewer: str | None = None) -> pd.DataFrame:
        """Stored reviews, oldest first, optionally for one stay or one reviewer."""
        self._ensure_schema()
        query = sa.select(*[reviews_table.c[name] for name in REVIEW_COLUMNS]).order_by(
            reviews_table.c.row_id
        )
        if episode_id is not None:
            query = query.where(reviews_table.c.episode_id == episode_id)
        if reviewer is not None:
            query = query.where(reviews_table.c.reviewer == reviewer)
        with self._guard("read reviews"), self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        frame = pd.DataFrame([dict(r) for r in rows], columns=list(REVIEW_COLUMNS))
        for name in ("reviewed_at", "bin_start"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        for column in reviews_table.columns:
            if isinstance(column.type, sa.Float) and column.name in frame:
                frame[column.name] = frame[column.name].astype("float64")
        return frame

    def export(self, path: Path) -> Path:
        """Write every review to `path` (.csv or .parquet), atomically."""
        path = Path(path)
        frame = self.read()
        if path.suffix == ".parquet":
            return write_table_atomic(frame, path)
        if path.suffix == ".csv":
            return write_text_atomic(path, frame.to_csv(index=False))
        raise BadInputError(f"Cannot export reviews to `{path.name}`.", "Use a .csv or .parquet file name.")

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


class _Guard:
    """Turn database failures into a `ReviewStoreError` that says where and what to do."""

    def __init__(self, url: str, what: str) -> None:
        self.url, self.what = url, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        if isinstance(exc, SQLAlchemyError):
            raise ReviewStoreError(
                f"Could not {self.what}: the review database {_redacted(self.url)} failed "
                f"({type(exc.orig if hasattr(exc, 'orig') else exc).__name__}: "
                f"{str(getattr(exc, 'orig', exc)).splitlines()[0]}).",
                "Check that the database is reachable and writable, then submit again.",
            ) from exc
