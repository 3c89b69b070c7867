"""Place OMOP measurements and observations on cycles (DuckDB ASOF joins) and fetch registry-shaped rows.

Counts and chemistry: the latest value within 3 days before (or on) the cycle's scheduled
start (previous start + planned interval; the first cycle's own date). Nadir: the lowest ANC after
the cycle's dose and at least 3 days before the next scheduled start. Height: the latest
before the cycle. ECOG: the first recorded. Grades: the highest CTCAE grade recorded from the
cycle's start to the next cycle (no observation = grade 0). On a tie in date the later row of the
file wins (as `merge_asof` on a stably sorted table picks it); between two cycles of one patient
on the same day, the later cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from dosewise.data_schemas import empty_quarantine
from dosewise.data_schemas.raw_registry import DATE_COLUMNS, RegistrySchema
from dosewise.data_schemas.sql_checks import quote
from dosewise.data_schemas.validation import split_valid

from ..sepsis.stage_sql import run_sql_file
from ..simulators.oncology_omop import concept_map
from .config import TOXICITY_CATEGORIES, ChemoPipelineConfig
from .omop import Tables, fetch, load_tables, omop_connection, register_table, run
from .omop_sql import BIRTH_SQL, cycle_episodes, mapped_measurements

#: The SQL files (pipelines/sql/chemo/) that place measurements and observations on the cycles.
PLACING_SQL = ("cycle_schedule", "placed_measurements", "graded_cycles", "outcome_dates")


def place_on_cycles(con: Tables) -> None:
    """Tables `cycle_schedule`, `placed_measurements`, `graded_cycles`, `outcome_dates` (module doc).

    Each as-of match is a join within the patient and a window of dates, keeping the latest row
    (`arg_max` over the (date, row) key); the windows are a few days, so the joins stay small.
    """
    cmap = concept_map()
    grades = pd.DataFrame(
        {
            "source": [cmap.loc[f"grade_{cat}", "source_value"] for cat in TOXICITY_CATEGORIES],
            "col": [f"grade_{cat}" for cat in TOXICITY_CATEGORIES],
        }
    )
    register_table(con, "rule_grade_map", grades)
    settings = {
        "progression_source": str(cmap.loc["progression", "source_value"]),
        "followup_source": str(cmap.loc["last_followup", "source_value"]),
    }
    for table in PLACING_SQL:
        run_sql_file(con, table, settings, folder="chemo")


def patient_buckets(con: Tables, episode_id: Callable[[list[str]], list[str]],
                    batch_patients: int) -> int:
    """Table `_bucket`: each patient of `cyc` in a batch of `batch_patients`, in episode-id order.

    Batches are contiguous in the order the trajectories are written (by episode id), so the
    batches' trajectories, written one after another, are the whole run's in order. Returns the
    number of batches.
    """
    people = [r[0] for r in fetch(con, "SELECT DISTINCT patient_id FROM cyc ORDER BY 1")]
    ids = episode_id([str(p) for p in people])
    order = sorted(range(len(people)), key=ids.__getitem__)
    bucket = [0] * len(people)
    for rank, i in enumerate(order):
        bucket[i] = rank // batch_patients
    register_table(con, "_bucket", pd.DataFrame({"patient_id": pd.array(people, dtype="int64"),
                                                 "_bucket": pd.array(bucket, dtype="int64")}))
    return max(bucket, default=-1) + 1


def columns_of(con: Tables, table: str) -> list[str]:
    """The column names of `table`."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        return [str(r[0]) for r in con.execute(f"DESCRIBE {quote(table)}").fetchall()]
    return list(con.spark.table(table).columns)


def cycle_rows_table(con: Tables) -> None:
    """Table `_rows`: cycles with every placed value and the patient's birth, sex and death, by batch."""
    cmap = concept_map()
    male, female = (int(cmap.loc[k, "concept_id"]) for k in ("male", "female"))
    has_source = "gender_source_value" in columns_of(con, "person")
    sex = f"CASE p.gender_concept_id WHEN {male} THEN 'M' WHEN {female} THEN 'F' END"
    if has_source:
        sex = f"coalesce({sex}, p.gender_source_value)"
    run(
        con,
        f"""CREATE OR REPLACE TABLE _rows AS WITH pp AS (
            SELECT person_id AS patient_id, {BIRTH_SQL} AS birth_date, {sex} AS sex FROM person p),
        dd AS (SELECT person_id AS patient_id, min(death_date) AS death_date FROM death GROUP BY 1)
        SELECT c.* EXCLUDE (planned_interval_days), pl.* EXCLUDE (_key), g.* EXCLUDE (_key),
            d.progression_date, d.last_followup_date, pp.birth_date, pp.sex, dd.death_date, b._bucket
        FROM cyc c LEFT JOIN placed_measurements pl USING (_key) LEFT JOIN graded_cycles g USING (_key)
        LEFT JOIN outcome_dates d USING (patient_id) LEFT JOIN pp USING (patient_id)
        LEFT JOIN dd USING (patient_id)
        JOIN _bucket b USING (patient_id)
        ORDER BY b._bucket, c._key"""
    )


