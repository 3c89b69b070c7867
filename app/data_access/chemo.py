"""Chemotherapy datasets in the app: what a cohort and one patient's cycles look like.

A chemotherapy trajectories folder (`dosewise etl chemo`) has one row per cycle: the relative dose
intensity `rdi_fraction` (delivered / planned dose per m2 x planned / actual interval) with its parts
`dose_fraction` and `delay_days`, the ANC at cycle start and the previous cycle's nadir, the previous
cycle's CTCAE grades (`prev_grade_*`) and the tumour size. The grade of cycle k is recorded in cycle
k+1's state (what the clinician knew), so per-cycle grades are read back one row later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dosewise.data_schemas import columns as c

from .datasets import Dataset

RDI = c.RDI_FRACTION
DOSE_FRACTION = c.DOSE_FRACTION
DELAY = c.DELAY_DAYS
ANC = "anc_1e9_per_l"
NADIR = "prev_nadir_anc_1e9_per_l"
TUMOUR = "tumour_size_mm"
ANC_DELAY_LINE = 1.5  # 10^9/L: delay the cycle below this at its start (docetaxel label; ASCO)
PREV_GRADE_PREFIX = "prev_grade_"
FEBRILE = "prev_febrile_neutropenia"


def is_chemo(dataset: Dataset) -> bool:
    """A chemotherapy cycle dataset: it has the RDI action column."""
    return RDI in dataset.trajectories.columns


def grade_columns(dataset: Dataset) -> dict[str, str]:
    """Toxicity category -> the state column with the previous cycle's grade."""
    out = {col[len(PREV_GRADE_PREFIX):]: col for col in dataset.info.state_columns
           if col.startswith(PREV_GRADE_PREFIX)}
    if FEBRILE in dataset.info.state_columns:
        out["febrile_neutropenia"] = FEBRILE
    return out


def cycle_grades(stay: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """(cycles x categories) grade of each cycle, read from the next cycle's `prev_grade_*`
    (NaN for the last cycle, whose toxicity no later row records)."""
    grades = pd.DataFrame({cat: stay[col].shift(-1).to_numpy(dtype=float) for cat, col in columns.items()})
    grades.index = stay[c.STEP].to_numpy()
    return grades


def toxicity_rates(dataset: Dataset) -> pd.DataFrame:
    """Per category: share of cycles followed by grade >= 3 (febrile neutropenia: any)."""
    frame = dataset.trajectories.sort_values([c.EPISODE_ID, c.STEP])
    later = frame[frame[c.STEP] > 0]
    rows = []
    for cat, col in grade_columns(dataset).items():
        cut = 1 if col == FEBRILE else 3
        rows.append({"category": cat.replace("_", " "), "threshold": "any" if cut == 1 else "grade >= 3",
                     "share_of_cycles": float((later[col] >= cut).mean()) if len(later) else 0.0})
    return pd.DataFrame(rows, columns=["category", "threshold", "share_of_cycles"])


@dataclass(frozen=True)
class CohortSummary:
    """What the cohort page shows for a chemotherapy dataset."""

    cycles_per_patient: pd.Series  # episode -> number of cycles
    regimens: pd.Series  # regimen -> patients (empty without cohort.parquet)
    rdi: np.ndarray  # every cycle's RDI


def cohort_summary(dataset: Dataset) -> CohortSummary:
    """Cycles per patient, the regimen mix (from cohort.parquet when present) and every RDI."""
    frame = dataset.trajectories
    per_patient = frame.groupby(c.EPISODE_ID)[c.STEP].size()
    regimens = pd.Series(dtype="int64")
    if dataset.cohort is not None and "regimen" in dataset.cohort.columns:
        regimens = dataset.cohort["regimen"].astype(str).value_counts()
    return CohortSummary(per_patient, regimens, frame[RDI].to_numpy(dtype=float))


def cycle_frame(stay: pd.DataFrame, recommendations: pd.DataFrame | None,
                flags: pd.DataFrame | None) -> pd.DataFrame:
    """One row per cycle: planned (100 %), delivered dose %, RDI %, delay, recommended RDI %, whether
    the recommendation is out of support, ANC at start, the cycle's nadir, tumour size."""
    out = pd.DataFrame({
        c.STEP: stay[c.STEP].to_numpy(), "cycle": stay[c.STEP].to_numpy() + 1, "planned_pct": 100.0,
        "delivered_pct": (100.0 * stay[DOSE_FRACTION].to_numpy(dtype=float)) if DOSE_FRACTION in stay
        else np.nan,
        "rdi_pct": 100.0 * stay[RDI].to_numpy(dtype=float),
        "delay_days": stay[DELAY].to_numpy(dtype=float) if DELAY in stay else np.nan,
        "anc": stay[ANC].to_numpy(dtype=float) if ANC in stay else np.nan,
        # the nadir of cycle k is recorded in cycle k+1's state
        "nadir": stay[NADIR].shift(-1).to_numpy(dtype=float) if NADIR in stay else np.nan,
        "tumour_mm": stay[TUMOUR].to_numpy(dtype=float) if TUMOUR in stay else np.nan,
    })
    out["recommended_pct"] = np.nan
    if recommendations is not None and f"recommended_{RDI}" in recommendations:
        merged = out[[c.STEP]].merge(recommendations, on=c.STEP, how="left")
        out["recommended_pct"] = 100.0 * merged[f"recommended_{RDI}"].to_numpy(dtype=float)
    out["out_of_support"] = False
    if flags is not None and len(flags):
        episode = stay[c.EPISODE_ID].iloc[0]
        mine = flags[flags[c.EPISODE_ID] == episode][[c.STEP, "out_of_support"]]
        merged = out[[c.STEP]].merge(mine, on=c.STEP, how="left")
        out["out_of_support"] = merged["out_of_support"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return out
