"""DuckDB catalog: raw MIMIC files as typed views, rule CSVs as tables, concept SQL run in order.

Every raw file is read with explicit column types and quote/escape settings (DuckDB's CSV sniffer
picks no quote character on MIMIC-III CHARTEVENTS and then fails deep into the file).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dosewise.data_schemas import BadInputError, MissingSourceTable
from dosewise.data_schemas.raw_mimic import RawTable, raw_tables

from .mimic_layout import SourceLayout

RULE_FILES = (
    "item_map",
    "unit_conversions",
    "rate_units",
    "vasopressor_equivalents",
    "fluid_items",
    "outlier_bounds",
    "hold_hours",
    "antibiotics",
    "blood_gas_specimens",
    "event_flags",
)
#: `etl_params` values a caller may leave out (the config defaults; see `SepsisPipelineConfig`).
DEFAULT_PARAMS: dict[str, Any] = {"sofa_scope": "all", "gcs_under_sedation": "pre_sedation"}


def csv_header(path: Path) -> list[str]:
    """Column names from the first line of a CSV (plain or gzip), lower-cased."""
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            line = handle.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise BadInputError(
            f"Cannot read the header of {path}: {exc}.",
            "The file is corrupt or truncated; re-download or re-extract it.",
        ) from exc
    if not line.strip():
        raise BadInputError(
            f"{path} has no header row.", "Re-extract the file; MIMIC CSVs start with a header."
        )
    return [name.strip().strip('"').lower() for name in line.rstrip("\r\n").split(",")]


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _view_sql(table: RawTable, path: Path, con: duckdb.DuckDBPyConnection) -> str:
    """SELECT that reads `path` with the table's typed columns (other columns stay text)."""
    if path.name.endswith(".parquet"):
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_sql_str(str(path))})").fetchall()
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0][:200]
            raise BadInputError(
                f"{path} must be a parquet file (its name ends in .parquet). Got a file DuckDB cannot read "
                f"as parquet: {reason}",
                f"Re-export the {table.name} table as parquet, or as {table.name}.csv.gz beside it.",
            ) from None
        present = [r[0].lower() for r in described]
        _check_columns(table, path, present)
        cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in table.columns.items())
        return f"SELECT {cols} FROM read_parquet({_sql_str(str(path))})"
    names = csv_header(path)
    _check_columns(table, path, names)
    types = ", ".join(f"'{n}': '{table.columns.get(n, 'VARCHAR')}'" for n in names)
    cols = ", ".join(f'"{c}"' for c in table.columns)
    return (
        f"SELECT {cols} FROM read_csv({_sql_str(str(path))}, header=true, delim=',', quote='\"', "
        f"escape='\"', columns={{{types}}}, auto_detect=false, "
        "null_padding=false)"
    )


def _check_columns(table: RawTable, path: Path, present: list[str]) -> None:
    missing = [c for c in table.columns if c not in present]
    if missing:
        raise MissingSourceTable(
            f"{path} lacks column(s) {', '.join(missing)} of table `{table.name}`, "
            f"needed for {table.purpose}.",
            f"Use the official file; its header has: {', '.join(present[:20])}.",
        )


def load_rules(folder: Traversable | None = None) -> dict[str, pd.DataFrame]:
    """Read every rule CSV (item maps, conversions, bounds, hold hours, equivalents)."""
    root = folder or files("dosewise.pipelines") / "rules"
    rules = {}
    for name in RULE_FILES:
        with (root / f"{name}.csv").open("r", encoding="utf-8") as handle:
            rules[name] = pd.read_csv(handle, keep_default_na=False, na_values=[""])
    return rules


def rules_sha256(folder: Traversable | None = None) -> dict[str, str]:
    """SHA-256 of each rule CSV, recorded in the manifest."""
    root = folder or files("dosewise.pipelines") / "rules"
    return {
        f"rules/{n}.csv": hashlib.sha256((root / f"{n}.csv").read_bytes()).hexdigest() for n in RULE_FILES
    }


@dataclass(frozen=True)
class Concept:
    """One concept SQL file: the table it makes, its raw-table needs and concept dependencies."""

    name: str
    sql: str
    requires: tuple[tuple[str, ...], ...]
    depends: tuple[str, ...]
    optional: tuple[str, ...] = ()
    columns: str = ""


