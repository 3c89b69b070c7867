"""The units stage: per-row count units (ANC, its nadir, platelets) -> 1e9/L by the cited unit table.

rules/chemo_units.csv gives each unit's multiplier (cells/uL x 0.001, and so on, cited there); a
value in a unit it does not know is quarantined with the rule `unknown_unit` and treated as missing.
"""

from __future__ import annotations

import pandas as pd

from dosewise.data_schemas import empty_quarantine, make_quarantine

from .cycles import ID_COLUMN, ROW_KEYS
from .mapping import UNIT_COLUMN_VARIABLE, unit_table


def convert_units(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Per-row count units -> 1e9/L by rules/chemo_units.csv; unknown units quarantined per value."""
    table = unit_table()
    out = frame.copy()
    parts, n_values = [], 0
    for unit_col, variable in UNIT_COLUMN_VARIABLE.items():
        values = ["anc", "anc_nadir"] if unit_col == "anc_unit" else ["platelets"]
        values = [v for v in values if v in out]
        if not values:
            continue
        units = (
            out[unit_col].fillna("10^9/L").astype(str) if unit_col in out else pd.Series("10^9/L", out.index)
        )
        factors = table[table["variable"] == variable].set_index("unit")["multiply"].astype(float)
        factor = units.map(factors)
        for col in values:
            present = out[col].notna()
            n_values += int(present.sum())
            bad = present & factor.isna()
            if bad.any():
                rows = out[bad].assign(_unit=units[bad])
                parts.append(
                    make_quarantine(
                        rows,
                        stage="units",
                        rule="unknown_unit",
                        column=unit_col,
                        reason=f"unit of `{col}` not in rules/chemo_units.csv "
                        f"(known: {', '.join(factors.index)}); value treated as missing",
                        key_columns=ROW_KEYS,
                        id_column=ID_COLUMN,
                    )
                )
            out[col] = out[col] * factor
    q = pd.concat(parts, ignore_index=True) if parts else empty_quarantine()
    return out, q, n_values
