"""`run_chemo_pipeline`: oncology records (flat registry, OMOP CDM or trial records) -> trajectories.

The cycle stages (registry or OMOP; `stage_runs.py`, declared in `stages.py`): sources (read and
validate at the boundary), cycles (duplicate, numbering, date, dose and BSA rules), units (cited
unit table), states, trajectories (RDI action, rewards, ends), outputs; OMOP input runs them in
patient batches. Trial records run `trial_pipeline.py`. Rows in = rows out + quarantined at every
stage; the manifest is written last (`manifests.finish_manifest`, shared by both).
"""

from __future__ import annotations

from pathlib import Path

from dosewise.data_schemas import RunManifest, staged_output

from ..privacy import RunIds, resolve_salt, salt_change_warnings
from ..runner import StageRunner
from .config import ChemoPipelineConfig
from .manifests import finish_manifest, redacted_config
from .mapping import RegistryMapping
from .run_state import STAGES, ChemoRun, dataset_info
from .stage_runs import run_cycle_stages

ACTION_RULE = (
    "rdi_fraction = dose_fraction x planned interval / days since the previous cycle start; "
    "action = searchsorted(rdi_edges, rdi_fraction, side='left'): 0 = hold (RDI 0), "
    "k for e[k-1] < RDI <= e[k], last bin above e[-1]"
)


def run_chemo_pipeline(
    config: ChemoPipelineConfig, source_dir: Path | str, out_dir: Path | str, show_progress: bool = True
) -> RunManifest:
    """Run the chemotherapy ETL on a registry or OMOP folder and write a complete trajectories folder.

    The run is staged and swapped in whole, so a failed rerun leaves the last complete one intact.
    Every output names patients as the trajectories do (`RunIds`): pseudonyms unless
    `output.pseudonymize_ids = false`; the salt's fingerprint goes in the manifest.
    """
    out = config.output
    ids = RunIds(resolve_salt(out.id_salt, out.id_salt_env) if out.pseudonymize_ids else "")
    warnings = salt_change_warnings(Path(out_dir), ids)
    trial = _trial_mapping(config)
    with staged_output(out_dir) as work:
        if trial is not None:
            from .trial_pipeline import run_trial_into

            manifest = run_trial_into(config, trial, Path(source_dir), work, show_progress, ids, warnings)
        else:
            manifest = _run_into(config, Path(source_dir), work, show_progress, ids, warnings)
    return manifest


def _trial_mapping(config: ChemoPipelineConfig) -> RegistryMapping | None:
    """The registry mapping when it declares a trial design (one row per patient), else None."""
    if config.input.format == "omop":
        return None
    from .registry import load_mapping

    mapping = load_mapping(config.input.mapping)
    if mapping.design == "trial":
        return mapping
    return None


def _run_into(
    config: ChemoPipelineConfig,
    source_dir: Path,
    out_dir: Path,
    show_progress: bool,
    ids: RunIds,
    warnings: list[str],
) -> RunManifest:
    run = ChemoRun(config, source_dir, out_dir, ids, StageRunner(STAGES, show_progress))
    manifest = RunManifest.start("chemo_trajectories", redacted_config(config), seed=config.seed)
    try:
        if config.engine == "spark":
            from .spark_stages import run_cycle_stages_spark

            run_cycle_stages_spark(run)
        else:
            run_cycle_stages(run)
        info = dataset_info(config, run.has_prob)
        extra = {
            **run.notes,
            "source_format": run.need("src").format,
            "n_episodes": len(run.need("patients")),
            "action_rule": ACTION_RULE,
            "behaviour_prob": "known (simulator truth/behaviour.parquet)" if run.has_prob else "absent",
            "behaviour_density": "density of the logged rdi_fraction under the simulated clinicians' policy"
            if run.has_prob
            else "absent",
        }
        manifest.inputs = run.inputs
    finally:
        run.runner.close()
    return finish_manifest(manifest, run.runner, out_dir, info, extra, ids, warnings)
