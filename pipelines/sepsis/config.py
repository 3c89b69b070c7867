"""`SepsisPipelineConfig`: every choice of the sepsis ETL, typed, documented and defaulted."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from dosewise.data_schemas import StrictConfig

from ..sources.spark_engine import SparkSettings


class InclusionConfig(StrictConfig):
    """Cohort rules (Sepsis-3 per Singer 2016; exclusions per the AI Clinician, Komorowski 2018)."""

    min_age_years: float = Field(default=18.0, ge=0, description="Adults only: minimum age at ICU admission.")
    shifted_age: Literal["median", "quarantine"] = Field(
        default="median",
        description="MIMIC-III shifts the birth date of patients older than 89 so that they appear ~300 "
        "years old (documented HIPAA shift). `median`: use `shifted_age_years`, the documented median age "
        "of that group (recorded in the manifest with the number of stays); `quarantine`: exclude those "
        "stays (rule age_shifted_over_89). Other ages above 120 are always quarantined.",
    )
    shifted_age_years: float = Field(
        default=91.4, ge=89, le=120,
        description="Age used for MIMIC-III's shifted ages with shifted_age = median (MIMIC-III PATIENTS "
        "documentation: the median age of patients older than 89 is 91.4).",
    )
    first_icu_stay_only: bool = Field(default=True, description="Keep only each patient's first ICU stay.")
    require_sepsis3: bool = Field(
        default=True, description="Require suspected infection with SOFA >= 2 (Sepsis-3)."
    )
    hours_before_onset: int = Field(default=24, ge=0, le=240, description="Window start, hours before onset.")
    hours_after_onset: int = Field(default=48, ge=1, le=720, description="Window end, hours after onset.")
    clip_to_icu_stay: bool = Field(
        default=True, description="Clip the window to ICU admission and discharge (charted data is ICU-only)."
    )
    max_fluid_ml_per_bin: float = Field(
        default=10000.0,
        gt=0,
        description="Exclude stays with more IV fluid than this in one bin (AI Clinician).",
    )
    exclude_treatment_withdrawal: bool = Field(
        default=True,
        description="Exclude stays that die within 24 h of the window end after vasopressors stopped "
        "(AI Clinician's proxy for withdrawal of care).",
    )


class BinningConfig(StrictConfig):
    """Time grid of the trajectories."""

    bin_hours: int = Field(default=4, ge=1, le=24, description="Length of one step in hours (1-24).")


class WeightConfig(StrictConfig):
    """Weight used to convert weight-free vasopressor rates when a stay has no charted weight."""

    fallback: Literal["population_median", "fixed"] = Field(
        default="population_median",
        description="Named fallback: the median charted weight of all stays, or `fallback_kg`.",
    )
    fallback_kg: float = Field(
        default=80.0,
        ge=20,
        le=300,
        description="Fixed fallback weight (kg); also used when no stay has a weight at all.",
    )


class DoseConfig(StrictConfig):
    """How raw inputs become the two doses."""

    tonicity_adjusted: bool = Field(
        default=True,
        description="The fluid action counts tonicity-adjusted volumes (AI Clinician: free water 0, "
        "half-normal 0.5, 3% saline 3, 25% albumin 5; rules/fluid_items.csv) instead of raw mL; the raw "
        "volume is always kept as its own column (fluid_raw_ml_<h>h).",
    )
    cv_rate_hold_hours: int = Field(
        default=1,
        ge=1,
        le=24,
        description="MIMIC-III CareVue: hours the last charted rate of an infusion holds when no later "
        "chart of the same item follows (CareVue charts infusions hourly; an infusion otherwise ends at "
        "the next chart of the same item or at a charted Stopped/D/C'd).",
    )


class ScoringConfig(StrictConfig):
    """Conventions of the severity scores (SOFA, GCS)."""

    gcs_under_sedation: Literal["pre_sedation", "normal", "verbal_one"] = Field(
        default="pre_sedation",
        description="GCS when the verbal score is not testable (intubated/sedated): the last GCS before "
        "sedation, else 15 (Vincent 1996; mimic-code gcs.sql); `normal` = always 15 (mimic-code); "
        "`verbal_one` = the charted eye + motor + 1 (not the standard convention).",
    )


class ImputationConfig(StrictConfig):
    """Missing state values: sample-and-hold (rules/hold_hours.csv), then a fill."""

    fill: Literal["train_median", "fill_default", "zero"] = Field(
        default="train_median",
        description="After the hold: median of the train split (else the rule's fill_default), the rule's "
        "fill_default (a normal value), or 0.",
    )


class OutlierConfig(StrictConfig):
    """What happens to values outside rules/outlier_bounds.csv."""

    clip: bool = Field(
        default=False, description="Clip to the bounds (recorded in quarantine) instead of quarantining."
    )


class ActionBinsConfig(StrictConfig):
    """Discrete action grid: per dose, a zero bin plus quantile bins of the non-zero train doses."""

    bins_per_dose: int = Field(
        default=5, ge=2, le=10, description="Bins per dose (5 gives the 5x5 = 25 grid)."
    )


class RewardConfig(StrictConfig):
    """Terminal outcome reward plus optional SOFA/lactate shaping (Raghu et al. 2017)."""

    outcome: Literal["died_90d", "died_in_hospital"] = Field(
        default="died_90d", description="Mortality that defines the terminal reward."
    )
    terminal_reward: float = Field(
        default=15.0, gt=0, description="+R on survival, -R on death (Raghu 2017)."
    )
    intermediate_shaping: bool = Field(default=False, description="Add Raghu 2017 SOFA/lactate shaping.")
    c0: float = Field(default=-0.025, description="Raghu 2017: penalty while SOFA stays the same and > 0.")
    c1: float = Field(default=-0.125, description="Raghu 2017: coefficient of the SOFA change.")
    c2: float = Field(default=-2.0, description="Raghu 2017: coefficient of tanh(lactate change).")


class OutputConfig(StrictConfig):
    """Identifiers, splits and optional outputs."""

    pseudonymize_ids: bool = Field(
        default=True, description="Salted-hash episode ids instead of raw stay ids."
    )
    id_salt: str = Field(default="", description="Salt for pseudonyms; empty reads it from `id_salt_env`.")
    id_salt_env: str = Field(default="DOSEWISE_ID_SALT", description="Environment variable holding the salt.")
    split_fractions: tuple[float, float, float] = Field(
        default=(0.7, 0.15, 0.15), description="Patient-level train/validation/test fractions."
    )
    keep_concepts: bool = Field(default=False, description="Also write concepts/<concept>.parquet.")


MAX_THREADS = 256
MEMORY_SIZE = re.compile(r"\s*(?P<number>\d+(\.\d+)?)\s*(?P<unit>%|[kmgt]i?b?)\s*", re.IGNORECASE)
MEMORY_UNITS = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
                "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
MIN_MEMORY_BYTES = 100e6


class SepsisPipelineConfig(StrictConfig):
    """The sepsis ETL: raw MIMIC-III/IV -> Sepsis-3 trajectories in fixed-length bins."""

    kind: Literal["sepsis_pipeline"] = Field(default="sepsis_pipeline", description="Config kind.")
    source_version: Literal["auto", "mimic_iv", "mimic_iii"] = Field(
        default="auto", description="MIMIC version of --source; `auto` detects it from the layout."
    )
    seed: int = Field(default=0, description="Seed of the patient-level split.")
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Engine of the ETL (`etl sepsis`, `etl concepts`): in-process DuckDB, or Spark "
        "(`spark`: the SQL transpiled by sqlglot, the per-stay steps as grouped pandas UDFs; needs pyspark "
        "and Java 17+).",
    )
    spark: SparkSettings = Field(default_factory=SparkSettings, description="Spark master/remote, settings.")
    threads: int | None = Field(
        default=None, ge=1, le=MAX_THREADS,
        description=f"DuckDB threads (default: all cores; at most {MAX_THREADS}, since each is an OS thread "
        "with its own buffers and more than the machine has only adds contention).",
    )
    memory_limit: str | None = Field(
        default="4GB",
        description="DuckDB memory limit such as 4GB, 512MB, 8GiB or 80% (at least 100 MB; larger tables "
        "spill to a temp folder); None = DuckDB's default.",
    )

    inclusion: InclusionConfig = Field(default_factory=InclusionConfig, description="Cohort rules.")
    binning: BinningConfig = Field(default_factory=BinningConfig, description="Time grid.")
    weight: WeightConfig = Field(default_factory=WeightConfig, description="Missing-weight fallback.")
    doses: DoseConfig = Field(default_factory=DoseConfig, description="Fluid and vasopressor doses.")
    scoring: ScoringConfig = Field(default_factory=ScoringConfig, description="SOFA/GCS conventions.")
    imputation: ImputationConfig = Field(default_factory=ImputationConfig, description="Missing values.")
    outliers: OutlierConfig = Field(default_factory=OutlierConfig, description="Out-of-bounds values.")
    actions: ActionBinsConfig = Field(default_factory=ActionBinsConfig, description="Discrete action grid.")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Rewards.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Ids, splits, extra outputs.")

    @field_validator("memory_limit")
    @classmethod
    def _duckdb_memory_size(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = MEMORY_SIZE.fullmatch(value)
        if match is None:
            raise ValueError(f"must be a DuckDB memory size such as 4GB, 512MB, 8GiB or 80%. Got {value!r}")
        number, unit = float(match["number"]), match["unit"].lower()
        if unit == "%":
            if not 0 < number <= 100:
                raise ValueError(f"must be a percentage of the machine's memory in (0, 100]. Got {value!r}")
        elif number * MEMORY_UNITS[unit.removesuffix("b")] < MIN_MEMORY_BYTES:
            raise ValueError(f"must be at least 100MB (DuckDB cannot run the ETL in less). Got {value!r}")
        return value.strip()
    @model_validator(mode="after")
    def _window(self) -> SepsisPipelineConfig:
        span = self.inclusion.hours_before_onset + self.inclusion.hours_after_onset
        if span < self.binning.bin_hours:
            raise ValueError(
                f"the window ({span} h) must hold at least one bin of {self.binning.bin_hours} h"
            )
        return self
