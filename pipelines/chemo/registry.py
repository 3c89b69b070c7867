"""Read a flat cycle-level registry export through its mapping config, validated at the boundary.

Table-wide problems (a required column missing, a column of the wrong kind) stop with exit 2
naming the file and column; row-level problems (a grade of 7, an unparseable date) go to
quarantine with the schema check that failed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dosewise.data_schemas import BadInputError, load_config
from dosewise.data_schemas.raw_registry import REQUIRED_COLUMNS, RegistrySchema
from dosewise.data_schemas.validation import split_valid

from .mapping import RegistryMapping, apply_mapping, find_table, read_table
from .reshape import reshape_export


def load_mapping(name: str | RegistryMapping) -> RegistryMapping:
    """A shipped mapping config by name (e.g. `registry_default`), a TOML path, or an inline one."""
    from .. import config_folder

    if isinstance(name, RegistryMapping):
        return name
    return load_config(name, RegistryMapping, [], search=[config_folder()])


def read_registry(source: Path, mapping: RegistryMapping) -> tuple[pd.DataFrame, pd.DataFrame, Path, int]:
    """(valid rows, quarantine of invalid rows, the file read, rows read) of a registry export."""
    path = find_table(source, mapping.file)
    raw = read_table(path)
    kept, quarantined = registry_rows(raw, mapping, path)
    return kept, quarantined, path, len(raw)


def registry_rows(
    raw: pd.DataFrame, mapping: RegistryMapping, path: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows, quarantine) of the raw export rows `raw` (all of `path`, or whole patients of it
    on Spark): reshaped, mapped and checked against the registry schema."""
    reshaped, q_reshape = reshape_export(raw, mapping)
    frame = apply_mapping(reshaped, mapping)
    missing = [col for col in REQUIRED_COLUMNS if col not in frame.columns]
    if missing:
        raise BadInputError(
            f"{path} lacks the registry column(s) {', '.join(missing)} (after the mapping `{mapping.file}`).",
            "Add them to the export or map them in the mapping config's [renames]/[constants]; "
            "the file has: "
            f"{', '.join(map(str, raw.columns[:25]))}.",
        )
    frame = frame.reset_index(drop=True)
    split = split_valid(
        frame, RegistrySchema, stage="registry_schema", key_columns=["cycle_number"], id_column="patient_id"
    )
    kept = RegistrySchema.validate(split.kept)  # the kept rows, coerced (split_valid keeps them as read)
    parts = [q for q in (q_reshape, split.quarantined) if len(q)]
    quarantined = pd.concat(parts, ignore_index=True) if parts else split.quarantined
    return kept.reset_index(drop=True), quarantined
