"""Spark catalog: raw MIMIC files as typed Spark DataFrames, rule CSVs and concepts as temp views.

The twin of `MimicCatalog` (DuckDB) for `--engine spark`: the same raw-table specs, the same rule
tables and the same concept SQL files, transpiled DuckDB -> Spark SQL by `sql_transpile` at run time.
Each concept (and each stage table made through `execute`) becomes a persisted temporary view, so
later SQL reads it like a table. Both catalogs answer the same calls (`execute`, `rows`, `df`,
`register`, `copy_to_parquet`), so a stage written against them runs on either engine. What reaches
the driver is what a caller asks for with `rows` or `df` (counts, per-stay frames); row-level tables
are written by Spark executors (`copy_to_parquet`, `write_frame`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import BadInputError, atomic_path
from dosewise.data_schemas.raw_mimic import RawTable, raw_tables

from ..sql_transpile import transpile_statement
from .duckdb_catalog import (
    DEFAULT_PARAMS,
    _check_columns,
    concept_order,
    csv_header,
    load_concepts,
    load_rules,
    missing_raw_tables,
)
from .mimic_layout import SourceLayout
from .spark_engine import SparkSettings, start_session, stop_session

SPARK_TYPES = {
    "BIGINT": "bigint",
    "INTEGER": "int",
    "DOUBLE": "double",
    "VARCHAR": "string",
    "TIMESTAMP": "timestamp_ntz",
    "DATE": "date",
    "BOOLEAN": "boolean",
}


def _spark_type(duckdb_type: str) -> str:
    return SPARK_TYPES.get(duckdb_type.upper(), "string")


def materialize(frame: Any) -> Any:
    """`frame` computed now and kept (executor memory, spilling to disk), its query plan cut off.

    A concept or stage table is read by several later ones; without the cut each reads the whole
    plan of everything before it, and planning the stage SQL alone then takes minutes and runs the
    driver out of memory (plans grow with every view), whatever the data size."""
    return frame.localCheckpoint(eager=True)


def arrow_table(frame: pd.DataFrame) -> Any:
    """A pandas frame as an Arrow table for Spark: columns of no type (all missing) become strings,
    categoricals their values."""
    import pyarrow as pa

    frame = frame.astype({c: "str" for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def spark_frame(spark: Any, frame: pd.DataFrame) -> Any:
    """A (small) pandas frame as a Spark DataFrame through Arrow, its column types kept.

    The schema is passed when there are no rows: Spark Connect cannot infer one from an empty table
    (CANNOT_INFER_EMPTY_SCHEMA), where the classic session takes it from the Arrow schema."""
    from pyspark.sql.pandas.types import from_arrow_schema

    table = arrow_table(frame)
    schema = None if table.num_rows else from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
    return spark.createDataFrame(table, schema=schema)


def to_pandas(frame: Any) -> pd.DataFrame:
    """A Spark DataFrame as pandas through Arrow: integer columns with NULLs as nullable Int64 (as
    DuckDB gives them), timestamps as datetime64[ns]."""
    import pyarrow as pa

    table = frame.toArrow()
    out = table.to_pandas(coerce_temporal_nanoseconds=True)
    for field in table.schema:
        if pa.types.is_integer(field.type) and table.column(field.name).null_count:
            out[field.name] = pd.array(table.column(field.name).to_pylist(), dtype="Int64")
    return out


class SparkTables:
    """Tables of a Spark session as persisted temporary views, run with DuckDB SQL (transpiled).

    The engine-neutral half of the catalog: `execute`, `query`, `rows`, `df`, `register`, `write_frame`,
    the same calls `MimicCatalog` answers for DuckDB. `SparkCatalog` adds the MIMIC raw tables and
    concepts; the chemotherapy ETL's OMOP tables are made on it directly (`chemo/spark_omop.py`).
    """

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def execute(self, sql: str, *, what: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one DuckDB statement on Spark (transpiled): `CREATE [OR REPLACE] TABLE name AS query`
        becomes the persisted temporary view `name`; `$name` parameters become Spark `:name` markers."""
        statement = transpile_statement(sql, what)
        frame = self.spark.sql(statement.sql, args=dict(params)) if params else self.spark.sql(statement.sql)
        if statement.table is not None:
            if self.spark.catalog.tableExists(statement.table):
                self.spark.catalog.dropTempView(statement.table)
            materialize(frame).createOrReplaceTempView(statement.table)

    def query(self, sql: str, *, what: str = "query", params: Mapping[str, Any] | None = None) -> Any:
        """The Spark DataFrame of one DuckDB query (transpiled); nothing is computed yet."""
        statement = transpile_statement(sql, what)
        return self.spark.sql(statement.sql, args=dict(params)) if params else self.spark.sql(statement.sql)

    def rows(self, sql: str, *, what: str = "query") -> list[tuple[Any, ...]]:
        """The rows of one DuckDB query, collected to the driver (counts and other small results)."""
        return [tuple(r) for r in self.query(sql, what=what).collect()]

    def df(self, sql: str, *, what: str) -> pd.DataFrame:
        """A (small) query result as pandas, with DuckDB's dtypes: integers with NULLs as Int64."""
        return to_pandas(self.query(sql, what=what))

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """Make a (small) pandas frame readable as the table `name` (through Arrow, types kept)."""
        spark_frame(self.spark, frame).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        """Forget a frame registered with `register`."""
        self.spark.catalog.dropTempView(name)

    def read_csv(self, path: Path, schema: str) -> Any:
        """A csv or csv.gz file as a Spark DataFrame of `schema` (DDL, the header's columns in order):
        RFC 4180 quoting, fields over several lines, and a malformed row an error (not a NULL row)."""
        return self.spark.read.csv(str(path), schema=schema, header=True, quote='"', escape='"',
                                   multiLine=True, mode="FAILFAST")

    def copy_to_parquet(self, query: str, path: Path) -> Path:
        """Write the rows of a DuckDB `query` (transpiled) to one parquet file at `path`, in its order."""
        return self.write_frame(self.query(query, what=path.name), path)

    def write_frame(self, frame: Any, path: Path) -> Path:
        """Write a Spark DataFrame to one zstd parquet file at `path` atomically, rows in its order."""
        staging = Path(tempfile.mkdtemp(prefix="dosewise-spark-"))
        try:
            frame.coalesce(1).write.mode("overwrite").option("compression", "zstd").parquet(
                str(staging / "out")
            )
            parts = sorted((staging / "out").glob("part-*.parquet"))
            with atomic_path(path) as tmp:
                if parts:
                    shutil.move(str(parts[0]), tmp)
                else:  # no rows and no file: an empty table of the frame's columns
                    to_pandas(frame.limit(0)).to_parquet(tmp, index=False, compression="zstd")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return path

    def count(self, name: str) -> int:
        """Rows of a built concept (the only value collected to the driver)."""
        return int(self.spark.table(name).count())

    def write_parquet(self, name: str, path: Path) -> Path:
        """Write a concept to one parquet file at `path`, rows sorted by the source ids (atomically)."""
        frame = self.spark.table(name)
        keys = [
            k
            for k in ("stay_id", "subject_id", "hadm_id", "charttime", "starttime", "hr")
            if k in frame.columns
        ]
        return self.write_frame(frame.orderBy(*keys, *[c for c in frame.columns if c not in keys]), path)

    def close(self) -> None:
        """Stop the Spark session (`stop_session`: a Connect session lifts its process-wide mark)."""
        stop_session(self.spark)



