"""Declared reshaping of a registry export before its renames: row filter, then long -> wide pivot.

Both come from the mapping config (`[row_filter]`, `[pivot]`), so a long export such as the NCCTG
colon trial's (two rows per patient, one per event type) is read without code of its own. Rows
that cannot be used are quarantined with the rule and a reason; nothing is dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from dosewise.data_schemas import BadInputError, empty_quarantine, make_quarantine

from .trial_mapping import PivotSpec

if TYPE_CHECKING:
    from .mapping import RegistryMapping

STAGE = "sources"


def _missing(raw: pd.DataFrame, names: list[str], what: str) -> None:
    absent = [n for n in names if n not in raw.columns]
    if absent:
        raise BadInputError(
            f"The mapping's {what} names column(s) {absent} that the registry file does not have.",
            f"Its columns are: {', '.join(map(str, raw.columns[:25]))}.",
        )


def filter_rows(
    raw: pd.DataFrame, keep: dict[str, list[str | int | float]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose columns take a listed value, quarantine of the others under `row_filter`)."""
    if not keep:
        return raw, empty_quarantine()
    _missing(raw, list(keep), "[row_filter]")
    mask = pd.Series(True, index=raw.index)
    for col, values in keep.items():
        mask &= raw[col].astype(str).isin([str(v) for v in values])
    reason = "outside the mapping's [row_filter] " + ", ".join(f"{k} in {v}" for k, v in keep.items())
    q = make_quarantine(
        raw[~mask], stage=STAGE, rule="row_filter", column=next(iter(keep)), reason=reason, key_columns=[]
    )
    return raw[mask].reset_index(drop=True), q


def _label(value: object) -> str:
    """A key value as a column suffix: 1.0 -> '1', 'death' -> 'death'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def pivot_wide(raw: pd.DataFrame, spec: PivotSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per `spec.index`: `values` spread by `key`; the patient-level columns kept once.

    Quarantined (every row of the patient): a repeated (index, key) pair, and rows of one patient
    that disagree on a column that is neither the key nor a spread value.
    """
    _missing(raw, [spec.index, spec.key, *spec.values], "[pivot]")
    keys = [spec.index, spec.key]
    fixed = [col for col in raw.columns if col not in {spec.key, *spec.values}]
    patient = raw[spec.index]
    repeated = patient.isin(patient[raw.duplicated(keys, keep=False)])
    other = [col for col in fixed if col != spec.index]
    differs = raw.groupby(spec.index, sort=False)[other].transform("nunique", dropna=False).gt(1)
    conflicting = patient.isin(patient[differs.any(axis=1)]) & ~repeated
    named = raw.rename(columns={spec.index: "patient_id"})  # the pseudonym replaces it when written
    quarantined = pd.concat(
        [
            make_quarantine(
                named[repeated],
                stage=STAGE,
                rule="pivot_repeated_key",
                column=spec.key,
                reason=f"two rows share this {spec.index} and {spec.key}",
                key_columns=[spec.key],
                id_column="patient_id",
            ),
            make_quarantine(
                named[conflicting],
                stage=STAGE,
                rule="pivot_conflicting_rows",
                column=spec.key,
                reason=f"rows of this {spec.index} disagree on a patient-level column",
                key_columns=[spec.key],
                id_column="patient_id",
            ),
        ],
        ignore_index=True,
    )
    kept = raw[~(repeated | conflicting)]
    wide = kept.pivot(index=spec.index, columns=spec.key, values=spec.values)
    wide.columns = [f"{value}_{_label(key)}" for value, key in wide.columns]
    base = kept.drop_duplicates(spec.index)[fixed].set_index(spec.index)
    return base.join(wide).reset_index(), quarantined


def reshape_export(raw: pd.DataFrame, mapping: RegistryMapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mapping's row filter, then its pivot (each a no-op when not declared), with quarantine."""
    frame, q_filter = filter_rows(raw, mapping.row_filter)
    q_pivot = empty_quarantine()
    if mapping.pivot is not None:
        frame, q_pivot = pivot_wide(frame, mapping.pivot)
    parts = [q for q in (q_filter, q_pivot) if len(q)]
    return frame, pd.concat(parts, ignore_index=True) if parts else empty_quarantine()
