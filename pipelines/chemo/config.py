"""`ChemoPipelineConfig`: every choice of the chemotherapy ETL, typed, documented and defaulted."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator

from dosewise.data_schemas import StrictConfig

from ..sources.spark_engine import SparkSettings
from .mapping import RegistryMapping

TOXICITY_CATEGORIES = (
    "neutropenia",
    "febrile_neutropenia",
    "thrombocytopenia",
    "neuropathy",
    "diarrhoea",
    "mucositis",
    "fatigue",
)


class ChemoActionConfig(StrictConfig):
    """The discretised action: bins of the relative dose intensity (RDI)."""

    rdi_edges: list[float] = Field(
        default=[0.0, 0.55, 0.7, 0.9],
        description="RDI bin edges starting at 0: bin 0 = hold (RDI 0), then (e[k-1], e[k]], last above "
        "e[-1]. Defaults sit between the docetaxel levels 75/60/50 mg/m2 and 1-2 week delays.",
    )
    max_rdi: float = Field(
        default=1.5,
        gt=0,
        description="RDI above this is quarantined as implausible (delivered > 1.5 x planned).",
    )

    @field_validator("rdi_edges")
    @classmethod
    def _edges(cls, edges: list[float]) -> list[float]:
        if len(edges) < 2 or edges[0] != 0.0 or any(b <= a for a, b in pairwise(edges)):
            raise ValueError(f"must start at 0 and increase strictly, with at least two edges. Got {edges}")
        return edges


class ChemoRewardConfig(StrictConfig):
    """Outcome at the horizon plus per-cycle toxicity penalties (described in the manifest)."""

    outcome: Literal["survival", "progression_free"] = Field(
        default="survival", description="What counts as success at the horizon."
    )
    horizon_days: int = Field(default=365, ge=30, le=3650, description="Horizon from the first cycle (days).")
    outcome_reward: float = Field(default=1.0, gt=0, description="Reward on the last step when successful.")
    penalty_grade3: float = Field(
        default=0.1,
        ge=0,
        description="Penalty per cycle with a grade >= 3 toxicity in `penalised_categories`.",
    )
    penalty_febrile_neutropenia: float = Field(
        default=0.25, ge=0, description="Penalty per cycle with febrile neutropenia."
    )
    penalised_categories: list[str] = Field(
        default=["thrombocytopenia", "neuropathy", "diarrhoea", "mucositis", "fatigue"],
        description="CTCAE categories whose grade >= 3 costs `penalty_grade3` (neutropenia itself is "
        "asymptomatic; its harm enters through febrile neutropenia).",
    )
    censoring: Literal["timeout", "ipcw_km"] = Field(
        default="timeout",
        description="An outcome censored before the horizon. `timeout`: no outcome reward, the episode "
        "ends as a timeout (the value estimated is then the value as recorded, censored outcomes "
        "counted as failures). `ipcw_km`: a patient whose outcome is observed gets outcome_reward / "
        "G(horizon-), a censored one 0, G the Kaplan-Meier estimate of the censoring distribution (see "
        "pipelines/chemo/censoring.py); in cycle trajectories each cycle's penalties are divided by G "
        "at the cycle's scheduled day too; every episode ends terminal. The value estimated is then the "
        "value had no one been lost to follow-up (censoring independent of the outcome). G is estimated over "
        "all patients of the run (OMOP input in patient batches too: G is fitted once, between the "
        "two passes, so outputs do not depend on the batch size).",
    )
    censoring_strata: Literal["none", "first_action"] = Field(
        default="first_action",
        description="`ipcw_km`: estimate G within each randomised arm (`first_action`; the arm means "
        "then equal the arms' Kaplan-Meier estimates; in cycle trajectories, within the first cycle's "
        "action bin) or pooled (`none`).",
    )

    @field_validator("penalised_categories")
    @classmethod
    def _categories(cls, cats: list[str]) -> list[str]:
        unknown = [x for x in cats if x not in TOXICITY_CATEGORIES]
        if unknown:
            raise ValueError(f"must be CTCAE categories from {list(TOXICITY_CATEGORIES)}. Got {unknown}")
        return cats


class ChemoEpisodeConfig(StrictConfig):
    """How an episode (one patient's regimen) ends."""

    regimen_end: Literal["terminal", "timeout"] = Field(
        default="terminal",
        description="Last cycle of a patient whose outcome at the horizon is known: `terminal` (the "
        "horizon reward completes the return) or `timeout`. Death is always terminal; loss to "
        "follow-up before the horizon is always a timeout.",
    )


class ChemoOutputConfig(StrictConfig):
    """Identifiers and splits."""

    pseudonymize_ids: bool = Field(default=True, description="Salted-hash episode ids instead of raw ids.")
    id_salt: str = Field(default="", description="Salt for pseudonyms; empty reads it from `id_salt_env`.")
    id_salt_env: str = Field(default="DOSEWISE_ID_SALT", description="Environment variable holding the salt.")
    split_fractions: tuple[float, float, float] = Field(
        default=(0.7, 0.15, 0.15), description="Patient-level train/validation/test fractions."
    )


class ChemoInputConfig(StrictConfig):
    """Which input format, and what to do with unknown regimens or drugs."""

    format: Literal["auto", "registry", "omop"] = Field(
        default="auto", description="Input format of --source; `auto` detects it from the files."
    )
    mapping: str | RegistryMapping = Field(
        default="registry_default",
        description="Registry column-mapping config: a shipped name, a TOML path, or an inline "
        "[input.mapping] table (as in registry_colon); registry input only.",
    )
    unknown_regimen: Literal["error", "quarantine"] = Field(
        default="error", description="An unknown regimen or drug concept: stop with an error, or quarantine."
    )
    duckdb_memory_limit: str = Field(
        default="1GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="OMOP input is read and joined in DuckDB under this memory limit (it spills to a "
        "temporary folder beyond it), e.g. `512MB`, `2GB`.",
    )
    duckdb_threads: int = Field(default=2, ge=1, le=64, description="DuckDB threads for OMOP input.")
    batch_patients: int = Field(
        default=20_000,
        ge=1,
        description="OMOP input: patients per batch of the cycle-level stages after DuckDB (cycle rules, "
        "units, states, trajectories), so memory stays bounded as the cohort grows; outputs do not "
        "depend on it.",
    )
    use_simulator_truth: bool = Field(
        default=True,
        description="When --source has truth/behaviour.parquet (written by `dosewise synth oncology`), "
        "attach the known behaviour probabilities and RDI densities.",
    )


class ChemoPipelineConfig(StrictConfig):
    """The chemotherapy ETL: OMOP CDM oncology or a flat registry -> cycle-level trajectories."""

    kind: Literal["chemo_pipeline"] = Field(default="chemo_pipeline", description="Config kind.")
    seed: int = Field(default=0, description="Seed of the patient-level split.")
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Engine of the cycle ETL (OMOP CDM or flat registry input): in-process DuckDB and "
        "pandas, or Spark (`spark`: the OMOP checks and SQL transpiled by sqlglot, the per-patient "
        "stages as grouped pandas UDFs; needs pyspark and Java 17+). Trial records run on DuckDB only.",
    )
    spark: SparkSettings = Field(default_factory=SparkSettings, description="Spark master/remote, settings.")
    input: ChemoInputConfig = Field(default_factory=ChemoInputConfig, description="Input format.")
    actions: ChemoActionConfig = Field(default_factory=ChemoActionConfig, description="RDI bins.")
    reward: ChemoRewardConfig = Field(default_factory=ChemoRewardConfig, description="Rewards.")
    episode: ChemoEpisodeConfig = Field(default_factory=ChemoEpisodeConfig, description="Episode ends.")
    output: ChemoOutputConfig = Field(default_factory=ChemoOutputConfig, description="Ids and splits.")
