"""Find the raw MIMIC files in a folder: MIMIC-IV (`hosp/`, `icu/`) or MIMIC-III (flat upper-case).

A missing table becomes an error that lists what was found and what the table is needed for.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from dosewise.data_schemas import BadInputError, MissingSourceTable
from dosewise.data_schemas.raw_mimic import MimicVersion, RawTable, raw_tables

SUFFIXES = (".csv.gz", ".csv", ".parquet")


@dataclass(frozen=True)
class SourceLayout:
    """The files of one MIMIC source folder, by view name, and the tables that are absent."""

    root: Path
    version: MimicVersion
    files: dict[str, Path]
    missing: tuple[str, ...]
    empty: tuple[str, ...] = ()  # optional tables present with a header only

    @property
    def label(self) -> str:
        """Human name of the detected version."""
        return "MIMIC-IV" if self.version == "mimic_iv" else "MIMIC-III"


def _find(folder: Path, stems: Iterable[str]) -> Path | None:
    """The one file of a table; two (e.g. `.csv` beside `.csv.gz`, one maybe a half copy) is an error."""
    found = list(dict.fromkeys(
        folder / f"{stem}{suffix}" for stem in stems for suffix in SUFFIXES
        if (folder / f"{stem}{suffix}").is_file()
    ))
    if len(found) > 1:
        raise BadInputError(
            f"Table `{found[0].name.split('.')[0].lower()}` has {len(found)} files in {folder}: "
            f"{', '.join(p.name for p in found)}; which one is the table is ambiguous.",
            "Keep exactly one file per table (remove or move the other copies).",
        )
    return found[0] if found else None


def _has_rows(path: Path) -> bool:
    """True when a raw file holds at least one data row after its header (cheap: reads two lines)."""
    if path.name.endswith(".parquet"):
        try:
            return bool(pq.ParquetFile(path).metadata.num_rows)
        except Exception:  # not readable as parquet: the typed view reports it with the file name
            return True
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            if not handle.readline().strip():
                return True  # no header at all: the header check says so
            return any(line.strip() for line in itertools.islice(handle, 100))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        return True  # corrupt: the header check and the typed view name the problem


def detect_version(source: Path) -> MimicVersion:
    """MIMIC-IV when `hosp/` or `icu/` exist, MIMIC-III when upper-case ICUSTAYS is present."""
    source = Path(source)
    if not source.is_dir():
        raise BadInputError(
            f"Source folder {source} does not exist.",
            "Pass --source the folder that holds MIMIC-IV's hosp/ and icu/ or MIMIC-III's *.csv.gz files.",
        )
    if (source / "hosp").is_dir() or (source / "icu").is_dir():
        return "mimic_iv"
    if _find(source, ("ICUSTAYS", "icustays")) is not None:
        return "mimic_iii"
    found = sorted(p.name for p in source.iterdir())[:12]
    raise MissingSourceTable(
        f"{source} is neither a MIMIC-IV folder (hosp/, icu/) nor a MIMIC-III folder (ICUSTAYS.csv.gz); "
        f"found: {', '.join(found) or 'nothing'}.",
        "Pass --source the unpacked MIMIC folder, or create one with `dosewise synth icu`.",
    )


def _locate(source: Path, table: RawTable) -> Path | None:
    if table.module:
        return _find(source / table.module, (table.stem, table.stem.upper()))
    return _find(source, (table.stem, table.stem.lower()))


def detect_layout(source: Path) -> SourceLayout:
    """Detect the MIMIC version of `source` and locate every raw table the ETL can read."""
    source = Path(source)
    version = detect_version(source)
    files: dict[str, Path] = {}
    missing: list[str] = []
    empty: list[str] = []
    for name, table in raw_tables(version).items():
        path = _locate(source, table)
        if path is None:
            missing.append(name)
        else:
            if path.stat().st_size == 0:
                raise BadInputError(
                    f"{path} is an empty file (0 bytes); table `{name}` is needed for {table.purpose}.",
                    "Re-extract or re-download the file; an empty file has not even a header row.",
                )
            files[name] = path
            if not _has_rows(path):
                if table.required:
                    raise BadInputError(
                        f"{path} has a header but no rows; table `{name}` is needed for {table.purpose}.",
                        "Re-extract or re-download the file; an empty table would silently leave every "
                        "value it provides imputed.",
                    )
                empty.append(name)
    return SourceLayout(root=source, version=version, files=files, missing=tuple(missing),
                        empty=tuple(empty))


def require_tables(layout: SourceLayout, names: Iterable[str] | None = None) -> None:
    """Raise `MissingSourceTable` for the first required table (of `names`) that is absent."""
    tables = raw_tables(layout.version)
    wanted = list(names) if names is not None else [n for n, t in tables.items() if t.required]
    for name in wanted:
        table = tables[name]
        if name in layout.files:
            continue
        if table.alternatives and any(alt in layout.files for alt in table.alternatives):
            continue
        where = f"{table.module}/{table.stem}" if table.module else table.stem
        either = f" (or {', '.join(table.alternatives)})" if table.alternatives else ""
        raise MissingSourceTable(
            f"Table `{name}`{either} not found in {layout.root} ({layout.label}): it is needed for "
            f"{table.purpose}. Expected {where} with one of {', '.join(SUFFIXES)}; found: "
            f"{', '.join(sorted(layout.files)) or 'no tables'}.",
            "Add the missing file to the source folder, or point --source at the complete extract.",
        )
    if (
        layout.version == "mimic_iii"
        and names is None
        and not ({"inputevents_cv", "inputevents_mv"} & set(layout.files))
    ):
        raise MissingSourceTable(
            f"Neither INPUTEVENTS_CV nor INPUTEVENTS_MV found in {layout.root}: one is needed for "
            "IV fluids and vasopressors (the actions).",
            "Add INPUTEVENTS_CV.csv.gz (CareVue) and/or INPUTEVENTS_MV.csv.gz (MetaVision).",
        )
