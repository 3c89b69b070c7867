"""`run_sepsis_pipeline`: raw MIMIC-III/IV -> Sepsis-3 trajectories, cohort, splits, quarantine, manifest.

The pipeline is the ordered list of declared stages in `stages.SEPSIS_STAGES` (what each reads and
makes, its SQL files); `stage_runs` holds one function per stage. Heavy row-level work runs in DuckDB
(sources, concepts, linkage, outliers, binning); pandas only touches the stay x bin grid. The
manifest is written last, so its presence means the folder is whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import RunManifest, staged_output
from dosewise.data_schemas import columns as c
from dosewise.data_schemas.out_paths import check_out_dir

from ..binning import BINNING_RULE
from ..privacy import RunIds, resolve_salt, salt_change_warnings
from ..runner import StageRunner
from ..sources.mimic_layout import detect_version
from .config import SepsisPipelineConfig
from .stage_runs import PIPELINE_CONCEPTS, STAGE_RUNS, SepsisRun
from .stages import SEPSIS_STAGES, STAGE_NAMES
from .summaries import care_systems, weight_fallback

STAGES = STAGE_NAMES  # the declared stages, in order: stages.SEPSIS_STAGES
__all__ = ["PIPELINE_CONCEPTS", "STAGES", "redacted_config", "run_sepsis_pipeline"]


def redacted_config(config: SepsisPipelineConfig) -> dict[str, Any]:
    """The resolved config for the manifest, with the pseudonym salt removed."""
    data = config.model_dump(mode="json")
    if data["output"]["id_salt"]:
        data["output"]["id_salt"] = "<redacted>"
    return data


def run_sepsis_pipeline(
    config: SepsisPipelineConfig, source_dir: Path | str, out_dir: Path | str, show_progress: bool = True
) -> RunManifest:
    """Run the sepsis ETL on a MIMIC-III or MIMIC-IV folder and write a complete trajectories folder.

    The run is staged and swapped in whole, so a failed rerun leaves the last complete one intact.
    """
    salt = (
        resolve_salt(config.output.id_salt, config.output.id_salt_env)
        if config.output.pseudonymize_ids
        else ""
    )
    ids = RunIds(salt)
    warnings = salt_change_warnings(Path(out_dir), ids)
    detect_version(Path(source_dir))  # a wrong --source is named before any --out rule
    check_out_dir(Path(out_dir), {"--source": Path(source_dir)})
    with staged_output(out_dir) as work:
        manifest = _run_into(config, Path(source_dir), work, show_progress, ids, warnings)
    return manifest


def _run_into(
    config: SepsisPipelineConfig,
    source_dir: Path,
    out_dir: Path,
    show_progress: bool,
    ids: RunIds,
    warnings: list[str],
) -> RunManifest:
    """Run every declared stage in order into `out_dir`; the manifest records each one's counts."""
    runner = StageRunner(STAGES, show_progress)
    manifest = RunManifest.start("sepsis_trajectories", redacted_config(config), seed=config.seed)
    run = SepsisRun(config, source_dir, out_dir, ids, manifest)
    runs = STAGE_RUNS
    if config.engine == "spark":
        from .spark_stages import SPARK_STAGE_RUNS as runs
    try:
        for stage in SEPSIS_STAGES:
            with runner.stage(stage.name) as log:
                runs[stage.name](run, log)
        _finish_manifest(run, warnings)
    finally:
        runner.close()
        if run.cat is not None:
            run.cat.close()
    manifest.stages = runner.records
    manifest.record_outputs(out_dir)
    manifest.write(out_dir)
    return manifest


def _shifted_ages(record: dict[str, Any] | None, cohort: pd.DataFrame, version: str) -> dict[str, Any] | None:
    """The MIMIC-III shifted-age rule for the manifest: its action, the stays and episodes it applied to."""
    if record is None or version != "mimic_iii":
        return None
    return {**record, "episodes": int(cohort["age_shifted"].fillna(False).astype(bool).sum())}


def _finish_manifest(run: SepsisRun, warnings: list[str]) -> None:
    """The funnel, the dataset contract and the run's summaries, in the manifest."""
    config, h, cohort, manifest = run.config, run.h, run.need("cohort"), run.manifest
    fluid_col = c.fluid_column(h)
    manifest.funnel = [*run.need("result").funnel, *run.need("excl").funnel]
    manifest.dataset = run.need("info")
    manifest.extra = {
        **run.extra,
        "source_version": run.need("layout").version,
        "care_systems": care_systems(run.need("stays"), cohort),
        "weight_sources": cohort["weight_source"].value_counts().to_dict(),
        "weight_fallback": weight_fallback(run.need("cat"), cohort),
        "action_binning_rule": BINNING_RULE,
        "fluid_action": (
            f"{fluid_col}: tonicity-adjusted mL (AI Clinician; rules/fluid_items.csv); "
            f"{c.fluid_raw_column(h)}: raw mL"
            if config.doses.tonicity_adjusted
            else f"{fluid_col} and {c.fluid_raw_column(h)}: raw mL (doses.tonicity_adjusted = false)"
        ),
        "n_episodes": len(cohort),
        "imputed_mask": "imputed_mask.parquet: 0 measured, 1 held, 2 filled",
        "id_salt_fingerprint": run.ids.fingerprint,
        "mimic_iii_shifted_ages": _shifted_ages(run.need("result").shifted_ages, cohort,
                                                run.need("layout").version),
        "warnings": warnings,
    }
