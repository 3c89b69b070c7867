"""The review store: validated, append-only, exportable, safe under concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from dosewise.app.review_store import ReviewStore, ReviewStoreError
from dosewise.data_schemas import REVIEW_COLUMNS, BadInputError
from tests.app.reviews import make_review


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


@pytest.mark.skipif("DOSEWISE_TEST_POSTGRES_URL" not in os.environ,
                    reason="set DOSEWISE_TEST_POSTGRES_URL to a scratch PostgreSQL database to run")
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
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), probe.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM clinician_reviews")
    assert probe.count() == before + 50
