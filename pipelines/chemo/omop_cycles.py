"""Place OMOP measurements and observations on cycles (DuckDB ASOF joins) and fetch registry-shaped rows.

Counts and chemistry: the latest value within `WINDOW_DAYS` before (or on) the cycle's scheduled
start (previous start + planned interval; the first cycle's own date). Nadir: the lowest ANC after
the cycle's dose and at least `WINDOW_DAYS` before the next scheduled start. Height: the latest
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
from dosewise.data_schemas.sql_checks import literal, quote
from dosewise.data_schemas.validation import split_valid

from ..simulators.oncology_omop import concept_map
from .config import TOXICITY_CATEGORIES, ChemoPipelineConfig
from .omop import load_tables, omop_connection, register_table
from .omop_sql import BIRTH_SQL, cycle_episodes, mapped_measurements

AT_START = (
    "anc",
    "platelets",
    "haemoglobin_g_per_l",
    "creatinine_umol_per_l",
    "bilirubin_umol_per_l",
    "weight_kg",
    "bsa_m2",
    "tumour_size_mm",
)
WINDOW_DAYS = 3
#: As-of keys: a date and a tie-break (file row or cycle key, < 10**10) in one ordered BIGINT, so
#: `arg_max` over it picks the latest date and, on a tie, the later row.
SPAN = 10**10


def day_key(date: str, tie: str) -> str:
    """SQL: `date` (days since 1970) and `tie` as one BIGINT ordered by (date, tie)."""
    return f"(CAST(date_diff('day', DATE '1970-01-01', {date}) AS BIGINT) * {SPAN} + {tie})"


#: Each cycle's start and scheduled start (previous start + planned interval; the first: its own date).
BASE_SQL = f"""CREATE OR REPLACE TABLE _base AS
    SELECT *, {day_key("cycle_start_date", "_key")} AS start_key FROM (
    SELECT _key, patient_id, cycle_start_date, planned_interval_days,
    coalesce(lag(cycle_start_date) OVER w + CAST(planned_interval_days AS INTEGER), cycle_start_date)
        AS scheduled
    FROM cyc WINDOW w AS (PARTITION BY patient_id ORDER BY _key))"""


def place_measurements(con: duckdb.DuckDBPyConnection) -> None:
    """Table `_placed`: per cycle `_key`, the at-start values, height, the nadir and ECOG (module doc).

    Each as-of match is a join within the patient and a window of dates, keeping the latest row
    (`arg_max` over the (date, row) key); the windows are a few days, so the joins stay small.
    """
    vars_ = [*AT_START, "height_cm"]
    names = ", ".join(literal(v) for v in vars_)
    pivot = ", ".join(f"max(hit.v) FILTER (WHERE variable = {literal(v)}) AS {quote(v)}" for v in vars_)
    con.execute(
        f"""CREATE OR REPLACE TABLE _placed AS
        WITH m AS (SELECT patient_id, variable, measurement_date, value,
                {day_key("measurement_date", "_row")} AS k FROM meas WHERE variable IN ({names})),
        days AS (SELECT b._key, b.patient_id, b.scheduled - CAST(d AS INTEGER) AS day FROM _base b
            CROSS JOIN range({WINDOW_DAYS + 1}) r(d)),
        hits AS (
            SELECT d._key, m.variable, m.value, m.k FROM days d
            JOIN m ON d.patient_id = m.patient_id AND d.day = m.measurement_date AND m.variable <> 'height_cm'
            UNION ALL
            SELECT b._key, m.variable, m.value, m.k FROM _base b
            JOIN m ON b.patient_id = m.patient_id AND m.measurement_date <= b.scheduled
                AND m.variable = 'height_cm'),
        latest AS (
            SELECT _key, variable, arg_max({{'v': value}}, k) AS hit FROM hits GROUP BY _key, variable),
        wide AS (SELECT _key, {pivot} FROM latest GROUP BY _key),
        anc AS (SELECT patient_id, measurement_date, value, _row FROM meas WHERE variable = 'anc'),
        after_dose AS (
            SELECT a._row, any_value(a.value) AS value, any_value(a.measurement_date) AS measurement_date,
                arg_max(s._key, s.start_key) AS _key,
                arg_max(s.cycle_start_date + CAST(s.planned_interval_days - {WINDOW_DAYS} AS INTEGER),
                    s.start_key) AS last_day
            FROM anc a JOIN _base s ON a.patient_id = s.patient_id AND s.cycle_start_date < a.measurement_date
            GROUP BY a._row),
        nadir AS (SELECT _key, min(value) AS anc_nadir FROM after_dose WHERE measurement_date <= last_day
            GROUP BY _key),
        ecog AS (
            SELECT patient_id, value AS ecog FROM meas WHERE variable = 'ecog' AND value IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY measurement_date, _row) = 1)
        SELECT b._key, wide.* EXCLUDE (_key), nadir.anc_nadir, ecog.ecog
        FROM _base b LEFT JOIN wide USING (_key) LEFT JOIN nadir USING (_key)
        LEFT JOIN ecog USING (patient_id)"""
    )


def place_observations(con: duckdb.DuckDBPyConnection) -> None:
    """Table `_graded`: CTCAE grades per cycle `_key`; `_dates`: progression, last follow-up per patient."""
    cmap = concept_map()
    grades = pd.DataFrame(
        {
            "source": [cmap.loc[f"grade_{cat}", "source_value"] for cat in TOXICITY_CATEGORIES],
            "col": [f"grade_{cat}" for cat in TOXICITY_CATEGORIES],
        }
    )
    register_table(con, "_grade_map", grades)
    pivot = ", ".join(
        f"coalesce(max(g.value_as_number) FILTER (WHERE g.col = {literal(c)}), 0.0) AS {quote(c)}"
        for c in grades["col"]
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE _graded AS
        WITH og AS (SELECT o.person_id AS patient_id, o.observation_date, o.value_as_number, m.col, o._row
            FROM observation o JOIN _grade_map m ON o.observation_source_value = m.source),
        hit AS (SELECT any_value(og.col) AS col, any_value(og.value_as_number) AS value_as_number,
                arg_max(s._key, s.start_key) AS _key
            FROM og JOIN _base s ON og.patient_id = s.patient_id AND s.cycle_start_date <= og.observation_date
            GROUP BY og._row)
        SELECT b._key, {pivot} FROM _base b LEFT JOIN hit g USING (_key) GROUP BY b._key"""
    )
    prog, last = (literal(cmap.loc[k, "source_value"]) for k in ("progression", "last_followup"))
    con.execute(
        f"""CREATE OR REPLACE TABLE _dates AS SELECT person_id AS patient_id,
            min(observation_date) FILTER (WHERE observation_source_value = {prog}) AS progression_date,
            max(observation_date) FILTER (WHERE observation_source_value = {last}) AS last_followup_date
        FROM observation GROUP BY 1"""
    )


