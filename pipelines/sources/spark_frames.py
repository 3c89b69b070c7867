"""Pandas functions on groups of whole stays (or patients), run by Spark: `apply_by_key`.

The ETL's per-stay steps (the stay x bin grid, sample-and-hold, derived states, actions, rewards) are
pure pandas functions that treat each stay on its own rows (`groupby("stay_id")` inside). On Spark
they run unchanged as grouped pandas UDFs (`applyInPandas`, or `cogroup(...).applyInPandas` for a
second frame such as the cohort rows): the rows are grouped by a hash bucket of the key, so every
group holds whole stays, many of them, and one Python call serves thousands of stays instead of one
(a call per stay costs more than the work on a 20-row stay). Nothing is collected to the driver.

The output schema is the function's own answer on empty frames of the input columns (its column
order and dtypes), with `types` overriding any column whose dtype an empty frame cannot show.

A function with several outputs (the chemotherapy ETL's per-patient stages return kept rows,
quarantine records and counts at once) runs through `apply_by_key_outputs`: its frames travel as
one Spark DataFrame tagged by output (`OUTPUT`), with declared schemas, and are split apart after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

BUCKET = "_key_bucket"

_NUMPY_OF_SPARK = {
    "LongType": "int64", "IntegerType": "int32", "ShortType": "int16", "ByteType": "int8",
    "DoubleType": "float64", "FloatType": "float32", "BooleanType": "bool",
    "TimestampNTZType": "datetime64[ns]", "TimestampType": "datetime64[ns]", "DateType": "datetime64[ns]",
}


def empty_frame(schema: Any) -> pd.DataFrame:
    """An empty pandas frame with the columns of a Spark schema, in the dtypes Arrow gives them."""
    return pd.DataFrame({
        f.name: pd.Series([], dtype=_NUMPY_OF_SPARK.get(type(f.dataType).__name__, "str"))
        for f in schema.fields
    })


def spark_type(dtype: Any) -> str:
    """The Spark SQL type of a pandas dtype (strings and objects as string)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "string"
    kind = np.dtype(dtype).kind if not isinstance(dtype, pd.api.extensions.ExtensionDtype) else dtype.kind
    if kind == "f":
        return "double"
    if kind in "iu":
        size = getattr(dtype, "itemsize", 8)
        return {1: "tinyint", 2: "smallint", 4: "int"}.get(size, "bigint")
    if kind == "b":
        return "boolean"
    if kind == "M":
        return "timestamp_ntz"
    return "string"


def output_schema(fn: Callable[..., pd.DataFrame], frames: tuple[Any, ...], types: Mapping[str, str]) -> str:
    """The DDL schema of `fn`'s output, read from its answer on empty frames of the inputs' columns."""
    sample = fn(*(empty_frame(f.schema) for f in frames))
    return ", ".join(f"`{c}` {types.get(c) or spark_type(sample[c].dtype)}" for c in sample.columns)


def with_bucket(frame: Any, key: str, buckets: int, key_type: str = "bigint") -> Any:
    """`frame` with the hash bucket of `key` (cast to `key_type`, so both sides of a cogroup agree:
    `string` for keys that are ids in one frame and their text in another)."""
    from pyspark.sql import functions as F

    return frame.withColumn(BUCKET, F.pmod(F.xxhash64(F.col(key).cast(key_type)), F.lit(buckets)))


