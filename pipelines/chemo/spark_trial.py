"""Trial registry records on Spark (`engine = "spark"`, a mapping with `design = "trial"`).

On DuckDB/pandas `trial.read_trial_registry` reads the whole export and reshapes it. On Spark the
export is a Spark DataFrame (`spark_registry.read_registry_spark`: csv as text, parquet typed)
grouped by its record key (the pivot's index, else the patient column), and each group of whole
patients is made into the frame pandas would have read (`restore_dtypes`) and reshaped there by the
same `reshape_export` (the mapping's row filter and pivot): the step that turns source rows into one
record per patient. Only those records and the reshape quarantine are collected, per patient as the
cycle ETL collects its patients frame, with the dtypes pandas gives the whole file (an integer column
that is missing for some patients after the pivot becomes float, as `DataFrame.pivot` makes it).
They arrive group by group (each group in file order): the order does not reach the outputs, whose
patients are sorted by id and whose quarantine is written sorted (`write_frame_quarantine`). The
rest (mapping, arm check, schema, duplicates: `trial.trial_records`; the Kaplan-Meier censoring
curve over all patients, the decision steps and the splits) runs on the records exactly as on
DuckDB, so both engines write the same outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..sources.spark_catalog import SparkTables, to_pandas
from ..sources.spark_frames import apply_by_key_outputs, shuffle_partitions
from .mapping import RegistryMapping, find_table
from .reshape import reshape_export
from .spark_omop import with_row_numbers
from .spark_parts import Q_TYPES, ROW, tag_quarantine
from .spark_registry import PATIENT_KEY, SparkRegistry, file_dtypes, read_registry_spark, restore_dtypes
from .spark_stages import sample_schemas
from .trial import TrialRecords, trial_records

_DTYPE_OF_SPARK = {"bigint": "int64", "int": "int32", "smallint": "int16", "tinyint": "int8",
                   "double": "float64", "boolean": "bool"}


def reshape_part(
    raw_part: pd.DataFrame, mapping: RegistryMapping, registry: SparkRegistry
) -> dict[str, pd.DataFrame]:
    """The export rows of one group of whole patients, in file order, reshaped as pandas reshapes the
    whole file: the records and the reshape quarantine (as text)."""
    ordered = raw_part.sort_values(ROW, kind="stable").drop(columns=[PATIENT_KEY, ROW]).reset_index(drop=True)
    raw = restore_dtypes(ordered, registry.dtypes, registry.path.suffix != ".parquet")
    records, q = reshape_export(raw, mapping)
    return {"records": records, "q": tag_quarantine(q, "sources")}


def _as_pandas_reads(records: pd.DataFrame, types: dict[str, str], dtypes: dict[str, Any]) -> pd.DataFrame:
    """Collected records with the whole file's dtypes: a column keeps the file's
    dtype, an integer (or boolean) one with missing values becomes float64 (object), text is text."""
    records = records.reset_index(drop=True)
    text = next((d for d in dtypes.values() if isinstance(d, pd.StringDtype)), object)
    for col, kind in types.items():
        values = records[col]
        if kind == "string":
            records[col] = values.astype(dtypes.get(col, text))
        elif values.isna().any() and kind in ("bigint", "int", "smallint", "tinyint", "boolean"):
            records[col] = values.astype("float64" if kind != "boolean" else object)
        else:
            records[col] = values.astype(dtypes.get(col, _DTYPE_OF_SPARK.get(kind, object)))
    return records


def read_trial_registry_spark(tables: SparkTables, source: Path, mapping: RegistryMapping) -> TrialRecords:
    """`trial.read_trial_registry` on Spark (module doc): the same records, quarantine and counts."""
    path = find_table(source, mapping.file)
    dtypes = file_dtypes(path)
    reshape_export(pd.DataFrame({col: pd.Series([], dtype=d) for col, d in dtypes.items()}), mapping)
    registry = read_registry_spark(tables, source, mapping, mapping.pivot.index if mapping.pivot else None)
    rows = with_row_numbers(registry.rows).withColumnRenamed("_row", ROW)
    holder = SparkRegistry(None, registry.path, registry.dtypes, registry.n_read)  # no DataFrame in the UDF

    def fn(part: pd.DataFrame) -> dict[str, pd.DataFrame]:
        return reshape_part(part, mapping, holder)

    schemas = sample_schemas(fn, (rows,), {"q": Q_TYPES}, PATIENT_KEY)
    outputs = apply_by_key_outputs(fn, (rows,), schemas, key=PATIENT_KEY,
                                   buckets=shuffle_partitions(tables.spark), key_type="string")
    records = _as_pandas_reads(to_pandas(outputs["records"]), schemas["records"], registry.dtypes)
    q = to_pandas(outputs["q"]).drop(columns=["_stage"])
    return trial_records(records, q, mapping, registry.path, list(registry.dtypes), registry.n_read)


__all__ = ["read_trial_registry_spark", "reshape_part"]
