"""Chemotherapy reviews (dose % of planned + delay days) in the review store, beside sepsis reviews:
validated ranges, one kind per review, the hash chain of earlier sepsis-only databases kept."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from dosewise.app.review_store import ReviewStore, ReviewStoreError
from dosewise.app.review_tables import GENESIS, reviews_table
from dosewise.data_schemas import ClinicianReviewSchema
from dosewise.data_schemas.review import CHEMO_COLUMNS
from tests.app.reviews import make_review

CHEMO = {"reviewer_fluid_ml_4h": None, "reviewer_norepi_eq_mcg_kg_min": None,
         "reviewer_dose_pct_of_planned": 80.0, "reviewer_delay_days": 7, "given_dose_pct_of_planned": 100.0,
         "given_delay_days": 0.0, "recommended_rdi_fraction": 0.8, "dataset_name": "chemo"}


def chemo_review(**overrides: Any) -> ClinicianReviewSchema:
    return make_review(**{**CHEMO, **overrides})


def test_chemo_review_round_trip_beside_sepsis(tmp_path: Path) -> None:
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    store.append_many([make_review(step=0), chemo_review(step=1, comment="=delay for ANC 1.2")])
    frame = store.read()
    sepsis, chemo = frame.iloc[0], frame.iloc[1]
    assert sepsis["reviewer_fluid_ml_4h"] == 500.0 and pd.isna(sepsis["reviewer_dose_pct_of_planned"])
    assert chemo["reviewer_dose_pct_of_planned"] == 80.0 and chemo["reviewer_delay_days"] == 7
    assert chemo["recommended_rdi_fraction"] == 0.8 and pd.isna(chemo["reviewer_fluid_ml_4h"])
    assert store.check_integrity().rows == 2
    exported = pd.read_csv(store.export(tmp_path / "reviews.csv"), keep_default_na=False)
    assert exported["comment"].tolist()[1] == "'=delay for ANC 1.2"  # neutralised like any text cell
    assert exported["reviewer_delay_days"].tolist() == ["", "7"]  # whole days, blank for sepsis


@pytest.mark.parametrize(("overrides", "message"), [
    ({"reviewer_dose_pct_of_planned": 151.0}, "less than or equal to 150"),
    ({"reviewer_dose_pct_of_planned": -5.0}, "greater than or equal to 0"),
    ({"reviewer_dose_pct_of_planned": float("nan")}, "finite number"),
    ({"reviewer_delay_days": 43}, "less than or equal to 42"),
    ({"reviewer_delay_days": 2.5}, "valid integer"),
    ({"reviewer_delay_days": None}, "Got reviewer_dose_pct_of_planned"),
    ({"reviewer_fluid_ml_4h": 500.0}, "both fields of one kind"),
    ({"reviewer_dose_pct_of_planned": None, "reviewer_delay_days": None}, "Got none"),
])
def test_chemo_review_ranges_and_kind(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        chemo_review(**overrides)


def _old_canonical(row: dict[str, Any], names: list[str]) -> str:
    """The canonical JSON an earlier version hashed: the sepsis columns only."""
    def spell(v: Any) -> Any:
        if hasattr(v, "isoformat"):
            return v.replace(tzinfo=None).isoformat(timespec="microseconds")
        return repr(v) if isinstance(v, float) else v
    return json.dumps({n: spell(row[n]) for n in names}, sort_keys=True, ensure_ascii=True,
                      separators=(",", ":"))


def test_sepsis_only_database_keeps_its_chain_and_gains_the_chemo_columns(tmp_path: Path) -> None:
    """A database an earlier version wrote (no chemo columns, reviewer fluid NOT NULL, chained)."""
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    old = sa.MetaData()
    columns = [sa.Column(col.name, col.type, primary_key=col.primary_key,
                         nullable=col.name not in {"reviewer_fluid_ml_4h", "reviewer_norepi_eq_mcg_kg_min"}
                         and col.nullable)
               for col in reviews_table.columns if col.name not in CHEMO_COLUMNS]
    old_table = sa.Table("clinician_reviews", old, *columns)
    chain = sa.Table("clinician_reviews_chain", old, sa.Column("row_id", sa.Integer, primary_key=True),
                     sa.Column("chain_sha256", sa.String(64)))
    engine = sa.create_engine(url)
    old.create_all(engine)
    row = {k: v for k, v in make_review().model_dump().items() if k not in CHEMO_COLUMNS}
    names = [c.name for c in columns if c.name != "row_id"]
    digest = hashlib.sha256(f"{GENESIS}\n1\n{_old_canonical(row, names)}".encode()).hexdigest()
    with engine.begin() as conn:
        conn.execute(old_table.insert().values(row_id=1, **row))
        conn.execute(chain.insert().values(row_id=1, chain_sha256=digest))
    engine.dispose()
    store = ReviewStore(url)
    assert store.check_integrity().rows == 1  # the earlier digest still verifies
    store.append(make_review(step=3))
    assert set(CHEMO_COLUMNS) <= set(store.read().columns) and store.check_integrity().rows == 2
    with pytest.raises(ReviewStoreError, match="cannot hold chemotherapy reviews"):
        store.append(chemo_review())
    assert store.count() == 2