class SparkCatalog(SparkTables):
    """A Spark session holding the raw MIMIC tables, the rule tables and the concept views."""

    def __init__(self, layout: SourceLayout, params: Mapping[str, Any], settings: SparkSettings) -> None:
        self.layout = layout
        super().__init__(start_session(settings))
        self.rules = load_rules()
        for name, frame in self.rules.items():
            self.spark.createDataFrame(
                frame.astype(object).where(frame.notna(), None)
            ).createOrReplaceTempView(f"rule_{name}")
        tag = "iv" if layout.version == "mimic_iv" else "iii"
        values = {"version_tag": tag, **DEFAULT_PARAMS, **params}
        self.spark.createDataFrame([tuple(values.values())], list(values)).createOrReplaceTempView(
            "etl_params"
        )
        self.spark.sql("SELECT CAST(NULL AS BIGINT) AS stay_id WHERE false").createOrReplaceTempView(
            "sofa_stay_filter"
        )
        tables = raw_tables(layout.version)
        for name, path in layout.files.items():
            self._read_raw(tables[name], path).createOrReplaceTempView(name)
        for name, table in tables.items():
            if (
                name not in layout.files
                and table.alternatives
                and any(a in layout.files for a in table.alternatives)
            ):
                cols = ", ".join(f"CAST(NULL AS {_spark_type(t)}) AS `{c}`" for c, t in table.columns.items())
                self.spark.sql(f"SELECT {cols} WHERE false").createOrReplaceTempView(name)
        self.concepts = load_concepts(layout.version)
        self.built: list[str] = []
        self.stand_ins: list[str] = []

    def _read_raw(self, table: RawTable, path: Path) -> Any:
        """One raw file as a DataFrame with the table's typed columns (csv, csv.gz or parquet)."""
        from pyspark.sql import functions as F

        if path.name.endswith(".parquet"):
            frame = self.spark.read.parquet(str(path))
            present = [c.lower() for c in frame.columns]
            _check_columns(table, path, present)
            frame = frame.toDF(*present)
        else:
            names = csv_header(path)
            _check_columns(table, path, names)
            frame = self.read_csv(
                path, ", ".join(f"`{n}` {_spark_type(table.columns.get(n, 'VARCHAR'))}" for n in names)
            )
        return frame.select(
            *[F.col(f"`{c}`").cast(_spark_type(t)).alias(c) for c, t in table.columns.items()]
        )

    def missing_tables(self, concept: str) -> list[str]:
        """Raw tables (`a or b` for alternatives) that `concept` and its hard dependencies lack."""
        return missing_raw_tables(self.concepts, self.layout, concept)

    def available(self, concept: str) -> bool:
        """True when every raw table `concept` (and its hard dependencies) needs is present."""
        return not self.missing_tables(concept)

    def build(self, names: Iterable[str] | None = None) -> list[str]:
        """Transpile and register the concepts `names` (default all) and their dependencies, in order;
        an optional dependency that cannot be built is an empty view of its `-- columns:` (as on DuckDB)."""
        order = concept_order(self.concepts, names, optional=self.available)
        for name in order:
            for dep in self.concepts[name].optional:
                if dep not in self.built and not self.available(dep):
                    self._stand_in(dep)
            if name in self.built:
                continue
            statement = transpile_statement(self.concepts[name].sql, f"pipelines/sql/.../{name}.sql")
            if statement.table != name:
                raise BadInputError(
                    f"Concept file {name}.sql must create table `{name}`. Got {statement.table}.",
                    "Name the file after the table it creates.",
                )
            materialize(self.spark.sql(statement.sql)).createOrReplaceTempView(name)
            self.built.append(name)
        return order

    def _stand_in(self, name: str) -> None:
        """An empty view for an optional concept that cannot be built (its `-- columns:` header)."""
        columns = self.concepts[name].columns
        if not columns:
            raise BadInputError(
                f"Optional concept `{name}` cannot be built and declares no `-- columns:` header.",
                f"Add the raw table(s) {', '.join(self.missing_tables(name))}, or the header.",
            )
        import sqlglot
        from sqlglot import exp

        create = sqlglot.parse_one(f"CREATE TABLE {name} ({columns})", read="duckdb")
        cols = ", ".join(
            f"CAST(NULL AS {d.args['kind'].sql('spark')}) AS `{d.name}`"
            for d in create.find_all(exp.ColumnDef)
        )
        self.spark.sql(f"SELECT {cols} WHERE false").createOrReplaceTempView(name)
        self.built.append(name)
        self.stand_ins.append(name)


__all__ = ["SparkCatalog", "SparkTables", "arrow_table", "materialize", "spark_frame", "to_pandas"]
