"""Which oncology input a folder holds (flat registry or OMOP CDM), and reading it into registry rows.

A registry folder has `registry.csv`, `.csv.gz` or `.parquet` (or the file its mapping names);
an OMOP folder has `person` and `drug_exposure` (one file per table, OMOP's lower-case names).
A simulator folder also has `truth/behaviour.parquet`: the clinicians' option probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from dosewise.data_schemas import BadInputError, empty_quarantine

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
    behaviour_path: Path | None = None  # truth/behaviour.parquet of a simulator folder
    files: list[Path] = field(default_factory=list)
    behaviour_attached: bool = False  # the truth covers every record read (set once all are read)

    def describe(self) -> str:
        """One line for the stage note."""
        truth = "; simulator behaviour probabilities attached" if self.behaviour_attached else ""
        return f"{len(self.files)} file(s) read from {self.folder}{truth}"



def covered_by(behaviour: pd.DataFrame, rows: pd.DataFrame) -> bool:
    """Whether the simulator's truth has a row for every (patient, cycle) record read."""
    logged = pd.DataFrame(
        {"patient_id": rows["patient_id"].astype(str), "cycle_number": rows["cycle_number"].astype("int64")}
    )
    keys = behaviour[["patient_id", "cycle_number"]].astype({"cycle_number": "int64"})
    return bool((logged.merge(keys.drop_duplicates(), how="left", indicator=True)["_merge"] == "both").all())


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
    return ChemoSource(source, found, truth if truth.is_file() else None)


@dataclass
class RegistryBatches:
    """A registry export read whole (one batch): its rows and boundary quarantine."""

    rows: pd.DataFrame
    quarantine: pd.DataFrame
    n_read: int
    notes: dict[str, int] = field(default_factory=dict)
    n_batches: int = 1

    behaviour_path: Path | None = None

    def batch(self, bucket: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The rows (checked at the boundary when read) and no further quarantine."""
        return self.rows, empty_quarantine(["patient_id"])

    def release_rows(self) -> None:
        """Every batch was read: free the rows."""
        self.rows = self.rows.iloc[:0]

    def behaviour(self, bucket: int) -> pd.DataFrame | None:
        """The simulator's option probabilities (truth/behaviour.parquet), or None without truth."""
        if self.behaviour_path is None:
            return None
        frame = pd.read_parquet(self.behaviour_path)
        frame["patient_id"] = frame["patient_id"].astype(str)
        return frame

    def boundary_quarantine(self) -> pd.DataFrame:
        """Quarantine records of the mapping and the registry schema."""
        return self.quarantine


class CycleBatches(Protocol):
    """Registry-shaped cycle rows in patient batches, after the boundary checks."""

    n_read: int
    notes: dict[str, int]
    n_batches: int

    def batch(self, bucket: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Checked rows of batch `bucket` and their quarantine records."""

    def release_rows(self) -> None:
        """Every batch was read: free what held the rows (the simulator truth stays readable)."""

    def behaviour(self, bucket: int) -> pd.DataFrame | None:
        """The simulator's option probabilities of batch `bucket`'s patients, or None without truth."""

    def boundary_quarantine(self) -> pd.DataFrame:
        """Quarantine records of the checks made before batching."""


@contextmanager
def open_chemo_source(
    src: ChemoSource, config: ChemoPipelineConfig, episode_id: Callable[[list[str]], list[str]]
) -> Iterator[CycleBatches]:
    """Open `src` for reading in patient batches (OMOP: `input.batch_patients` each, in episode-id
    order; a registry export: one batch). `src.files` lists the files read."""
    if src.format == "registry":
        from .registry import load_mapping, read_registry

        rows, quarantine, path, n_read = read_registry(src.folder, load_mapping(config.input.mapping))
        src.files = [path]
        yield RegistryBatches(rows, quarantine, n_read, behaviour_path=src.behaviour_path)
        return
    from .omop_cycles import open_omop

    with open_omop(src.folder, config, episode_id, src.behaviour_path) as batches:
        src.files = batches.files
        yield batches


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
    "CycleBatches",
    "covered_by",
    "detect_chemo_source",
    "detect_format",
    "find_table",
    "oncology_source_report",
    "open_chemo_source",
    "trial_records_in",
]