def patient_buckets(con: duckdb.DuckDBPyConnection, episode_id: Callable[[list[str]], list[str]],
                    batch_patients: int) -> int:
    """Table `_bucket`: each patient of `cyc` in a batch of `batch_patients`, in episode-id order.

    Batches are contiguous in the order the trajectories are written (by episode id), so the
    batches' trajectories, written one after another, are the whole run's in order. Returns the
    number of batches.
    """
    people = [r[0] for r in con.execute("SELECT DISTINCT patient_id FROM cyc ORDER BY 1").fetchall()]
    ids = episode_id([str(p) for p in people])
    order = sorted(range(len(people)), key=ids.__getitem__)
    bucket = [0] * len(people)
    for rank, i in enumerate(order):
        bucket[i] = rank // batch_patients
    register_table(con, "_bucket", pd.DataFrame({"patient_id": pd.array(people, dtype="int64"),
                                                 "_bucket": pd.array(bucket, dtype="int64")}))
    return max(bucket, default=-1) + 1


def cycle_rows_table(con: duckdb.DuckDBPyConnection) -> None:
    """Table `_rows`: cycles with every placed value and the patient's birth, sex and death, by batch."""
    cmap = concept_map()
    male, female = (int(cmap.loc[k, "concept_id"]) for k in ("male", "female"))
    has_source = "gender_source_value" in [r[0] for r in con.execute("DESCRIBE person").fetchall()]
    sex = f"CASE p.gender_concept_id WHEN {male} THEN 'M' WHEN {female} THEN 'F' END"
    if has_source:
        sex = f"coalesce({sex}, p.gender_source_value)"
    con.execute(
        f"""CREATE OR REPLACE TABLE _rows AS WITH pp AS (
            SELECT person_id AS patient_id, {BIRTH_SQL} AS birth_date, {sex} AS sex FROM person p),
        dd AS (SELECT person_id AS patient_id, min(death_date) AS death_date FROM death GROUP BY 1)
        SELECT c.* EXCLUDE (planned_interval_days), pl.* EXCLUDE (_key), g.* EXCLUDE (_key),
            d.progression_date, d.last_followup_date, pp.birth_date, pp.sex, dd.death_date, b._bucket
        FROM cyc c LEFT JOIN _placed pl USING (_key) LEFT JOIN _graded g USING (_key)
        LEFT JOIN _dates d USING (patient_id) LEFT JOIN pp USING (patient_id) LEFT JOIN dd USING (patient_id)
        JOIN _bucket b USING (patient_id)
        ORDER BY b._bucket, c._key"""
    )


def cycle_rows(con: duckdb.DuckDBPyConnection, bucket: int) -> pd.DataFrame:
    """The registry-shaped rows of one batch, in `_key` order (patient, cycle)."""
    frame = con.execute(
        "SELECT * EXCLUDE (_key, _bucket) FROM _rows WHERE _bucket = $b ORDER BY _key", {"b": bucket}
    ).df()
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
        con.execute(BASE_SQL)
        place_measurements(con)
        place_observations(con)
        n_batches = patient_buckets(con, episode_id, config.input.batch_patients)
        cycle_rows_table(con)
        drop_intermediates(con)
        yield OmopBatches(con, quarantine, files, n_in, extra, n_batches, behaviour_path)
