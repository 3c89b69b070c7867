"""Registry-shaped cycle rows -> canonical cycles and patients, with quarantine by rule.

Both inputs (the flat registry and OMOP, see `omop.py`) arrive here in the registry columns of
`data_schemas.raw_registry`. Rules run in order; a row that breaks one is quarantined with the
rule and a reason, and so are the patient's later cycles (rule `follows_<rule>`): an episode
cannot continue across a cycle that is not trustworthy. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dosewise.data_schemas import BadInputError, empty_quarantine, make_quarantine
from dosewise.data_schemas.raw_registry import DELIVERED_PREFIX, PLANNED_PREFIX, drug_columns

from ..rule_tables import read_rule_csv
from ..simulators.oncology_dynamics import mosteller_bsa

KEYS = ["patient_id", "cycle_number"]
#: Quarantine keys: the patient goes in its own column, replaced by the run's pseudonym when written.
ROW_KEYS = ["cycle_number"]
ID_COLUMN = "patient_id"
STAGE = "cycles"
# OMOP input: a cycle's drug exposures whose concept is not in the map (quarantined at the boundary
# with `input.unknown_regimen = quarantine`); such a cycle's delivered dose is incomplete.
UNKNOWN_DRUG_EXPOSURES = "unknown_drug_exposures"


@dataclass
class CycleResult:
    """Kept rows, quarantine records and counts of one rules pass."""

    cycles: pd.DataFrame
    quarantine: list[pd.DataFrame] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def add(self, rows: pd.DataFrame, rule: str, reason: str, column: str | None = None) -> None:
        """Record quarantined rows under `rule`."""
        if not rows.empty:
            self.quarantine.append(
                make_quarantine(
                    rows, stage=STAGE, rule=rule, column=column, reason=reason, key_columns=ROW_KEYS,
                    id_column=ID_COLUMN,
                )
            )

    def quarantined(self) -> pd.DataFrame:
        """All quarantine records so far."""
        parts = [q for q in self.quarantine if not q.empty]
        return pd.concat(parts, ignore_index=True) if parts else empty_quarantine()


def truncate_at(
    result: CycleResult, bad: np.ndarray, rule: str, reason: str, column: str | None = None
) -> None:
    """Quarantine each patient's first `bad` row and every later row; keep the rows before it."""
    frame = result.cycles
    hit = pd.Series(bad, index=frame.index).groupby(frame["patient_id"], sort=False).cummax().to_numpy()
    result.add(frame[bad], rule, reason, column)
    result.add(frame[hit & ~bad], f"follows_{rule}", f"a previous cycle of the patient broke `{rule}`")
    result.cycles = frame[~hit].reset_index(drop=True)


def regimen_table() -> pd.DataFrame:
    """Known regimens (rules/chemo_regimens.csv): drug, planned dose per m2, cycle length, cycles."""
    return read_rule_csv("chemo_regimens.csv")


def check_regimens(result: CycleResult, on_unknown: str) -> None:
    """Unknown regimens: an error naming them and the known ones, or quarantine with counts."""
    known = regimen_table()
    names = set(known["regimen"])
    frame = result.cycles
    unknown = ~frame["regimen"].isin(names)
    if not unknown.any():
        return
    counts = frame.loc[unknown, "regimen"].value_counts().to_dict()
    if on_unknown == "error":
        raise unknown_regimen_error(counts)
    result.add(frame[unknown], "unknown_regimen", "regimen not in rules/chemo_regimens.csv", "regimen")
    result.notes.update({f"unknown_regimen:{k}": int(v) for k, v in counts.items()})
    result.cycles = frame[~unknown].reset_index(drop=True)


def unknown_regimen_error(counts: dict[str, int]) -> BadInputError:
    """The error for unknown regimens (`counts`: rows per regimen), listing the known ones."""
    names = set(regimen_table()["regimen"])
    return BadInputError(
        f"Unknown regimen(s) {counts} (rows per regimen) in the cycle records.",
        f"Known regimens (rules/chemo_regimens.csv): {', '.join(sorted(names))}; map them with the "
        "registry mapping's [value_maps], or --set input.unknown_regimen=quarantine.",
    )


def _unknown_drug_cycles(result: CycleResult) -> None:
    """A cycle with a quarantined (unmapped) drug exposure is not a hold: its delivered dose is
    unknown, so the cycle and the patient's later ones are quarantined (as for a cycle-number gap)."""
    if UNKNOWN_DRUG_EXPOSURES not in result.cycles:
        return
    truncate_at(
        result,
        (result.cycles[UNKNOWN_DRUG_EXPOSURES] > 0).to_numpy(),
        "cycle_with_unknown_drug",
        "a drug exposure of this cycle has a concept not in the map (quarantined): delivered dose incomplete",
        UNKNOWN_DRUG_EXPOSURES,
    )
    result.cycles = result.cycles.drop(columns=UNKNOWN_DRUG_EXPOSURES)


