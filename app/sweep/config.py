"""`SweepConfig`: a Ray Tune sweep over dotted training settings x seeds, selected by OPE.

The search space maps dotted `TrainConfig` keys (`algorithm.alpha`, `mask.min_count`,
`learning_rate` is `algorithm.learning_rate`, ...) to the values to try: a list (grid, or a
choice in random search) or `{low, high, log}` (random search only). Every trial's config is
built and validated before Ray starts, so an unknown key or a value out of range fails at once
with the dotted key and what is allowed.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
from pydantic import Field

from dosewise import models
from dosewise.data_schemas import ConfigError, StrictConfig, load_config
from dosewise.data_schemas.config_files import read_config_source

from ..pipeline.config import config_folder, merge


class SweepData(StrictConfig):
    """The trajectories: a folder, or ICU-Sepsis clinician episodes simulated first (exact values known)."""

    kind: Literal["path", "icu_sepsis"] = Field(
        default="path", description="Where the trajectories come from."
    )
    path: str | None = Field(default=None, description="Trajectories folder (kind = path).")
    episodes: int = Field(
        default=4000, ge=100, description="Simulated clinician episodes (kind = icu_sepsis)."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the simulated episodes.")
    split_fractions: tuple[float, float, float] = Field(
        default=(0.6, 0.2, 0.2), description="Train, validation, test shares of the simulated episodes."
    )


class SearchSpace(StrictConfig):
    """Grid (every combination) or random (num_samples draws) over `space`, each with every seed."""

    kind: Literal["grid", "random"] = Field(default="grid", description="grid or random search.")
    num_samples: int = Field(default=8, ge=1, description="Random search: configurations drawn.")
    sample_seed: int = Field(default=0, ge=0, description="Random search: seed of the draws.")
    seeds: list[int] = Field(default=[0], min_length=1, description="Training seeds of every configuration.")
    space: dict[str, Any] = Field(default_factory=dict, description="Dotted training key -> values to try.")


class Selection(StrictConfig):
    """How the winner is chosen: the highest lower bound of `estimator` on `split`, ESS >= `min_ess`."""

    estimator: str = Field(
        default="WIS", description="WIS, WDR or FQE (must be among the OPE estimators). FQE has no weights: "
        "its ESS floor checks the policy's WIS weights, so WIS must be computed too when min_ess > 0.")
    bound: Literal["lower_bound_95", "ci_low"] = Field(
        default="lower_bound_95", description="One-sided 95 % lower bound, or the interval's lower end."
    )
    min_ess: float = Field(default=50.0, ge=0.0, description="Trials below this ESS cannot be selected.")
    split: Literal["validation"] = Field(default="validation", description="Split used to select.")


class SweepTrain(StrictConfig):
    """The base training config every trial starts from."""

    config: str = Field(default="discrete_cql", description="Training config name or TOML path.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Overrides for every trial.")


class SweepEvaluate(StrictConfig):
    """The OPE config used on validation (every trial) and on test (the winner)."""

    config: str = Field(default="ope_default", description="OPE config name or TOML path.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Overrides.")


class SweepRegistry(StrictConfig):
    """Where the winner is registered."""

    name: str = Field(default="sepsis-dosing", min_length=1, description="Registered model name.")
    alias: str = Field(default="candidate", min_length=1, description="Alias of the winner's version.")


class SweepConfig(StrictConfig):
    """A whole sweep; `out` holds the trials, Tune's state (for resume), the log and the MLflow store."""

    kind: Literal["sweep"] = Field(default="sweep", description="Config kind.")
    out: str = Field(default="dosewise_out/sweep", description="Sweep folder.")
    experiment: str | None = Field(default=None, description="MLflow experiment (None: the default).")
    max_concurrent: int = Field(default=2, ge=1, description="Trials at once (one CPU each).")
    cpus_per_trial: float = Field(default=1.0, gt=0, description="CPUs Ray reserves per trial.")
    data: SweepData = Field(default_factory=SweepData, description="Trajectories.")
    train: SweepTrain = Field(default_factory=SweepTrain, description="Base training config.")
    search: SearchSpace = Field(default_factory=SearchSpace, description="Search space.")
    selection: Selection = Field(default_factory=Selection, description="Model selection.")
    evaluate: SweepEvaluate = Field(default_factory=SweepEvaluate, description="OPE config.")
    registry: SweepRegistry = Field(default_factory=SweepRegistry, description="Registry.")


