"""`check_sources`: the MIMIC version of a folder, its tables, and its CareVue/MetaVision coverage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from dosewise.data_schemas import MissingSourceTable
from dosewise.data_schemas.raw_mimic import raw_tables

from .duckdb_catalog import _view_sql, raw_read_error
from .mimic_layout import SourceLayout, detect_layout, require_tables


@dataclass(frozen=True)
class SourceReport:
    """What `dosewise etl check-sources` prints."""

    layout: SourceLayout
    tables: list[tuple[str, str, str]]  # (table, found file or "MISSING", purpose)
    care_systems: dict[str, int]


def care_system_counts(layout: SourceLayout) -> dict[str, int]:
    """ICU stays per care system: MIMIC-III ICUSTAYS.dbsource; MIMIC-IV is MetaVision throughout."""
    if "icustays" not in layout.files:
        return {}
    table = raw_tables(layout.version)["icustays"]
    con = duckdb.connect()
    try:
        view = _view_sql(table, layout.files["icustays"], con)
        column = "dbsource" if layout.version == "mimic_iii" else "'metavision'"
        rows = con.execute(
            f"SELECT lower({column}) AS system, count(*) FROM ({view}) GROUP BY 1 ORDER BY 1"
        ).fetchall()
    except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException) as exc:
        raise raw_read_error(exc, "the ICU stays table") from exc
    finally:
        con.close()
    return {str(k): int(v) for k, v in rows}


def check_sources(source: Path, strict: bool = True) -> SourceReport:
    """Detect the layout, list every table, count stays per care system.

    With `strict`, a missing required table raises `MissingSourceTable` (exit 2) naming it and its use.
    """
    layout = detect_layout(Path(source))
    tables = [
        (
            name,
            str(layout.files[name].relative_to(layout.root)) if name in layout.files else "MISSING",
            t.purpose,
        )
        for name, t in raw_tables(layout.version).items()
    ]
    report = SourceReport(layout, tables, care_system_counts(layout))
    if strict:
        require_tables(layout)
        require_care_system_inputs(layout, report.care_systems)
    return report


#: MIMIC-III input tables each care system's stays need (`both`: stays spanning the 2008 switch).
CARE_SYSTEM_INPUTS = {
    "carevue": ("inputevents_cv",),
    "metavision": ("inputevents_mv",),
    "both": ("inputevents_cv", "inputevents_mv"),
}


def require_care_system_inputs(layout: SourceLayout, counts: dict[str, int] | None = None) -> None:
    """Refuse a MIMIC-III folder whose ICU stays include a care system whose input table is absent.

    Without INPUTEVENTS_CV, every CareVue stay would get zero fluids and vasopressors: wrong
    actions with exit 0. An empty (header-only) table counts as absent.
    """
    if layout.version != "mimic_iii":
        return
    counts = care_system_counts(layout) if counts is None else counts
    for system, n in sorted(counts.items()):
        for table in CARE_SYSTEM_INPUTS.get(system, ()):
            if table in layout.files and table not in layout.empty:
                continue
            state = "missing" if table not in layout.files else "empty (header only)"
            raise MissingSourceTable(
                f"ICUSTAYS has {n} {system} stay(s), but {table.upper()} is {state} in {layout.root}: "
                "every fluid and vasopressor dose of those stays would read as zero.",
                f"Add {table.upper()}.csv.gz from the same MIMIC-III extract.",
            )
