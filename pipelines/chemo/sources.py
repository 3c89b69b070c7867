"""Which oncology input a folder holds (flat registry or OMOP CDM), and reading it into registry rows.

A registry folder has `registry.csv`, `.csv.gz` or `.parquet` (or the file its mapping names);
an OMOP folder has `person` and `drug_exposure` (one file per table, OMOP's lower-case names).
A simulator folder also has `truth/behaviour.parquet`: the clinicians' option probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dosewise.data_schemas import BadInputError

from .config import ChemoPipelineConfig
from .mapping import find_table

OMOP_MARKERS = ("person", "drug_exposure", "measurement", "episode", "episode_event")


def _has(source: Path, stem: str) -> bool:
    return any((source / f"{stem}{ext}").is_file() for ext in (".parquet", ".csv.gz", ".csv"))


@dataclass
class ChemoSource:
    """A detected input folder."""

    folder: Path
    format: str  # registry | omop
    behaviour: pd.DataFrame | None = None
    files: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the stage note."""
        truth = "; simulator behaviour probabilities attached" if self.behaviour is not None else ""
        return f"{len(self.files)} file(s) read from {self.folder}{truth}"


def detect_format(source: Path, registry_stem: str = "registry") -> str | None:
    """`registry`, `omop` or None for a folder."""
    if any(_has(source, t) for t in OMOP_MARKERS):  # missing ones are named when read
        return "omop"
    if _has(source, registry_stem):
        return "registry"
    return None


def detect_chemo_source(source: Path, wanted: str, registry_stem: str = "registry") -> ChemoSource:
    """The folder's format (checked against `wanted` unless `auto`), with simulator truth if present."""
    if not source.is_dir():
        raise BadInputError(
            f"--source {source} is not a folder.", "Pass the folder of the registry or OMOP files."
        )
    found = detect_format(source, registry_stem)
    if found is None:
        raise BadInputError(
            f"{source} holds neither a registry table ({registry_stem}.csv/.csv.gz/.parquet) nor OMOP CDM "
            "tables (person, drug_exposure, ...).",
            "Point --source at the export folder; `dosewise etl check-sources --source DIR` lists "
            "what it sees.",
        )
    if wanted != "auto" and wanted != found:
        raise BadInputError(
            f"{source} holds {found} input, but the config says input.format = {wanted}.",
            f"Use --config chemo_{found} or --set input.format=auto.",
        )
    truth = source / "truth" / "behaviour.parquet"
    behaviour = pd.read_parquet(truth) if truth.is_file() else None
    if behaviour is not None:
        behaviour["patient_id"] = behaviour["patient_id"].astype(str)
    return ChemoSource(source, found, behaviour)


def read_chemo_source(
    src: ChemoSource, config: ChemoPipelineConfig
) -> tuple[pd.DataFrame, pd.DataFrame, int, dict[str, int]]:
    """Registry-shaped rows, the boundary quarantine, rows read (table grain) and notes."""
    notes: dict[str, int] = {}
    if src.format == "registry":
        from .registry import load_mapping, read_registry

        mapping = load_mapping(config.input.mapping)
        rows, quarantine, path, n_read = read_registry(src.folder, mapping)
        src.files = [path]
    else:
        from .omop_cycles import read_omop

        rows, quarantine, src.files, n_read, notes = read_omop(src.folder, config)
    if src.behaviour is not None:
        logged = pd.DataFrame(
            {
                "patient_id": rows["patient_id"].astype(str),
                "cycle_number": rows["cycle_number"].astype("int64"),
            }
        )
        keys = src.behaviour[["patient_id", "cycle_number"]].astype({"cycle_number": "int64"})
        covered = logged.merge(keys.drop_duplicates(), how="left", indicator=True)["_merge"] == "both"
        if not covered.all():
            src.behaviour = None  # truth does not cover these records: do not attach partial propensities
        else:
            src.files.append(src.folder / "truth" / "behaviour.parquet")
    return rows, quarantine, n_read, notes


def trial_records_in(source: Path) -> list[tuple[str, str, str]]:
    """(shipped config, file, what) for each shipped trial-registry config whose file is in `source`."""
    import tomllib

    from .. import config_folder

    found = []
    for entry in sorted(config_folder().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        mapping = tomllib.loads(entry.read_text(encoding="utf-8")).get("input", {}).get("mapping")
        if isinstance(mapping, dict) and mapping.get("design") == "trial":
            stem = str(mapping.get("file", "registry"))
            path = next((source / f"{stem}{e}" for e in (".parquet", ".csv.gz", ".csv")
                         if (source / f"{stem}{e}").is_file()), None)
            if path is not None:
                name = entry.name.removesuffix(".toml")
                found.append((name, path.name, f"trial records, one row per patient (--config {name})"))
    return found


def oncology_source_report(source: Path) -> tuple[str | None, list[tuple[str, str, str]], list[str]]:
    """(format or None, rows of table / file / needed for, missing required tables) for check-sources."""
    from dosewise.data_schemas.raw_omop import OPTIONAL_TABLES, REQUIRED_TABLES, TABLE_PURPOSE

    fmt = detect_format(source) if source.is_dir() else None
    if fmt == "registry":
        path = find_table(source, "registry")
        return fmt, [("registry", path.name, "one row per patient per cycle (mapping: registry_default)")], []
    if fmt is None and source.is_dir():
        trials = trial_records_in(source)
        return ("trial", trials, []) if trials else (None, [], [])
    if fmt != "omop":
        return None, [], []
    rows, missing = [], []
    for name in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        found = next(
            (f"{name}{e}" for e in (".parquet", ".csv.gz", ".csv") if (source / f"{name}{e}").is_file()), ""
        )
        rows.append(
            (
                name,
                found or "missing",
                TABLE_PURPOSE[name] + ("" if name in REQUIRED_TABLES else " (optional)"),
            )
        )
        if not found and name in REQUIRED_TABLES:
            missing.append(name)
    return fmt, rows, missing


__all__ = [
    "ChemoSource",
    "detect_chemo_source",
    "detect_format",
    "find_table",
    "oncology_source_report",
    "read_chemo_source",
    "trial_records_in",
]