def apply_by_key(
    fn: Callable[..., pd.DataFrame],
    frames: tuple[Any, ...],
    *,
    key: str = "stay_id",
    buckets: int,
    types: Mapping[str, str] | None = None,
    schema: str | None = None,
    key_type: str = "bigint",
) -> Any:
    """Run `fn(part, [other_part])` on Spark over groups of whole `key`s of one or two DataFrames.

    `fn` gets pandas frames holding the rows of the same set of keys from each input (either may be
    empty) and must treat each key on its own rows; its outputs, concatenated, are the result.
    `schema` (DDL) declares the output instead of reading it from `fn` on empty frames.
    """
    if len(frames) not in (1, 2):
        raise ValueError(f"apply_by_key takes one or two frames. Got {len(frames)}.")
    schema = schema or output_schema(fn, frames, types or {})

    def one(part: pd.DataFrame) -> pd.DataFrame:
        return fn(part.drop(columns=[BUCKET]))

    def two(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
        return fn(left.drop(columns=[BUCKET], errors="ignore"), right.drop(columns=[BUCKET], errors="ignore"))

    grouped = [with_bucket(f, key, buckets, key_type).groupBy(BUCKET) for f in frames]
    if len(grouped) == 1:
        return grouped[0].applyInPandas(one, schema)
    return grouped[0].cogroup(grouped[1]).applyInPandas(two, schema)


OUTPUT = "_output"
_NULLABLE = {"bigint": "Int64", "int": "Int32", "smallint": "Int16", "tinyint": "Int8", "boolean": "boolean",
             "double": "float64", "timestamp_ntz": "datetime64[ns]"}

Schemas = Mapping[str, Mapping[str, str]]
"""Output name -> {column: Spark SQL type}, in column order."""


def frame_types(frame: pd.DataFrame) -> dict[str, str]:
    """{column: Spark SQL type} of a pandas frame (a sample of an output, for `apply_by_key_outputs`)."""
    return {col: spark_type(frame[col].dtype) for col in frame.columns}


def _column(name: str, col: str) -> str:
    return f"{name}__{col}"


def _tagged(outputs: Mapping[str, pd.DataFrame], schemas: Schemas) -> pd.DataFrame:
    """The outputs as one frame: `OUTPUT` names each row's output, `<output>__<column>` its values
    (null in the other outputs' columns; integers and booleans nullable)."""
    parts = []
    for name in schemas:
        out = outputs.get(name)
        n = 0 if out is None else len(out)
        cols: dict[str, Any] = {OUTPUT: pd.Series([name] * n, dtype=object)}
        for other, other_types in schemas.items():
            for col, kind in other_types.items():
                dtype = _NULLABLE.get(kind, object)
                if other == name and out is not None and col in out:
                    cols[_column(other, col)] = pd.Series(out[col].to_numpy(), dtype=None).astype(dtype)
                else:
                    cols[_column(other, col)] = pd.Series([None] * n, dtype=object).astype(dtype)
        parts.append(pd.DataFrame(cols))
    return pd.concat(parts, ignore_index=True)


def apply_by_key_outputs(
    fn: Callable[..., Mapping[str, pd.DataFrame]],
    frames: tuple[Any, ...],
    schemas: Schemas,
    *,
    key: str,
    buckets: int,
    key_type: str = "bigint",
) -> dict[str, Any]:
    """`apply_by_key` for a function returning several frames (by output name): each output as a
    Spark DataFrame of its declared columns, computed once (`materialize` the result's parts)."""
    from pyspark.sql import functions as F

    from .spark_catalog import materialize

    columns = [(OUTPUT, "string")] + [(_column(n, c), t) for n, ts in schemas.items() for c, t in ts.items()]
    ddl = ", ".join(f"`{c}` {t}" for c, t in columns)
    tagged = materialize(apply_by_key(lambda *parts: _tagged(fn(*parts), schemas), frames, key=key,
                                      buckets=buckets, schema=ddl, key_type=key_type))
    return {name: tagged.where(F.col(OUTPUT) == name).select(
        *[F.col(_column(name, c)).alias(c) for c in types]) for name, types in schemas.items()}


def shuffle_partitions(spark: Any) -> int:
    """The session's `spark.sql.shuffle.partitions` (the number of groups `apply_by_key` makes)."""
    return max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))


__all__ = ["BUCKET", "OUTPUT", "apply_by_key", "apply_by_key_outputs", "empty_frame", "frame_types",
           "output_schema", "shuffle_partitions", "spark_type", "with_bucket"]
