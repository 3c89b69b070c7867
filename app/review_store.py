"""Append-only clinician reviews in a real database through SQLAlchemy.

A SQLite file in WAL mode by default (readers never block the writer; a busy timeout queues
concurrent writers instead of failing them), any SQLAlchemy URL (PostgreSQL) by configuration.

What "append-only" means here, plainly:
- The store's API has no update or delete, and triggers refuse UPDATE and DELETE (and TRUNCATE on
  PostgreSQL) on the reviews and their chain.
- A trigger can be dropped by whoever may change the schema. On PostgreSQL, `dosewise review-db-init`
  creates the tables as an administrator and gives the app's role only SELECT and INSERT, so the app
  cannot drop them; `guarantee()` says when the connected role could.
- Every review is chained: its SHA-256 covers its content and the previous review's digest. Editing,
  deleting or slipping in a row breaks the chain, and `verify()` (run by `dosewise review` at start-up)
  names the first such row. Someone who can write the database file and recompute the chain, or
  who removes only the newest rows, is not caught by the chain alone: compare the head digest with
  one recorded earlier (each export and start-up prints it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from dosewise.data_schemas import (
    REVIEW_COLUMNS,
    BadInputError,
    ClinicianReviewSchema,
    write_table_atomic,
    write_text_atomic,
)

from .review_export import reviews_csv
from .review_integrity import (
    ChainReport,
    RoleRights,
    chain_unchained,
    guarantee_line,
    is_new_review,
    last_digest,
    present_objects,
    role_rights,
    verify_chain,
)
from .review_tables import (
    APPEND_ONLY,
    CHAIN_TABLE,
    TABLE,
    TABLES,
    TRIGGER_NAMES,
    ReviewConflictError,
    ReviewIntegrityError,
    ReviewStoreError,
    added_column_statements,
    canonical_review,
    chain_digest,
    chain_table,
    reviews_table,
)

__all__ = ["ReviewConflictError", "ReviewIntegrityError", "ReviewStore", "ReviewStoreError"]

_BUSY_TIMEOUT_MS = 30_000
_SCHEMA_LOCK_KEY = 0x646F7365  # "dose": PostgreSQL advisory lock taken while creating the schema
_CHAIN_LOCK_KEY = 0x63686E31  # "chn1": PostgreSQL advisory lock held while appending to the chain


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
        self.engine: Engine = _create_engine(parsed, kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas(sqlite_journal_mode))
        self._ready = False
        self._sepsis_only = False  # an earlier version's SQLite table: reviewer fluid NOT NULL
        self.restored_triggers: set[str] = set()
        self.chain_started_over = 0

    def _ensure_schema(self, attempts: int = 3) -> None:
        """Create the tables and their append-only triggers on first use (idempotent, race-safe)."""
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
                with self.guard("prepare the review table"):
                    self._create_schema()
                break
            except ReviewStoreError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        self._ready = True

    def _create_schema(self) -> None:
        """DDL only where something is missing, so a PostgreSQL role without DDL rights can open a
        store an administrator prepared; a trigger found missing is restored and remembered."""
        dialect = self.engine.dialect.name
        with self.engine.connect() as conn:
            present = present_objects(conn)
        wanted = TRIGGER_NAMES.get(dialect, set())
        old_table = TABLE in present.tables
        added = added_column_statements(present.columns, self.engine.dialect) if old_table else []
        legacy = {"reviewer_fluid_ml_4h", "reviewer_norepi_eq_mcg_kg_min"} & present.not_null
        if legacy and dialect == "postgresql":
            added += [f"ALTER TABLE {TABLE} ALTER COLUMN {name} DROP NOT NULL" for name in sorted(legacy)]
        self._sepsis_only = bool(legacy) and dialect != "postgresql"
        if present.tables >= {TABLE, CHAIN_TABLE} and present.triggers >= wanted and not added:
            return
        if TABLE in present.tables:
            self.restored_triggers = wanted - present.triggers
        with self.engine.begin() as conn:
            # Several writers may open a fresh database at once: PostgreSQL serialises the DDL
            # on an advisory lock (concurrent CREATE OR REPLACE deadlocks); SQLite's single
            # writer lock and IF NOT EXISTS make the rest idempotent.
            if dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
            for table in TABLES:
                conn.execute(CreateTable(table, if_not_exists=True))
                for index in table.indexes:
                    conn.execute(CreateIndex(index, if_not_exists=True))
            for statement in added:  # a table from an earlier version: the chemotherapy columns
                conn.exec_driver_sql(statement)
            for statement in APPEND_ONLY.get(dialect, []):
                conn.exec_driver_sql(statement)
        if TABLE in present.tables and CHAIN_TABLE not in present.tables:
            with self._writing() as conn:  # a store from before the chain: start it over its rows
                self.chain_started_over = chain_unchained(conn)

    @property
    def display_url(self) -> str:
        """The database URL with any password hidden."""
        return _redacted(self.url)

    def guard(self, what: str) -> _Guard:
        """A context that turns database failures while doing `what` into a `ReviewStoreError`."""
        return _Guard(self.url, what)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """One write transaction that holds the writer lock from its first statement, so that
        the previous digest read for the chain is still the newest when the row is inserted."""
        if self.is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite would begin lazily, after the read
                yield conn
                conn.commit()
            return
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK_KEY})")
            yield conn

    def append(self, review: ClinicianReviewSchema, retries: int = 5) -> None:
        """Insert one validated review and chain it.

        Resubmitting a `review_id` with the same content is a no-op; with different content it
        raises `ReviewConflictError` (the first submission stands, append-only).
        """
        if not isinstance(review, ClinicianReviewSchema):
            raise BadInputError("Only a ClinicianReviewSchema can be stored.", "Validate the form first.")
        self._ensure_schema()
        if review.is_chemo and self._sepsis_only:
            raise ReviewStoreError(
                f"The review database {self.display_url} was created by an earlier Dosewise whose table "
                "requires a fluid and a vasopressor dose, so it cannot hold chemotherapy reviews.",
                "Keep that file for its sepsis reviews (the Review page exports them) and point "
                "DOSEWISE_REVIEW_DB_URL at a new database file for chemotherapy reviews.",
            )
        row = review.model_dump()
        for attempt in range(retries + 1):
            try:
                with self.guard("store the review"), self._writing() as conn:
                    if not is_new_review(conn, row):
                        return
                    previous = last_digest(conn)
                    inserted = conn.execute(reviews_table.insert().values(**row)).inserted_primary_key
                    row_id = int(inserted[0]) if inserted else 0
                    digest = chain_digest(previous, row_id, canonical_review(row))
                    conn.execute(chain_table.insert().values(row_id=row_id, chain_sha256=digest))
                return
            except ReviewConflictError:
                raise
            except ReviewStoreError as exc:
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

    def count(self) -> int:
        """Number of stored reviews."""
        self._ensure_schema()
        with self.guard("count reviews"), self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(reviews_table)).scalar_one())

    def verify(self) -> ChainReport:
        """Recompute the hash chain over every stored review (see the module docstring)."""
        self._ensure_schema()
        with self.guard("verify the reviews' hash chain"), self.engine.connect() as conn:
            return verify_chain(conn)

    def check_integrity(self) -> ChainReport:
        """`verify()`, raising `ReviewIntegrityError` naming the first altered row when broken."""
        report = self.verify()
        if not report.intact:
            raise ReviewIntegrityError(
                f"The review database {self.display_url} was altered outside Dosewise: review row "
                f"{report.broken_at} fails the hash chain because {report.reason}; the "
                f"{report.rows} reviews before it are intact.",
                "Keep the file as evidence, restore the last backup or export, and find who had "
                "write access to the database.",
            )
        return report

    def role_rights(self) -> RoleRights | None:
        """On PostgreSQL, whether the connected role could drop the triggers; None elsewhere."""
        if self.engine.dialect.name != "postgresql":
            return None
        self._ensure_schema()
        with self.guard("read the database role's rights"), self.engine.connect() as conn:
            return role_rights(conn)

    def guarantee(self, report: ChainReport) -> str:
        """One line for the start-up summary: what protects these reviews right now."""
        return guarantee_line(report, self.restored_triggers, self.chain_started_over, self.role_rights())

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
        with self.guard("read reviews"), self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        frame = pd.DataFrame([dict(r) for r in rows], columns=list(REVIEW_COLUMNS))
        for name in ("reviewed_at", "bin_start"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        for column in reviews_table.columns:
            if isinstance(column.type, sa.Float) and column.name in frame:
                frame[column.name] = frame[column.name].astype("float64")
            elif isinstance(column.type, sa.Integer) and column.nullable and column.name in frame:
                frame[column.name] = frame[column.name].astype("Int64")  # days stay whole beside NULLs
        return frame

    def export(self, path: Path) -> Path:
        """Write every review to `path` (.csv, safe to open in a spreadsheet, or .parquet), atomically."""
        path = Path(path)
        frame = self.read()
        if path.suffix == ".parquet":
            return write_table_atomic(frame, path)
        if path.suffix == ".csv":
            return write_text_atomic(path, reviews_csv(frame))
        raise BadInputError(f"Cannot export reviews to `{path.name}`.", "Use a .csv or .parquet file name.")

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def _create_engine(parsed: sa.URL, kwargs: dict[str, Any]) -> Engine:
    """`create_engine`, with a missing or unknown driver turned into a clear error."""
    hint = "Use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB, or install the driver."
    try:
        return sa.create_engine(parsed, **kwargs)
    except sa.exc.NoSuchModuleError as exc:
        raise BadInputError(
            f"The review database URL must name a database SQLAlchemy knows (sqlite, postgresql, …). "
            f"Got `{parsed.drivername}`.", hint,
        ) from exc
    except ImportError as exc:
        raise BadInputError(
            f"No database driver for `{parsed.drivername}` is installed ({exc.name}).", hint
        ) from exc


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