def _header_field(sql: str, key: str) -> str:
    match = re.search(rf"^-- {key}:(.*)$", sql, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


def load_concepts(version: str) -> dict[str, Concept]:
    """Concept SQL files for `version` (its own folder overrides `common/`), by table name."""
    root = files("dosewise.pipelines") / "sql"
    found: dict[str, Concept] = {}
    for folder in ("common", version):
        for entry in sorted((root / folder).iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".sql"):
                continue
            sql = entry.read_text(encoding="utf-8")
            requires = tuple(
                tuple(alt.strip() for alt in part.split("|"))
                for part in _header_field(sql, "requires").split(",")
                if part.strip()
            )
            depends = tuple(d.strip() for d in _header_field(sql, "depends").split(",") if d.strip())
            optional = tuple(d.strip() for d in _header_field(sql, "optional").split(",") if d.strip())
            name = entry.name[: -len(".sql")]
            found[name] = Concept(
                name=name,
                sql=sql,
                requires=requires,
                depends=depends,
                optional=optional,
                columns=_header_field(sql, "columns"),
            )
    return found


def concept_order(
    concepts: Mapping[str, Concept],
    wanted: Iterable[str] | None = None,
    *,
    optional: bool | Callable[[str], bool] = True,
) -> list[str]:
    """Dependency order of `wanted` concepts (default all), each after what it depends on.

    Hard dependencies (`-- depends:`) are always ordered; optional ones (`-- optional:`) when
    `optional` is True, or when it is a predicate that is true for them (e.g. "is buildable").
    """
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in trail or name not in concepts:
            raise BadInputError(
                f"Concept `{name}` is unknown or circular (via {' -> '.join(trail)}).",
                f"Known concepts: {', '.join(sorted(concepts))}.",
            )
        extra = [d for d in concepts[name].optional
                 if optional is True or (callable(optional) and optional(d))]
        for dep in (*concepts[name].depends, *extra):
            visit(dep, (*trail, name))
        seen.add(name)
        order.append(name)

    for name in wanted if wanted is not None else sorted(concepts):
        visit(name, ())
    return order


def missing_raw_tables(concepts: Mapping[str, Concept], layout: SourceLayout, concept: str) -> list[str]:
    """Raw tables (`a or b` for alternatives) that `concept` and its hard dependencies lack in `layout`
    (shared by the DuckDB and Spark catalogs)."""
    needs = set()
    for dep in concept_order(concepts, [concept], optional=False):
        for options in concepts[dep].requires:
            if not any(o in layout.files for o in options):
                needs.add(" or ".join(options))
    return sorted(needs)


class MimicCatalog:
    """A DuckDB connection holding the raw views, the rule tables and the concept tables."""

    def __init__(
        self,
        layout: SourceLayout,
        params: Mapping[str, Any],
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        database: str = ":memory:",
    ) -> None:
        self.layout = layout
        self.con = duckdb.connect(database)
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {_sql_str(memory_limit)}")
        self._spill = tempfile.TemporaryDirectory(prefix="dosewise-duckdb-")
        self.con.execute(f"SET temp_directory = {_sql_str(self._spill.name)}")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")
        self.rules = load_rules()
        for name, frame in self.rules.items():
            self.con.register(f"_rule_{name}", frame)
            self.con.execute(f"CREATE OR REPLACE TABLE rule_{name} AS SELECT * FROM _rule_{name}")
            self.con.unregister(f"_rule_{name}")
        tag = "iv" if layout.version == "mimic_iv" else "iii"
        params_frame = pd.DataFrame([{"version_tag": tag, **DEFAULT_PARAMS, **params}])
        self.con.register("_etl_params", params_frame)
        self.con.execute("CREATE OR REPLACE TABLE etl_params AS SELECT * FROM _etl_params")
        self.con.unregister("_etl_params")
        self.con.execute("CREATE OR REPLACE TABLE sofa_stay_filter (stay_id BIGINT)")
        # one byte per row instead of a string: chart_measurements holds most of chartevents
        # (item-mapped variables plus derived ones such as gcs_total, which gcs.sql computes)
        self.con.execute("CREATE TYPE state_variable AS ENUM (SELECT DISTINCT variable FROM (SELECT variable "
                         "FROM rule_item_map UNION SELECT variable FROM rule_hold_hours) ORDER BY variable)")
        tables = raw_tables(layout.version)
        for name, path in layout.files.items():
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {_view_sql(tables[name], path, self.con)}')
        self._empty_alternatives(tables)
        self.concepts = load_concepts(layout.version)
        self.built: list[str] = []
        self.stand_ins: list[str] = []

    def _empty_alternatives(self, tables: Mapping[str, RawTable]) -> None:
        """An absent either/or table (MIMIC-III CareVue or MetaVision inputs) becomes an empty view."""
        for name, table in tables.items():
            if (
                name not in self.layout.files
                and table.alternatives
                and any(a in self.layout.files for a in table.alternatives)
            ):
                cols = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in table.columns.items())
                self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT {cols} WHERE false')

    def missing_tables(self, concept: str) -> list[str]:
        """Raw tables (`a or b` for alternatives) that `concept` and its hard dependencies lack."""
        return missing_raw_tables(self.concepts, self.layout, concept)

    def available(self, concept: str) -> bool:
        """True when every raw table `concept` (and its hard dependencies) needs is present."""
        return not self.missing_tables(concept)

    def build(self, names: Iterable[str] | None = None) -> list[str]:
        """Run the concept SQL files for `names` (default all) and their dependencies, in order.

        An optional dependency whose raw tables are missing becomes an empty table of the columns
        its header declares (`-- columns:`), listed in `self.stand_ins`.
        """
        order = concept_order(self.concepts, names, optional=self.available)
        for name in order:
            for dep in self.concepts[name].optional:
                if dep not in self.built and not self.available(dep):
                    self._stand_in(dep)
            if name not in self.built:
                self.execute(self.concepts[name].sql, what=f"concept `{name}`")
                self.built.append(name)
        return order

    def _stand_in(self, name: str) -> None:
        """An empty table for an optional concept that cannot be built (its `-- columns:` header)."""
        columns = self.concepts[name].columns
        if not columns:
            raise BadInputError(
                f"Optional concept `{name}` cannot be built and declares no `-- columns:` header.",
                f"Add the raw table(s) {', '.join(self.missing_tables(name))}, or the header.",
            )
        self.execute(f"CREATE OR REPLACE TABLE {name} ({columns})", what=f"empty `{name}`")
        self.built.append(name)
        self.stand_ins.append(name)

    def execute(self, sql: str, *, what: str, params: Mapping[str, Any] | None = None) -> None:
        """Run SQL (with named `$parameters` from `params`), turning DuckDB's read and conversion
        errors into a `BadInputError`."""
        try:
            if params:
                self.con.execute(sql, dict(params))
            else:
                self.con.execute(sql)
        except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException) as exc:
            raise raw_read_error(exc, what) from exc

    def df(self, sql: str, *, what: str) -> pd.DataFrame:
        """Run a query and return a pandas frame, with the same error translation as `execute`."""
        try:
            return self.con.execute(sql).df()
        except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException) as exc:
            raise raw_read_error(exc, what) from exc

    def rows(self, sql: str, *, what: str = "query") -> list[tuple[Any, ...]]:
        """Run a query and return its rows (for counts and other small results)."""
        try:
            return self.con.execute(sql).fetchall()
        except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException) as exc:
            raise raw_read_error(exc, what) from exc

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """Make a (small) pandas frame readable as the table `name`."""
        self.con.register(name, frame)

    def unregister(self, name: str) -> None:
        """Forget a frame registered with `register`."""
        self.con.unregister(name)

    def copy_to_parquet(self, query: str, path: Path) -> Path:
        """Write the rows of `query` to one parquet file at `path`, atomically, in query order."""
        from ..outputs import copy_to_parquet

        return copy_to_parquet(self.con, query, path)

    def close(self) -> None:
        """Close the DuckDB connection and remove its spill folder."""
        self.con.close()
        self._spill.cleanup()


