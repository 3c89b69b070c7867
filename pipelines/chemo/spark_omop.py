"""OMOP CDM files -> checked Spark tables -> the registry-shaped cycle rows `_rows` (`--engine spark`).

The Spark side of `omop.py` and `omop_cycles.py`: each OMOP file is read as a Spark DataFrame
(csv / csv.gz as text, parquet typed), numbered in file order (`_row`, as DuckDB's `row_number()
OVER ()`), and checked by the same SQL (`omop.checked_table_sql`, transpiled); then the same
functions build the cycles, the mapped measurements, the placed values and `_rows`, on Spark
temporary views instead of DuckDB tables. What reaches the driver: the quarantined rows (records),
the distinct patients (to number them) and counts.

One difference of the engines is closed here: Spark's cast of text to DATE also reads `2020` and
`2020-05` (as the first day), which DuckDB refuses; a text date must be `YYYY-M-D` to be cast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.raw_omop import OMOP_SCHEMAS
from dosewise.data_schemas.sql_checks import SQL_TYPES, quote

from ..sources.duckdb_catalog import csv_header
from ..sources.spark_catalog import SparkTables, materialize
from .config import ChemoPipelineConfig
from .omop import NULL_STRINGS, check_columns, checked_table_sql, finish_table, load_tables
from .omop_cycles import cycle_rows_table, patient_buckets, place_on_cycles
from .omop_sql import cycle_episodes, mapped_measurements

TEXT_DATE = "^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$"


def _partitions(frame: Any) -> int | None:
    """The number of partitions of `frame`, or None where the session cannot tell (Spark Connect)."""
    try:
        return int(frame.rdd.getNumPartitions())
    except Exception:  # Spark Connect DataFrames have no RDD
        return None


def with_row_numbers(frame: Any) -> Any:
    """`frame` with `_row` = 1, 2, ... in its (file) order, without moving rows to one partition:
    the position inside each partition plus the rows of the partitions before it (counted first)."""
    from pyspark.sql import functions as F

    if _partitions(frame) == 1:  # a csv file (multi-line csv is read whole), a small parquet
        return frame.withColumn("_row", F.monotonically_increasing_id() + 1)
    tagged = materialize(frame.withColumn("_part", F.spark_partition_id()).withColumn(
        "_id", F.monotonically_increasing_id()))
    sizes = dict(sorted((int(p), int(n)) for p, n in tagged.groupBy("_part").count().collect()))
    offsets, total = {}, 0
    for part, n in sizes.items():
        offsets[part] = total
        total += n
    before = F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv]) if offsets else None
    start = before[F.col("_part")] if before is not None else F.lit(0)
    within = F.col("_id") - F.shiftleft(F.col("_part").cast("bigint"), 33)  # Spark's id layout
    return tagged.withColumn("_row", (start + within + 1).cast("bigint")).drop("_part", "_id")


def read_raw(tables: SparkTables, path: Path, name: str) -> Any:
    """One OMOP file as a Spark DataFrame: csv as text (OMOP's null spellings as NULL), parquet typed."""
    from pyspark.sql import functions as F

    if path.name.endswith(".parquet"):
        return tables.spark.read.parquet(str(path))
    names = csv_header(path)
    frame = tables.read_csv(path, ", ".join(f"`{n}` string" for n in names))
    nulls = [s for s in NULL_STRINGS if s]
    return frame.select(*[F.when(F.col(f"`{n}`").isin(nulls), None).otherwise(F.col(f"`{n}`")).alias(n)
                          for n in names])


def _spark_typed(typed: dict[str, str], raw: Any, name: str) -> dict[str, str]:
    """DuckDB's typed expressions, with text dates held to `YYYY-M-D` (module doc)."""
    schema = OMOP_SCHEMAS[name]
    kinds = dict(raw.dtypes)
    out = dict(typed)
    for col in typed:
        if SQL_TYPES.get(str(schema.columns[col].dtype)) == "DATE" and kinds.get(col) == "string":
            r = quote(f"r_{col}")
            out[col] = f"CASE WHEN regexp_matches({r}, '{TEXT_DATE}') THEN {typed[col]} END"
    return out


def load_table_spark(tables: SparkTables, path: Path, name: str, quarantine: list[pd.DataFrame]) -> int:
    """`omop.load_table` on Spark: every row of `path` checked; the typed view `name`; rows read."""
    raw = read_raw(tables, path, name)
    typed, rules = check_columns(path, name, list(raw.columns))
    typed = _spark_typed(typed, raw, name)
    from pyspark.sql import functions as F

    try:
        numbered = with_row_numbers(raw.select(*[F.col(f"`{c}`").alias(f"r_{c}") for c in typed]))
        numbered.createOrReplaceTempView(f"_file_{name}")
        tables.execute(checked_table_sql(name, typed, rules, f"_file_{name}"), what=f"OMOP table {name}")
    except Exception as exc:  # Spark's reader errors (a malformed csv row) arrive as Java exceptions
        if isinstance(exc, BadInputError):
            raise
        reason = str(exc).strip().splitlines()[0][:200]
        raise BadInputError(
            f"{path} could not be read as OMOP table `{name}`: {reason}.",
            "Check the file is complete and every row has the header's number of fields.",
        ) from None
    return finish_table(tables, name, typed, rules, quarantine)


@dataclass
class SparkOmop:
    """An OMOP folder checked and joined on Spark: the view `_rows` and what the boundary found."""

    quarantine: list[pd.DataFrame]
    files: list[Path]
    n_read: int
    notes: dict[str, int]


def open_omop_spark(
    tables: SparkTables,
    source: Path,
    config: ChemoPipelineConfig,
    episode_id: Callable[[list[str]], list[str]],
) -> SparkOmop:
    """Read, check and join an OMOP folder on Spark (as `omop_cycles.open_omop` does in DuckDB) into
    the view `_rows`: one row per cycle, every placed value, in one batch (Spark groups the patients)."""
    extra: dict[str, int] = {}
    quarantine, files, n_in = load_tables(tables, source, load=load_table_spark)
    cycle_episodes(tables, config.input.unknown_regimen, quarantine)
    mapped_measurements(tables, quarantine, extra)
    place_on_cycles(tables)
    patient_buckets(tables, episode_id, 2**62)
    cycle_rows_table(tables)
    return SparkOmop(quarantine, files, n_in, extra)


__all__ = ["SparkOmop", "load_table_spark", "open_omop_spark", "read_raw", "with_row_numbers"]
