"""Sepsis-3 cohort selection with a named funnel, and the per-stay time window.

Sepsis-3: suspected infection with SOFA >= 2 (Singer et al., JAMA 2016); adults, first ICU stay,
window 24 h before to 48 h after onset, as in the AI Clinician (Komorowski et al., Nat Med 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dosewise.data_schemas import FunnelStep, empty_quarantine, make_quarantine

from .config import InclusionConfig

STAGE = "cohort"


@dataclass(frozen=True)
class CohortResult:
    """Included stays with their windows, the funnel, and a quarantine row per excluded stay."""

    cohort: pd.DataFrame
    funnel: list[FunnelStep]
    excluded: pd.DataFrame
    shifted_ages: dict[str, object] | None = None  # the manifest's record of the MIMIC-III age rule


#: Documented values of the stay-level codes (MIMIC-III and MIMIC-IV table documentation,
#: mimic.mit.edu/docs: PATIENTS.gender, ADMISSIONS.hospital_expire_flag, ICUSTAYS.dbsource).
GENDER_CODES = ("M", "F")
EXPIRE_FLAG_CODES = (0, 1)
CARE_SYSTEMS = ("carevue", "metavision", "both")
#: Oldest documented human age is 122 years. MIMIC-III's documented shift of patients over 89 to
#: ~300 years is flagged by icustay_detail.sql (`age_shifted`) and handled by `inclusion.shifted_age`;
#: any other age above this is a bad record.
MAX_AGE_YEARS = 120
#: MIMIC-III's shifted ages: 300 years at the first admission, plus at most the 2001-2012 span of the data.
SHIFTED_AGE_YEARS = (299.0, 312.0)
SHIFTED_AGE_RULE = (
    "MIMIC-III shifts the birth date of patients older than 89 to 300 years before their first admission "
    "(PATIENTS documentation, mimic.mit.edu/docs/iii/tables/patients); ages of 299-312 years are that "
    "shift and are set to {age:g} years, the documented median age of the group"
)


def _code_rules(stays: pd.DataFrame) -> list[tuple[str, str, pd.Series, str | None]]:
    """Stays whose codes lie outside their documented values: quarantined, never read as a default."""
    flag = stays["hospital_expire_flag"]
    return [
        (
            "hospital_expire_flag_code",
            f"hospital_expire_flag in {EXPIRE_FLAG_CODES} or missing (MIMIC ADMISSIONS)",
            flag.isna() | flag.isin(EXPIRE_FLAG_CODES),
            "hospital_expire_flag",
        ),
        (
            "gender_code",
            f"gender in {GENDER_CODES} (MIMIC PATIENTS)",
            stays["gender"].isin(GENDER_CODES),
            "gender",
        ),
        (
            "care_system_code",
            f"care system in {CARE_SYSTEMS} (MIMIC-III ICUSTAYS.dbsource)",
            stays["care_system"].isin(CARE_SYSTEMS),
            "care_system",
        ),
        (
            "age_plausible",
            f"age at ICU admission <= {MAX_AGE_YEARS} years",
            ~(stays["age_years"] > MAX_AGE_YEARS),
            "age_years",
        ),
    ]


def _shifted_ages(stays: pd.DataFrame, cfg: InclusionConfig) -> tuple[pd.DataFrame, dict[str, object] | None]:
    """MIMIC-III's documented >89 shift: the configured median age (recorded), or left for quarantine."""
    out = stays.copy()
    documented = out["age_shift_documented"] if "age_shift_documented" in out else pd.Series(False, out.index)
    low, high = SHIFTED_AGE_YEARS
    shifted = documented.fillna(False).astype(bool) & out["age_years"].between(low, high)
    out["age_shifted"] = shifted
    if cfg.shifted_age == "quarantine":
        return out, {"action": "quarantine (rule age_shifted_over_89)", "stays": int(shifted.sum())}
    out.loc[shifted, "age_years"] = cfg.shifted_age_years
    return out, {"action": SHIFTED_AGE_RULE.format(age=cfg.shifted_age_years), "stays": int(shifted.sum())}


