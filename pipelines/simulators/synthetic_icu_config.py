"""`SyntheticIcuConfig`: the mix of patients, unit quirks and dirt in synthetic MIMIC-IV tables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dosewise.data_schemas import StrictConfig


class SyntheticIcuConfig(StrictConfig):
    """Case mix, unit quirks and data dirt of `write_synthetic_icu` (fractions are of ICU stays
    unless a field says rows)."""

    kind: Literal["synthetic_icu"] = Field(default="synthetic_icu", description="Config kind.")
    file_format: Literal["csv.gz", "csv", "parquet"] = Field(
        default="csv.gz", description="File format of the raw tables (MIMIC-IV ships csv.gz).")
    sepsis_fraction: float = Field(
        default=0.35, ge=0.0, le=1.0,
        description="Stays with a planted Sepsis-3 case: infection with antibiotic + culture "
                    "timing meeting the suspicion rule, and organ dysfunction (SOFA rise >= 2).")
    infection_only_fraction: float = Field(
        default=0.10, ge=0.0, le=1.0,
        description="Stays with suspected infection but only mild organ dysfunction (not septic).")
    other_shock_fraction: float = Field(
        default=0.08, ge=0.0, le=1.0,
        description="Non-infected stays with transient shock (SOFA rises without infection).")
    minor_fraction: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Patients aged 15-17 (the adult rule drops them).")
    readmission_fraction: float = Field(
        default=0.10, ge=0.0, le=0.5,
        description="Stays that are a patient's second ICU stay (a later hospital admission).")
    arterial_line_fraction: float = Field(
        default=0.6, ge=0.0, le=1.0,
        description="Stays with an arterial line (arterial BP items 220050-220052).")
    fahrenheit_fraction: float = Field(
        default=0.7, ge=0.0, le=1.0,
        description="Temperature rows charted in °F (item 223761) rather than °C (223762).")
    weight_lb_fraction: float = Field(
        default=0.15, ge=0.0, le=1.0,
        description="Stays whose admission weight is charted in lb (226531) instead of kg (226512).")
    mcg_min_fraction: float = Field(
        default=0.10, ge=0.0, le=1.0,
        description="Stays whose norepinephrine/phenylephrine rates are in mcg/min, not mcg/kg/min.")
    litre_fraction: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Fluid bolus rows whose amount is in L, not mL.")
    fio2_fraction_rows: float = Field(
        default=0.03, ge=0.0, le=1.0,
        description="FiO2 rows charted as a fraction (0.4) instead of a percentage (40).")
    dirt_rate: float = Field(
        default=0.001, ge=0.0, le=0.1,
        description="Rate of planted dirt per table row: outliers, duplicate rows, events outside "
                    "any stay, unknown rate units, negative amounts (0 gives clean tables).")
    chunk_stays: int = Field(
        default=1000, ge=10, le=20000,
        description="Stays generated and written per chunk; bounds memory (~0.3 GB per 1000).")
    gzip_level: int = Field(default=1, ge=1, le=9, description="gzip compression level.")
