"""`PipelineConfig`: one batch run, ETL -> train -> evaluate -> register -> promote, from one TOML.

Each stage names a shipped config of its layer (or a TOML path) plus `settings`, a table of
overrides merged into it, so `--set train.settings.n_steps=500` reaches the training config. The
stage configs are resolved and validated when the pipeline config is loaded, before any stage
runs: a bad key anywhere fails in the first second with its dotted name.
"""

from __future__ import annotations

from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from dosewise.data_schemas import ConfigError, StrictConfig, load_config
from dosewise.data_schemas.config_files import read_config_source, validate_config

STAGES = ("source", "etl", "train", "evaluate", "register", "promote", "ground_truth", "chemo_leg")


def config_folder() -> Traversable:
    """The folder of shipped pipeline and sweep configs."""
    return files("dosewise.app") / "configs"


class SourceStage(StrictConfig):
    """Where the raw records come from: a folder, or synthetic MIMIC-IV records written first."""

    kind: Literal["path", "synthetic_icu"] = Field(
        default="path", description="`path`: read `path`; `synthetic_icu`: write synthetic records."
    )
    path: str | None = Field(default=None, description="Raw records folder (kind = path).")
    stays: int = Field(default=2000, ge=10, description="Synthetic ICU stays (kind = synthetic_icu).")
    seed: int = Field(default=0, ge=0, description="Seed of the synthetic records.")


class _LayerStage(StrictConfig):
    config: str = Field(description="A shipped config name of the stage's layer, or a TOML path.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Overrides merged into that config (nested tables)."
    )


class EtlStage(_LayerStage):
    """The ETL: which pipeline and its config."""

    kind: str = Field(default="sepsis", description="ETL pipeline: sepsis or chemo.")
    config: str = Field(default="sepsis_mimic4", description="ETL config name or TOML path.")
    engine: Literal["duckdb", "spark"] | None = Field(
        default=None, description="ETL engine (`engine` of the ETL config); None keeps the config's.")
    spark: dict[str, Any] = Field(
        default_factory=dict, description="Spark settings merged into the ETL config's `spark` table "
        "(master = 'local[4]' | 'spark://HOST:PORT' | 'k8s://...', remote = 'sc://HOST:PORT', conf = {...}).")

    def layer_settings(self) -> dict[str, Any]:
        """`settings` with `engine` and `spark` merged in (they win over the same keys there)."""
        out = dict(self.settings)
        if self.engine is not None:
            out["engine"] = self.engine
        if self.spark:
            out["spark"] = {**dict(out.get("spark", {})), **self.spark}
        return out


class TrainStage(_LayerStage):
    """Training: a `dosewise train` config."""

    config: str = Field(default="discrete_cql", description="Training config name or TOML path.")


class EvaluateStage(_LayerStage):
    """Off-policy evaluation of the trained policy."""

    config: str = Field(default="ope_default", description="OPE config name or TOML path.")
    split: Literal["validation", "test"] = Field(default="test", description="Split evaluated.")


class RegistryStage(StrictConfig):
    """Registration of the trained policy in the MLflow registry."""

    name: str = Field(default="sepsis-dosing", min_length=1, description="Registered model name.")
    alias: str = Field(default="candidate", min_length=1, description="Alias set on the new version.")


class PromoteStage(_LayerStage):
    """The OPE promotion gate for `champion`."""

    enabled: bool = Field(default=True, description="Try the promotion gate after registering.")
    config: str = Field(default="promotion", description="Promotion gate config name or TOML path.")


class GroundTruthStage(StrictConfig):
    """ICU-Sepsis leg: train on simulated clinician episodes, OPE beside the exact value."""

    enabled: bool = Field(default=False, description="Run the ICU-Sepsis ground-truth leg.")
    episodes: int = Field(default=3000, ge=100, description="Simulated clinician episodes.")
    seed: int = Field(default=0, ge=0, description="Seed of the simulated episodes.")


class ChemoLegStage(StrictConfig):
    """The demo's chemotherapy leg: OMOP records -> chemo ETL -> chemo_discrete_cql -> OPE vs truth."""

    enabled: bool = Field(default=False, description="Run the chemotherapy leg.")
    patients: int = Field(default=1000, ge=10, description="Simulated oncology patients.")
    truth_patients: int = Field(default=2000, ge=10, description="Monte-Carlo patients per true value.")
    train_steps: int = Field(default=2000, ge=1, description="chemo_discrete_cql gradient steps.")
    n_bootstrap: int = Field(default=1000, ge=10, description="OPE bootstrap resamples.")
    fqe_steps: int = Field(default=1500, ge=1, description="FQE steps of the chemo OPE.")


class PipelineConfig(StrictConfig):
    """A whole batch run; `out` is the run folder (stages, logs, MLflow store)."""

    kind: Literal["pipeline"] = Field(default="pipeline", description="Config kind.")
    out: str = Field(default="dosewise_out/run", description="Run folder.")
    experiment: str | None = Field(default=None, description="MLflow experiment (None: the default).")
    source: SourceStage = Field(default_factory=SourceStage, description="Raw records.")
    etl: EtlStage = Field(default_factory=EtlStage, description="ETL stage.")
    train: TrainStage = Field(default_factory=TrainStage, description="Training stage.")
    evaluate: EvaluateStage = Field(default_factory=EvaluateStage, description="OPE stage.")
    registry: RegistryStage = Field(default_factory=RegistryStage, description="Registry stage.")
    promote: PromoteStage = Field(default_factory=PromoteStage, description="Promotion stage.")
    ground_truth: GroundTruthStage = Field(default_factory=GroundTruthStage, description="ICU-Sepsis leg.")
    chemo_leg: ChemoLegStage = Field(default_factory=ChemoLegStage, description="Chemotherapy leg.")


def merge(base: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """`base` with `settings` merged in, tables recursively (a copy; later wins).

    >>> merge({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 9}})
    {'a': 1, 'b': {'c': 9, 'd': 3}}
    """
    out = dict(base)
    for key, value in settings.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_stage(stage: str, source: str, settings: dict[str, Any], model_cls: type[Any],
                  search: list[Traversable]) -> Any:
    """A stage's layer config: `source` read, `settings` merged, validated as `model_cls`."""
    try:
        return validate_config(model_cls, merge(read_config_source(source, search), settings))
    except ConfigError as exc:
        raise ConfigError(f"Pipeline stage `{stage}` (config {source!r}, keys under `{stage}.settings`): "
                          f"{exc.message}", exc.hint) from exc


def load_pipeline_config(source: str | Path, overrides: list[str]) -> PipelineConfig:
    """Read a pipeline config (shipped name or TOML path) with `--set` overrides and validate it."""
    config = load_config(source, PipelineConfig, overrides, search=[config_folder()])
    if config.source.kind == "path" and not config.source.path:
        raise ConfigError("`source.path` must name the raw records folder when `source.kind` is 'path'. "
                          "Got none.", "Set source.path, or use source.kind = 'synthetic_icu'.")
    return config
