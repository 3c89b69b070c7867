"""Spark catalog: raw MIMIC files as typed Spark DataFrames, rule CSVs and concepts as temp views.

The twin of `MimicCatalog` (DuckDB) for `--engine spark`: the same raw-table specs, the same rule
tables and the same concept SQL files, transpiled DuckDB -> Spark SQL by `sql_transpile` at run time.
Each concept becomes a persisted temporary view, so later concepts read it like a table. Nothing is
collected to the driver except row counts; outputs are written by Spark executors.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dosewise.data_schemas import BadInputError, atomic_path
from dosewise.data_schemas.raw_mimic import RawTable, raw_tables

from ..sql_transpile import transpile_statement
from .duckdb_catalog import (
    DEFAULT_PARAMS,
    _check_columns,
    _header,
    concept_order,
    load_concepts,
    load_rules,
    missing_raw_tables,
)
from .mimic_layout import SourceLayout
from .spark_engine import SparkSettings, start_session

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


class SparkCatalog:
    """A Spark session holding the raw tables, the rule tables and the concept views."""

    def __init__(self, layout: SourceLayout, params: Mapping[str, Any], settings: SparkSettings) -> None:
        self.layout = layout
        self.spark = start_session(settings)
        for name, frame in load_rules().items():
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
            names = _header(path)
            _check_columns(table, path, names)
            schema = ", ".join(f"`{n}` {_spark_type(table.columns.get(n, 'VARCHAR'))}" for n in names)
            frame = self.spark.read.csv(
                str(path), schema=schema, header=True, quote='"', escape='"', mode="FAILFAST", multiLine=True
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
            self.spark.sql(statement.sql).persist().createOrReplaceTempView(name)
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
        ordered = frame.orderBy(*keys, *[c for c in frame.columns if c not in keys])
        staging = Path(tempfile.mkdtemp(prefix=f"dosewise-spark-{name}-"))
        try:
            ordered.coalesce(1).write.mode("overwrite").option("compression", "zstd").parquet(
                str(staging / "out")
            )
            (part,) = sorted((staging / "out").glob("part-*.parquet"))
            with atomic_path(path) as tmp:
                shutil.move(str(part), tmp)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return path

    def close(self) -> None:
        """Stop the Spark session."""
        self.spark.stop()


__all__ = ["SparkCatalog"]