def cycle_rows(con: duckdb.DuckDBPyConnection, bucket: int) -> pd.DataFrame:
    """The registry-shaped rows of one batch, in `_key` order (patient, cycle)."""
    frame = con.execute(
        "SELECT * EXCLUDE (_key, _bucket) FROM _rows WHERE _bucket = $b ORDER BY _key", {"b": bucket}
    ).df()
    return registry_shaped(frame)


def registry_shaped(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of `_rows` (in `_key` order) as a registry export reads: dates as datetime64[ns], counts
    in 1e9/L, patient ids as strings."""
    for col in DATE_COLUMNS:
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    frame["anc_unit"] = "10^9/L"
    frame["platelets_unit"] = "10^9/L"
    frame["patient_id"] = frame["patient_id"].astype(str)
    frame["cycle_number"] = frame["cycle_number"].astype("Int64")
    return frame


def check_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A batch's rows checked against the registry schema: (kept and coerced, quarantine records)."""
    split = split_valid(
        rows, RegistrySchema, stage="omop_cycles", key_columns=["cycle_number"], id_column="patient_id"
    )
    if split.quarantined.empty:  # split_valid returned the schema's own (coerced) output
        return split.kept.reset_index(drop=True), split.quarantined
    kept = RegistrySchema.validate(split.kept)  # coerced (split_valid keeps failing tables' rows as read)
    q = split.quarantined.rename(columns={"person_id": "patient_id"})
    return kept.reset_index(drop=True), q


def drop_intermediates(con: duckdb.DuckDBPyConnection) -> None:
    """Free the tables `_rows` was made from (the checked OMOP tables and the joins), keeping
    `_rows` and `_bucket`, so DuckDB holds only what the batches still read."""
    keep = {"_rows", "_bucket"}
    for name, kind in con.execute(
        "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_type = 'VIEW' DESC"
    ).fetchall():
        if name not in keep:
            con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {quote(name)}")


@dataclass
class OmopBatches:
    """An open OMOP folder: the boundary quarantine and notes, and its cycle rows batch by batch."""

    con: duckdb.DuckDBPyConnection
    quarantine: list[pd.DataFrame]
    files: list[Path]
    n_read: int
    notes: dict[str, int]
    n_batches: int
    behaviour_path: Path | None = None
    _has_behaviour: bool = False

    def batch(self, bucket: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Checked rows and boundary quarantine of one batch."""
        return check_rows(cycle_rows(self.con, bucket))

    def release_rows(self) -> None:
        """Every batch was read: drop table `_rows`."""
        self.con.execute("DROP TABLE IF EXISTS _rows")

    def behaviour(self, bucket: int) -> pd.DataFrame | None:
        """The simulator's option probabilities of one batch's patients (truth/behaviour.parquet).

        The file is read once into DuckDB beside the batches (table `_behaviour`), never whole
        into pandas.
        """
        if self.behaviour_path is None:
            return None
        if not self._has_behaviour:
            path = "'" + str(self.behaviour_path).replace("'", "''") + "'"
            self.con.execute(
                f"CREATE OR REPLACE TABLE _behaviour AS SELECT b.*, k._bucket FROM read_parquet({path}) b "
                "JOIN _bucket k ON CAST(b.patient_id AS VARCHAR) = CAST(k.patient_id AS VARCHAR) "
                "ORDER BY k._bucket"
            )
            self._has_behaviour = True
        frame = self.con.execute(
            "SELECT * EXCLUDE (_bucket) FROM _behaviour WHERE _bucket = $b", {"b": bucket}
        ).df()
        frame["patient_id"] = frame["patient_id"].astype(str)
        return frame

    def boundary_quarantine(self) -> pd.DataFrame:
        """Quarantine records of the table checks, the cycle assembly and the measurements."""
        parts = [q.rename(columns={"person_id": "patient_id"}) for q in self.quarantine if not q.empty]
        return pd.concat(parts, ignore_index=True) if parts else empty_quarantine()


@contextmanager
def open_omop(
    source: Path,
    config: ChemoPipelineConfig,
    episode_id: Callable[[list[str]], list[str]],
    behaviour_path: Path | None = None,
) -> Iterator[OmopBatches]:
    """Read, check and join an OMOP folder in DuckDB; yield it for reading in patient batches."""
    extra: dict[str, int] = {}
    with omop_connection(config.input.duckdb_memory_limit, config.input.duckdb_threads) as con:
        quarantine, files, n_in = load_tables(con, source)
        cycle_episodes(con, config.input.unknown_regimen, quarantine)
        mapped_measurements(con, quarantine, extra)
        place_on_cycles(con)
        n_batches = patient_buckets(con, episode_id, config.input.batch_patients)
        cycle_rows_table(con)
        drop_intermediates(con)
        yield OmopBatches(con, quarantine, files, n_in, extra, n_batches, behaviour_path)
