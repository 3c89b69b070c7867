"""A flat registry export as a Spark DataFrame, checked per group of whole patients (`--engine spark`).

On DuckDB/pandas the export is read whole (`mapping.read_table`: csv through pyarrow, or parquet) and
`registry.registry_rows` reshapes, maps and checks it. On Spark the file is a Spark DataFrame (csv as
text, parquet typed) grouped by the export's patient column, and each group of whole patients is
made into the frame pandas would have read (`restore_dtypes`), then `registry_rows` runs on it in
the UDF, with the same quarantine. The dtypes are those pandas gives the file (csv: inferred from its
first MiB, as pyarrow infers a csv from its first block; parquet: from its schema), so a column keeps
its type in a group whose values alone would read as another (`017` stays text, `75` stays float
where other rows hold `75.5`).
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import BadInputError

from ..sources.spark_catalog import SparkTables
from .mapping import RegistryMapping, find_table

HEAD_BYTES = 1 << 20  # pyarrow's csv block: the rows its type inference reads
PATIENT_KEY = "_patient_key"  # the export's patient id as text (the grouping key of both cogrouped frames)


@dataclass
class SparkRegistry:
    """A registry export on Spark: its rows (with `PATIENT_KEY`), the file, and pandas' dtypes of it."""

    rows: Any
    path: Path
    dtypes: dict[str, Any]
    n_read: int


def _head(path: Path) -> bytes:
    """The first MiB of a csv (or csv.gz), cut after its last whole line."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    return head if len(head) < HEAD_BYTES else head[: head.rfind(b"\n") + 1]


def file_dtypes(path: Path) -> dict[str, Any]:
    """The pandas dtype of each column of the export, as `read_table` reads the file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pq.read_schema(path).empty_table(), buffer)
        return dict(pd.read_parquet(io.BytesIO(buffer.getvalue())).dtypes)
    try:
        return dict(pd.read_csv(io.BytesIO(_head(path)), engine="pyarrow").dtypes)
    except Exception as exc:
        raise BadInputError(f"{path} could not be read: {str(exc).splitlines()[0][:200]}.",
                            "Check it is a valid csv or parquet file with a header row.") from None


def _is_text(dtype: Any) -> bool:
    return isinstance(dtype, pd.StringDtype)


def restore_dtypes(part: pd.DataFrame, dtypes: dict[str, Any], csv: bool) -> pd.DataFrame:
    """Rows of the export as `read_table` gives them: a csv group (Spark's text) parsed again by
    pandas' pyarrow reader, text columns as text; every column cast to the file's dtype.

    The text columns are read by a second parse of their own: pandas 3.1's pyarrow reader given any
    `dtype` casts every column, and fails on an integer column with a missing value ("cannot
    convert NA to integer"), which a group holds wherever the whole file's column is float."""
    part = part[list(dtypes)]
    if csv:
        buffer = part.to_csv(index=False).encode("utf-8")
        parsed = pd.read_csv(io.BytesIO(buffer), engine="pyarrow")
        text = {col: d for col, d in dtypes.items() if _is_text(d)}
        if text:
            as_text = pd.read_csv(io.BytesIO(buffer), engine="pyarrow", usecols=list(text), dtype=text)
            for col in text:
                parsed[col] = as_text[col]
        part = parsed
    for col, dtype in dtypes.items():
        if part[col].dtype != dtype:
            part[col] = part[col].astype(dtype)
    return part


def patient_column(mapping: RegistryMapping, dtypes: dict[str, Any], path: Path) -> str:
    """The export's column that the mapping makes `patient_id` (Spark groups the rows by it)."""
    column = next((src for src, dst in mapping.renames.items() if dst == "patient_id"), "patient_id")
    if column not in dtypes:
        raise BadInputError(
            f"{path} has no patient column `{column}` to group its rows by on Spark (the mapping's "
            "patient_id).", "Rename the export's patient id column to patient_id in [renames], or run it "
            "with --engine duckdb.")
    return column


def read_registry_spark(
    tables: SparkTables, source: Path, mapping: RegistryMapping, key: str | None = None
) -> SparkRegistry:
    """The export of `source` as a Spark DataFrame (csv as text, parquet typed), keyed (`PATIENT_KEY`)
    by the export's column `key`, by default its patient column (`patient_column`)."""
    from pyspark.sql import functions as F

    path = find_table(source, mapping.file)
    dtypes = file_dtypes(path)
    key = key or patient_column(mapping, dtypes, path)
    if key not in dtypes:
        raise BadInputError(f"{path} has no column `{key}` to group its rows by on Spark.",
                            f"Its columns are: {', '.join(map(str, list(dtypes)[:25]))}.")
    if path.suffix == ".parquet":
        frame = tables.spark.read.parquet(str(path))
    else:
        frame = tables.read_csv(path, ", ".join(f"`{n}` string" for n in dtypes))
    frame = frame.withColumn(PATIENT_KEY, F.col(f"`{key}`").cast("string"))
    try:
        n_read = frame.count()
    except Exception as exc:  # Spark's reader errors (a malformed row) arrive as Java exceptions
        raise BadInputError(f"{path} could not be read: {str(exc).strip().splitlines()[0][:200]}.",
                            "Check it is a valid csv or parquet file.") from None
    return SparkRegistry(frame, path, dtypes, n_read)


__all__ = ["PATIENT_KEY", "SparkRegistry", "file_dtypes", "read_registry_spark", "restore_dtypes"]