def raw_read_error(exc: Exception, what: str) -> BadInputError:
    """A readable error for a raw file DuckDB could not parse (bad timestamp, truncated gzip...).

    It names the file, the line and the column, never the row's values: DuckDB's message quotes
    the whole raw line (subject, admission and stay ids included), which stays behind `--debug`.
    """
    text = str(exc)
    file_match = re.search(r"^\s*file = (.+)$", text, flags=re.MULTILINE)
    line_match = re.search(r"CSV Error on Line: (\d+)", text)
    column_match = re.search(r'converting column "([^"]+)"', text) or re.search(
        r"Column (\w+) is being converted", text
    )
    type_match = re.search(r"to '([A-Z0-9_]+)'", text)
    where = [f"file {file_match.group(1).strip()}"] if file_match else []
    if line_match:
        where.append(f"line {line_match.group(1)}")
    if column_match:
        where.append(f"column `{column_match.group(1)}`")
    first = text.splitlines()[0] if text else type(exc).__name__
    kind = first.split(":", 1)[0] if ":" in first else type(exc).__name__
    if type_match:
        problem = f"a value cannot be read as {type_match.group(1)}"
    else:  # keep DuckDB's first line, with anything quoted (a value) blanked out
        problem = re.sub(r"\"[^\"]*\"|'[^']*'", "'…'", first)[:300]
    return BadInputError(
        f"While computing {what}, a raw file could not be read ({', '.join(where) or kind}): {problem}.",
        "Fix or re-extract the named file and column (timestamps must be YYYY-MM-DD HH:MM:SS; gzip files "
        "must be complete); --debug shows DuckDB's full message, which quotes the row.",
    )