def _rules(stays: pd.DataFrame, cfg: InclusionConfig) -> list[tuple[str, str, pd.Series, str | None]]:
    """(rule, description, keep-mask, column shown as the failure case) in funnel order."""
    shift: list[tuple[str, str, pd.Series, str | None]] = []
    if cfg.shifted_age == "quarantine":
        shift = [("age_shifted_over_89", "an age MIMIC-III shifted to ~300 years (inclusion.shifted_age = "
                  "quarantine)", ~stays["age_shifted"].fillna(False).astype(bool), "age_years")]
    rules: list[tuple[str, str, pd.Series, str | None]] = [
        *shift,
        *_code_rules(stays),
        (
            "adult",
            f"age at ICU admission >= {cfg.min_age_years:g} years",
            stays["age_years"] >= cfg.min_age_years,
            None,
        ),
    ]
    if cfg.first_icu_stay_only:
        rules.append(("first_icu_stay", "first ICU stay of the patient", stays["stay_seq"] == 1, None))
    if cfg.require_sepsis3:
        rules.append(
            (
                "suspected_infection",
                "antibiotic and culture paired (24 h / 72 h rule)",
                stays["suspected_infection_time"].notna(),
                None,
            )
        )
        rules.append(
            (
                "sepsis3_sofa_ge_2",
                "SOFA >= 2 from 48 h before to 24 h after the suspicion",
                stays["sepsis3"].fillna(False).astype(bool),
                None,
            )
        )
    rules.append(
        ("outcome_known", "admission with a recorded hospital outcome", stays["hospital_expire_flag"].notna(),
         None)
    )
    rules.append(
        ("window_nonempty", "onset window overlaps the ICU stay", stays["window_end"] > stays["window_start"],
         None)
    )
    return rules


def add_windows(stays: pd.DataFrame, cfg: InclusionConfig, bin_hours: int) -> pd.DataFrame:
    """Onset, window start/end, number of bins and how each window ends (death, discharge, timeout)."""
    out = stays.copy()
    onset = out["onset_time"] if "onset_time" in out else pd.Series(pd.NaT, index=out.index)
    if not cfg.require_sepsis3:
        onset = onset.where(onset.notna(), out["intime"])
    out["onset_time"] = onset.fillna(out["intime"])
    start = out["onset_time"] - pd.Timedelta(hours=cfg.hours_before_onset)
    full_end = out["onset_time"] + pd.Timedelta(hours=cfg.hours_after_onset)
    end = full_end.copy()
    if cfg.clip_to_icu_stay:
        start = start.where(start >= out["intime"], out["intime"])
        end = end.where(end <= out["outtime"], out["outtime"])
    death = out["deathtime"]
    died_early = death.notna() & (death < end)
    end = end.where(~died_early, death)
    out["window_start"], out["window_end"] = start, end
    out["end_reason"] = np.where(died_early, "death", np.where(end < full_end, "discharge", "timeout"))
    seconds = (end - start).dt.total_seconds().clip(lower=0)
    out["n_bins"] = np.ceil(seconds / (bin_hours * 3600)).astype("int64")
    return out


def select_sepsis3_cohort(
    stays: pd.DataFrame, sepsis: pd.DataFrame, cfg: InclusionConfig, bin_hours: int
) -> CohortResult:
    """Apply the inclusion rules in order; every excluded stay is quarantined under its rule."""
    merged = stays.merge(
        sepsis[["stay_id", "suspected_infection_time", "sofa_score", "sofa_time", "sepsis3", "onset_time"]],
        on="stay_id",
        how="left",
        validate="one_to_one",
    )
    merged, shifted_ages = _shifted_ages(merged.sort_values("stay_id").reset_index(drop=True), cfg)
    merged = add_windows(merged, cfg, bin_hours)
    merged["died_in_hospital"] = merged["hospital_expire_flag"].fillna(0).astype(int) == 1
    death_date = merged["dod"].where(merged["dod"].notna(), merged["deathtime"])
    merged["died_90d"] = death_date.notna() & (death_date <= merged["intime"] + pd.Timedelta(days=90))
    merged["died_90d"] |= merged["died_in_hospital"]
    funnel = [FunnelStep(rule="icu_stays", description="ICU stays in the source", remaining=len(merged))]
    keep = pd.Series(True, index=merged.index)
    parts = []
    for rule, description, mask, column in _rules(merged, cfg):
        failed = keep & ~mask.fillna(False).astype(bool)
        parts.append(
            make_quarantine(
                merged[failed],
                stage=STAGE,
                rule=rule,
                column=column,
                reason=f"excluded: not {description}",
                key_columns=[],
                id_column="stay_id",
            )
        )
        keep &= ~failed
        funnel.append(FunnelStep(rule=rule, description=description, remaining=int(keep.sum())))
    excluded = (
        pd.concat([p for p in parts if not p.empty], ignore_index=True)
        if any(not p.empty for p in parts)
        else empty_quarantine(["stay_id"])
    )
    return CohortResult(merged[keep].reset_index(drop=True), funnel, excluded, shifted_ages)