def apply_cycle_rules(frame: pd.DataFrame, on_unknown_regimen: str, max_rdi: float) -> CycleResult:
    """Duplicates, regimens, cycle numbering, dates, doses and BSA (see module doc)."""
    result = CycleResult(frame.reset_index(drop=True))
    dup = result.cycles.duplicated(keep="first").to_numpy()
    result.add(result.cycles[dup], "duplicate_row", "exact duplicate of an earlier row (kept once)")
    result.cycles = result.cycles[~dup]
    check_regimens(result, on_unknown_regimen)
    result.cycles = result.cycles.sort_values(KEYS, kind="stable").reset_index(drop=True)
    c = result.cycles
    truncate_at(
        result,
        c.duplicated(KEYS, keep=False).to_numpy(),
        "duplicate_cycle_number",
        "two different rows share this patient's cycle number",
        "cycle_number",
    )
    _unknown_drug_cycles(result)
    c = result.cycles
    expected = c.groupby("patient_id", sort=False).cumcount() + 1
    truncate_at(
        result,
        (c["cycle_number"] != expected).to_numpy(),
        "cycle_number_gap",
        "cycle numbers must run 1, 2, 3 ... without gaps",
        "cycle_number",
    )
    c = result.cycles
    prev = c.groupby("patient_id", sort=False)["cycle_start_date"].shift(1)
    truncate_at(
        result,
        (prev.notna() & (c["cycle_start_date"] <= prev)).to_numpy(),
        "cycle_dates_out_of_order",
        "cycle start dates must increase with the cycle number",
        "cycle_start_date",
    )
    c = result.cycles
    death = c["death_date"] if "death_date" in c else pd.Series(pd.NaT, index=c.index)
    outside = (c["cycle_start_date"] < c["birth_date"]) | (death.notna() & (c["cycle_start_date"] > death))
    truncate_at(
        result,
        outside.to_numpy(),
        "cycle_date_outside_life",
        "cycle start before birth or after death",
        "cycle_start_date",
    )
    _dose_rules(result, max_rdi)
    return result


def _dose_rules(result: CycleResult, max_rdi: float) -> None:
    drugs = drug_columns(result.cycles)
    if not drugs:
        raise BadInputError(
            "The cycle records have no drug dose columns "
            f"(`{PLANNED_PREFIX}<drug>` and `{DELIVERED_PREFIX}<drug>`).",
            "Map the planned dose per m2 and the delivered dose of each drug in the mapping's [renames].",
        )
    c = result.cycles
    planned = c[[PLANNED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    delivered = c[[DELIVERED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    truncate_at(result, (delivered < 0).any(axis=1), "negative_dose", "a delivered dose is negative")
    c = result.cycles
    planned = c[[PLANNED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    delivered = c[[DELIVERED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    no_ref = (~np.isnan(delivered) & ~(planned > 0)).any(axis=1)
    truncate_at(
        result, no_ref, "dose_without_planned", "a delivered dose has no planned dose per m2 to compare"
    )
    c = result.cycles
    bsa = c["bsa_m2"] if "bsa_m2" in c else pd.Series(np.nan, index=c.index)
    h = c["height_cm"] if "height_cm" in c else pd.Series(np.nan, index=c.index)
    w = c["weight_kg"] if "weight_kg" in c else pd.Series(np.nan, index=c.index)
    derive = bsa.isna() & h.notna() & w.notna()
    c = c.assign(
        bsa_m2=bsa.where(~derive, np.round(mosteller_bsa(h, w), 2)),
        bsa_source=np.where(derive, "mosteller", np.where(bsa.notna(), "recorded", "missing")),
    )
    result.cycles = c
    result.notes["bsa_derived_mosteller"] = int(derive.sum())
    truncate_at(
        result,
        c["bsa_m2"].isna().to_numpy(),
        "missing_bsa",
        "no BSA and no height and weight to derive it (Mosteller)",
        "bsa_m2",
    )
    c = result.cycles
    planned = c[[PLANNED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    delivered = c[[DELIVERED_PREFIX + d for d in drugs]].to_numpy(np.float64)
    ratio = delivered / (planned * c["bsa_m2"].to_numpy()[:, None])
    truncate_at(
        result,
        (ratio > max_rdi).any(axis=1),
        "dose_above_max",
        f"delivered dose above {max_rdi:g} x the planned dose for the BSA",
    )
