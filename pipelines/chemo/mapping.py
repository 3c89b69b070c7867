"""Registry column mapping: any cycle-level export -> the Dosewise registry columns, without code.

A TOML file of kind `registry_mapping` says which file to read and how to map it:
`[renames]` (source column -> registry column), `[units]` (registry column -> the unit the
export uses; converted by `rules/chemo_units.csv`), `[value_maps]` (registry column -> {source
value -> registry value}), `[constants]` (registry column -> a value for every row, for exports
that lack it) and `[offset_days]` (registry date column -> a source column of days after the
patient's first cycle start). Shipped example: `registry_default` (the simulator's own export).
Trial records (`design = "trial"`, one row per patient, see `trial_mapping.py`) add `[trial]`,
and long exports add `[pivot]` and `[row_filter]`, applied before the renames (shipped:
`registry_colon`, `registry_myeloid`, inline in those pipeline configs).
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from dosewise.data_schemas import BadInputError, StrictConfig

from ..rule_tables import read_rule_csv
from .trial_mapping import PivotSpec, TrialSpec

UNIT_COLUMN_VARIABLE = {"anc_unit": "anc_1e9_per_l", "platelets_unit": "platelets_1e9_per_l"}
FIXED_UNIT_VARIABLE = {
    "haemoglobin_g_per_l": "haemoglobin_g_per_l",
    "creatinine_umol_per_l": "creatinine_umol_per_l",
    "bilirubin_umol_per_l": "bilirubin_umol_per_l",
    "weight_kg": "weight_kg",
    "height_cm": "height_cm",
    "tumour_size_mm": "tumour_size_mm",
    "anc": "anc_1e9_per_l",
    "anc_nadir": "anc_1e9_per_l",
    "platelets": "platelets_1e9_per_l",
}


class RegistryMapping(StrictConfig):
    """How one registry export maps onto the Dosewise registry columns (see module doc)."""

    kind: Literal["registry_mapping"] = Field(default="registry_mapping", description="Config kind.")
    file: str = Field(
        default="registry", description="File stem under --source (registry.csv, .csv.gz or .parquet)."
    )
    renames: dict[str, str] = Field(default_factory=dict, description="Source column -> registry column.")
    units: dict[str, str] = Field(
        default_factory=dict, description="Registry column -> unit of the export (see rules/chemo_units.csv)."
    )
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Registry column -> {source value: registry value}."
    )
    constants: dict[str, str | int | float] = Field(
        default_factory=dict, description="Registry column -> value for every row (when the export lacks it)."
    )
    offset_days: dict[str, str] = Field(
        default_factory=dict,
        description="Registry date column -> source column of days after the patient's first cycle start.",
    )
    design: Literal["cycles", "trial"] = Field(
        default="cycles",
        description="`cycles`: one row per patient per cycle (dose decisions); `trial`: one row per "
        "patient with a randomised arm and outcome days (needs [trial]).",
    )
    row_filter: dict[str, list[str | int | float]] = Field(
        default_factory=dict,
        description="Source column -> values to keep (before [pivot]); other rows are quarantined.",
    )
    pivot: PivotSpec | None = Field(default=None, description="Long -> wide before the renames.")
    trial: TrialSpec | None = Field(default=None, description="Arms, propensity, state, later stages.")

    @model_validator(mode="after")
    def _trial_needs_spec(self) -> RegistryMapping:
        if (self.design == "trial") != (self.trial is not None):
            raise ValueError("`design = \"trial\"` needs a [trial] table, and [trial] needs that design")
        return self


def unit_table() -> pd.DataFrame:
    """The cited unit conversions (variable, unit, multiply, canonical_unit, reference)."""
    return read_rule_csv("chemo_units.csv")


def find_table(source: Path, stem: str) -> Path:
    """`stem`.parquet, .csv.gz or .csv under `source`; exit 2 naming the file when none exists."""
    for ext in (".parquet", ".csv.gz", ".csv"):
        path = source / f"{stem}{ext}"
        if path.is_file():
            return path
    raise BadInputError(
        f"{source} has no `{stem}` table (looked for {stem}.parquet, {stem}.csv.gz, {stem}.csv).",
        "Point --source at the folder that holds it, or set `file` in the mapping config.",
    )


def read_table(path: Path) -> pd.DataFrame:
    """A csv, csv.gz or parquet file as pandas (csv via pyarrow; every column as read).

    A file that cannot be read is an error naming the file and, for a row of the wrong width, its
    line, never the row's values (pyarrow's message quotes the row, patient id included).
    """
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, engine="pyarrow")
    except Exception as exc:
        raise BadInputError(
            f"{path} could not be read: {_reason_without_values(path, exc)}.",
            "Check it is a valid csv or parquet file (--debug shows the parser's full message, which "
            "may contain patient data).",
        ) from exc


def _reason_without_values(path: Path, exc: Exception) -> str:
    """The parser's complaint without the row it quotes, with the line number where it can be found."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    width = re.search(r"Expected (\d+) columns, got (\d+)", text)
    text = re.sub(r"'[^']*'", "'...'", re.sub(r"(got \d+):.*$", r"\1", text))
    if width is None or path.suffix == ".parquet":
        return text
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if number > 1 and len(row) == int(width.group(2)) != int(width.group(1)):
                    return f"line {number} has {width.group(2)} fields, the header {width.group(1)}"
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return text


def _scale(values: pd.Series, variable: str, unit: str, table: pd.DataFrame, column: str) -> pd.Series:
    rows = table[(table["variable"] == variable) & (table["unit"] == unit)]
    if rows.empty:
        known = sorted(table.loc[table["variable"] == variable, "unit"])
        raise BadInputError(
            f"The mapping gives `{column}` in `{unit}`, which rules/chemo_units.csv does not know.",
            f"Use one of: {', '.join(known)}.",
        )
    return pd.to_numeric(values, errors="coerce") * float(rows["multiply"].iloc[0])


def apply_mapping(raw: pd.DataFrame, mapping: RegistryMapping) -> pd.DataFrame:
    """Renames, value maps, constants, day offsets and fixed-unit conversions, in that order."""
    missing = [src for src in mapping.renames if src not in raw.columns]
    if missing:
        raise BadInputError(
            f"The mapping renames column(s) {missing} that the registry file does not have.",
            f"Its columns are: {', '.join(map(str, raw.columns[:25]))}.",
        )
    out = raw.rename(columns=mapping.renames)
    for col, values in mapping.value_maps.items():
        if col in out:
            out[col] = out[col].astype(str).map(lambda v, m=values: m.get(v, v))
    for col, value in mapping.constants.items():
        out[col] = value
    if mapping.offset_days:
        start = pd.to_datetime(out["cycle_start_date"])
        first = start.groupby(out["patient_id"]).transform("min")
        for col, src in mapping.offset_days.items():
            days = pd.to_numeric(out[src], errors="coerce")
            out[col] = first + pd.to_timedelta(days.where(np.isfinite(days)), unit="D")
    table = unit_table()
    for col, unit in mapping.units.items():
        if col in FIXED_UNIT_VARIABLE and col in out:
            out[col] = _scale(out[col], FIXED_UNIT_VARIABLE[col], unit, table, col)
    return out
