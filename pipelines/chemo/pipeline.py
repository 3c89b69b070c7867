"""`run_chemo_pipeline`: oncology records (flat registry or OMOP CDM) -> cycle-level trajectories.

Stages: sources (read and validate at the boundary), cycles (duplicate, numbering, date, dose and
BSA rules), units (cited unit table), states, trajectories (RDI action, rewards, ends, splits),
outputs. Rows in = rows out + quarantined at every stage; the manifest is written last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import (
    BadInputError,
    ConfigError,
    RunManifest,
    TrajectoryDatasetInfo,
    counts_by_rule,
    sha256_file,
    staged_output,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas import columns as c

from ..episodes import episode_ids_and_splits
from ..outputs import write_frame_quarantine
from ..privacy import RunIds, resolve_salt, salt_change_warnings
from ..rule_tables import rule_sha256
from ..runner import StageRunner
from ..simulators.oncology_params import load_oncology_parameters
from .canonical import canonical_cycles, canonical_patients, impute_labs
from .config import ChemoPipelineConfig
from .cycles import apply_cycle_rules, convert_units
from .mapping import RegistryMapping
from .rewards import reward_description
from .sources import ChemoSource, detect_chemo_source, read_chemo_source
from .states import STATE_COLUMNS
from .trajectories import assemble

STAGES = ("sources", "cycles", "units", "states", "trajectories", "outputs")
RULE_FILES = (
    "chemo_regimens.csv",
    "chemo_units.csv",
    "chemo_dose_modifications.csv",
    "oncology_model_parameters.csv",
    "omop_concepts.csv",
)
ACTION_RULE = (
    "rdi_fraction = dose_fraction x planned interval / days since the previous cycle start; "
    "action = searchsorted(rdi_edges, rdi_fraction, side='left'): 0 = hold (RDI 0), "
    "k for e[k-1] < RDI <= e[k], last bin above e[-1]"
)


def redacted_config(config: ChemoPipelineConfig) -> dict[str, Any]:
    """The resolved config for the manifest, with the pseudonym salt removed."""
    data = config.model_dump(mode="json")
    if data["output"]["id_salt"]:
        data["output"]["id_salt"] = "<redacted>"
    return data


def _episode_ids(
    patients: pd.DataFrame, config: ChemoPipelineConfig, run_ids: RunIds
) -> tuple[dict[str, str], pd.DataFrame]:
    out = config.output
    keys = patients["patient_id"].astype(str).tolist()
    ids, splits = episode_ids_and_splits(
        keys,
        keys,
        pseudonymize=out.pseudonymize_ids,
        salt=run_ids.salt,
        fractions=out.split_fractions,
        seed=config.seed,
        raw_prefix="patient_",
    )
    return dict(zip(keys, ids, strict=True)), splits


def _cohort(patients: pd.DataFrame, traj: pd.DataFrame, ids: dict[str, str], raw: bool) -> pd.DataFrame:
    per = traj.groupby(c.EPISODE_ID).agg(
        n_cycles=(c.STEP, "size"), mean_rdi=(c.RDI_FRACTION, "mean"), terminal=(c.TERMINAL, "any")
    )
    out = patients.assign(episode_id=patients["patient_id"].astype(str).map(ids))
    out = out.merge(per, left_on="episode_id", right_index=True, how="inner")
    cols = [
        "episode_id",
        "regimen",
        "age_years",
        "sex_male",
        "ecog",
        "n_cycles",
        "mean_rdi",
        "terminal",
        "first_cycle_date",
        "progression_date",
        "death_date",
        "last_followup_date",
    ]
    out = out[cols + (["patient_id"] if raw else [])]
    for col in ("first_cycle_date", "progression_date", "death_date", "last_followup_date"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
    return out.sort_values("episode_id").reset_index(drop=True)


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
    if config.reward.censoring == "ipcw_km":
        raise ConfigError(
            "reward.censoring = ipcw_km is for trial registries (one row per patient); this mapping has "
            f"design `{mapping.design}`.",
            "Use reward.censoring = timeout for cycle registries, or a mapping with design = \"trial\".",
        )
    return None


def _run_into(
    config: ChemoPipelineConfig,
    source_dir: Path,
    out_dir: Path,
    show_progress: bool,
    ids: RunIds,
    warnings: list[str],
) -> RunManifest:
    runner = StageRunner(STAGES, show_progress)
    manifest = RunManifest.start("chemo_trajectories", redacted_config(config), seed=config.seed)
    extra: dict[str, Any] = {}
    try:
        with runner.stage("sources") as log:
            src: ChemoSource = detect_chemo_source(source_dir, config.input.format)
            rows, quarantine, n_read, notes = read_chemo_source(src, config)
            files = src.files
            extra.update(notes)
            write_frame_quarantine(quarantine, out_dir / "quarantine" / "sources.parquet", ids)
            manifest.inputs = {str(p.relative_to(source_dir)): sha256_file(p) for p in sorted(files)}
            manifest.inputs.update({f"rules/{n}": rule_sha256(n) for n in RULE_FILES})
            grain = (
                "registry rows"
                if src.format == "registry"
                else f"OMOP table rows (cycles assembled: {len(rows)})"
            )
            log.set(
                n_read,
                n_read - len(quarantine),
                counts_by_rule(quarantine),
                note=f"grain: {grain}; {src.describe()}",
            )
        with runner.stage("cycles") as log:
            result = apply_cycle_rules(rows, config.input.unknown_regimen, config.actions.max_rdi)
            q = result.quarantined()
            write_frame_quarantine(q, out_dir / "quarantine" / "cycles.parquet", ids)
            extra.update(result.notes)
            log.set(len(rows), len(result.cycles), counts_by_rule(q))
            if result.cycles.empty:
                raise BadInputError(
                    f"No cycle of {source_dir} passed the cycle rules: {counts_by_rule(q)}.",
                    "See the quarantine counts; fix the records or the mapping config.",
                )
        with runner.stage("units") as log:
            converted, q_units, n_values = convert_units(result.cycles)
            write_frame_quarantine(q_units, out_dir / "quarantine" / "units.parquet", ids)
            log.set(
                n_values,
                n_values - len(q_units),
                counts_by_rule(q_units),
                note="grain: count values (ANC, nadir, platelets) converted to 1e9/L",
            )
        with runner.stage("states") as log:
            cycles = canonical_cycles(converted)
            patients = canonical_patients(converted, cycles)
            cycles, filled = impute_labs(cycles)
            extra["filled_values"] = filled
            log.set(len(converted), len(cycles), note="missing labs held forward, then the median")
        with runner.stage("trajectories") as log:
            episode_ids, splits = _episode_ids(patients, config, ids)
            behaviour = src.behaviour if config.input.use_simulator_truth else None
            sd = load_oncology_parameters()["behaviour.dose_noise_sd"]
            traj = assemble(cycles, patients, config, episode_ids, behaviour, sd)
            has_prob = behaviour is not None
            n = len(config.actions.rdi_edges) + 1
            info = TrajectoryDatasetInfo(
                state_columns=list(STATE_COLUMNS),
                n_actions=n,
                continuous_action_columns=[c.RDI_FRACTION],
                action_bin_edges={c.RDI_FRACTION: list(config.actions.rdi_edges)},
                action_grid=[n],
                bin_hours=None,
                has_behaviour_prob=has_prob,
                ids_pseudonymised=config.output.pseudonymize_ids,
                reward_description=reward_description(config.reward, config.episode),
            )
            traj = validate_frame(traj, trajectory_schema_for(info), "chemo trajectories")
            log.set(len(cycles), len(traj))
        with runner.stage("outputs") as log:
            write_table_atomic(traj, out_dir / "trajectories.parquet")
            write_table_atomic(
                splits.sort_values(c.EPISODE_ID).reset_index(drop=True), out_dir / "splits.parquet"
            )
            cohort = _cohort(patients, traj, episode_ids, not config.output.pseudonymize_ids)
            write_table_atomic(cohort, out_dir / "cohort.parquet")
            log.set(len(traj), len(traj), note="written: trajectories, splits, cohort, quarantine")
        manifest.dataset = info
        manifest.extra = {
            **extra,
            "source_format": src.format,
            "n_episodes": len(patients),
            "action_rule": ACTION_RULE,
            "behaviour_prob": "known (simulator truth/behaviour.parquet)" if has_prob else "absent",
            "behaviour_density": "density of the logged rdi_fraction under the simulated clinicians' policy"
            if has_prob
            else "absent",
            "id_salt_fingerprint": ids.fingerprint,
            "warnings": warnings,
        }
    finally:
        runner.close()
    manifest.stages = runner.records
    manifest.record_outputs(out_dir)
    manifest.write(out_dir)
    return manifest
