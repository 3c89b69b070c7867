"""`QuarantineSchema`: every row a stage rejects, with the rule and a readable reason.

Nothing is dropped silently: a stage either keeps a row or writes it here, and the counts by
rule go to the manifest (MEDS' `is_inlier` idea; the opposite of pandera's drop_invalid_rows).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

QUARANTINE_COLUMNS = ("stage", "rule", "column", "failure_case", "row_key", "reason")

QuarantineSchema = pa.DataFrameSchema(
    {
        "stage": pa.Column(str, nullable=False),
        "rule": pa.Column(str, nullable=False),
        "column": pa.Column(str, nullable=True),
        "failure_case": pa.Column(str, nullable=True),
        "row_key": pa.Column(str, nullable=False),
        "reason": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
    },
    strict=True,
    name="QuarantineSchema",
)


def make_quarantine(
    rows: pd.DataFrame,
    *,
    stage: str,
    rule: str,
    column: str | None,
    reason: str,
    key_columns: list[str],
    id_column: str | None = None,
) -> pd.DataFrame:
    """Build quarantine records for `rows` that broke `rule`, keyed by `key_columns`.

    With `id_column` (a patient-level id such as `stay_id`), that id is left out of `row_key` and
    kept as a column of its own, for the writer to replace with the run's pseudonym.

    >>> rows = pd.DataFrame({"stay_id": [1], "map_mmhg": [400.0]})
    >>> q = make_quarantine(rows, stage="outliers", rule="map_mmhg_range", column="map_mmhg",
    ...                     reason="above 300 mmHg", key_columns=["stay_id"])
    >>> q.loc[0, "failure_case"], q.loc[0, "row_key"]
    ('400.0', 'stay_id=1')
    """
    if rows.empty:
        return empty_quarantine([id_column] if id_column else [])
    keys = rows[key_columns].astype(str)
    row_key = (
        keys.apply(lambda r: "|".join(f"{k}={v}" for k, v in zip(key_columns, r, strict=True)), axis=1)
        if key_columns
        else pd.Series([""] * len(rows), index=rows.index)
    )
    failure = rows[column].astype(str) if column and column in rows else pd.Series(
        [None] * len(rows), index=rows.index, dtype=object
    )
    out = pd.DataFrame(
        {
            "stage": stage,
            "rule": rule,
            "column": column,
            "failure_case": failure.to_numpy(),
            "row_key": row_key.to_numpy(),
            "reason": reason,
        }
    )
    if id_column:
        out.insert(0, id_column, rows[id_column].to_numpy())
    return out.reset_index(drop=True)


def empty_quarantine(extra_columns: list[str] | None = None) -> pd.DataFrame:
    """An empty quarantine frame with the right columns (and `extra_columns` first) and dtypes."""
    names = [*(extra_columns or []), *QUARANTINE_COLUMNS]
    return pd.DataFrame({name: pd.Series(dtype=object) for name in names})


def counts_by_rule(quarantined: pd.DataFrame) -> dict[str, int]:
    """Quarantined row counts per rule, for the manifest and the summary table."""
    if quarantined.empty:
        return {}
    return {str(k): int(v) for k, v in quarantined["rule"].value_counts().sort_index().items()}