def _nest(dotted: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def allowed_keys(config: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a resolved config (what a search space may name)."""
    keys = []
    for name, value in config:
        if isinstance(value, StrictConfig):
            keys.extend(allowed_keys(value, f"{prefix}{name}."))
        elif name != "kind":
            keys.append(f"{prefix}{name}")
    return keys


def _values(key: str, spec: Any, kind: str, rng: np.random.Generator) -> list[Any]:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(
                f"`search.space.{key}` must list at least one value. Got [].",
                "Give the values to try, e.g. [0.0, 0.1, 1.0].",
            )
        return spec if kind == "grid" else [spec[int(rng.integers(len(spec)))]]
    if isinstance(spec, dict) and kind == "random" and {"low", "high"} <= set(spec) <= {"low", "high", "log"}:
        low, high = float(spec["low"]), float(spec["high"])
        if spec.get("log"):
            return [float(np.exp(rng.uniform(np.log(low), np.log(high))))]
        return [float(rng.uniform(low, high))]
    raise ConfigError(
        f"`search.space.{key}` must be a list of values"
        + (" or {low, high, log}" if kind == "random" else "")
        + f". Got {spec!r}.",
        "Grid search takes lists; random search also takes ranges.",
    )


def trial_settings(search: SearchSpace) -> list[dict[str, Any]]:
    """The dotted settings of every trial (seed included), in a fixed order."""
    if not search.space:
        raise ConfigError(
            "`search.space` must name at least one training setting to vary. Got an empty space.",
            'Add e.g. "algorithm.alpha" = [0.0, 0.1] under [search.space].',
        )
    keys = list(search.space)
    rng = np.random.default_rng(search.sample_seed)
    if search.kind == "grid":
        combos = list(itertools.product(*(_values(k, search.space[k], "grid", rng) for k in keys)))
    else:
        combos = [
            tuple(_values(k, search.space[k], "random", rng)[0] for k in keys)
            for _ in range(search.num_samples)
        ]
    return [dict(zip(keys, combo, strict=True)) | {"seed": seed} for combo in combos for seed in search.seeds]


def resolve_trials(config: SweepConfig) -> tuple[Any, list[tuple[dict[str, Any], Any]], Any]:
    """Base train config, every trial's (settings, TrainConfig), and the OPE config, all validated."""
    search = [models.config_folder()]
    base_data = merge(read_config_source(config.train.config, search), config.train.settings)
    base = load_config_from(base_data)
    allowed = allowed_keys(base)
    unknown = [k for k in config.search.space if k not in allowed and k.split(".")[0] != "algorithm"]
    if unknown:
        raise ConfigError(
            f"`search.space` must name training settings. Got unknown {unknown[0]!r}; allowed: "
            f"{', '.join(allowed)}.",
            f"Use the dotted keys that `dosewise config show {config.train.config}` prints.",
        )
    trials = []
    for settings in trial_settings(config.search):
        try:
            trials.append((settings, load_config_from(merge(base_data, _nest(settings)))))
        except ConfigError as exc:
            raise ConfigError(
                f"Sweep trial {settings}: {exc.message} Allowed keys: {', '.join(allowed)}.", exc.hint
            ) from exc
    ope = load_config(config.evaluate.config, models.OpeConfig, [], search=search)
    ope = load_config_from(merge(ope.model_dump(mode="json"), config.evaluate.settings), models.OpeConfig)
    if config.selection.estimator not in ope.estimators:
        raise ConfigError(
            f"`selection.estimator` must be one of the estimators the OPE config computes "
            f"({', '.join(ope.estimators)}). Got {config.selection.estimator!r}.",
            "Select by WIS or WDR, or add the estimator to evaluate.settings.estimators.",
        )
    if (config.selection.estimator == "FQE" and config.selection.min_ess > 0
            and not {"WIS", "IS"} & set(ope.estimators)):
        raise ConfigError(
            "`selection.estimator = FQE` with `selection.min_ess` > 0 must have WIS (or IS) among the OPE "
            f"estimators: the ESS floor checks the policy's importance weights. Got {ope.estimators}.",
            "Add WIS to evaluate.settings.estimators, or set selection.min_ess = 0.",
        )
    return base, trials, ope


def load_config_from(data: dict[str, Any], model_cls: type[Any] | None = None) -> Any:
    """Validate a config dict as `model_cls` (default `TrainConfig`)."""
    from dosewise.data_schemas.config_files import validate_config

    return validate_config(model_cls or models.TrainConfig, data)


def load_sweep_config(source: str, overrides: list[str]) -> SweepConfig:
    """Read a sweep config (shipped name or TOML path) with `--set` overrides."""
    config = load_config(source, SweepConfig, overrides, search=[config_folder()])
    if config.data.kind == "path" and not config.data.path:
        raise ConfigError(
            "`data.path` must name a trajectories folder when `data.kind` is 'path'. Got none.",
            "Set data.path, or use data.kind = 'icu_sepsis'.",
        )
    return config
