"""`write_synthetic_oncology`: a simulated cohort written as a registry or an OMOP CDM folder.

The folder holds the records (`registry.<ext>`, or one file per OMOP table), `truth/` (what was
planted, the true patient parameters and outcomes, the behaviour policy's option probabilities
for every logged cycle) and a `manifest.json` written last.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from dosewise.data_schemas import BadInputError, RunManifest, StageRecord, staged_output, write_table_atomic

from ..rule_tables import rule_sha256
from .oncology_params import DOSE_RULES_FILE, PARAMETER_FILE, REGIMENS_FILE, load_oncology_parameters
from .oncology_policy import ClinicianPolicy
from .oncology_records import DIRT_RATES, dated_records, registry_table
from .oncology_sim import simulate_cohort

FORMATS = ("registry", "omop")
FILE_FORMATS = ("csv.gz", "csv", "parquet")
MODELS = ("friberg_claret", "zhao2009")


def write_table(frame: pd.DataFrame, path_stem: Path, file_format: str) -> Path:
    """One table as csv, csv.gz or parquet, written atomically."""
    path = path_stem.with_name(f"{path_stem.name}.{file_format}")
    if file_format == "parquet":
        return write_table_atomic(frame, path)
    from dosewise.data_schemas import atomic_path

    with atomic_path(path) as tmp:
        frame.to_csv(
            tmp, index=False, compression={"method": "gzip", "mtime": 0} if file_format == "csv.gz" else None
        )
    return path


def write_synthetic_oncology(
    out: Path | str,
    n_patients: int,
    *,
    seed: int = 0,
    fmt: str = "registry",
    file_format: str = "csv.gz",
    model: str = "friberg_claret",
) -> RunManifest:
    """Simulate `n_patients` under the clinicians' dose-modification policy and write the records.

    `model = zhao2009` writes the Zhao, Kosorok & Zeng 2009 trial as a trajectories folder instead
    (that model has no laboratory records to write).
    """
    if model not in MODELS:
        raise BadInputError(
            f"--model must be one of {', '.join(MODELS)}. Got `{model}`.",
            "Use friberg_claret (docetaxel cycles) or zhao2009.",
        )
    if model == "zhao2009":
        from .oncology_zhao import write_zhao_episodes

        if n_patients < 1:
            raise BadInputError(
                f"--patients must be >= 1. Got {n_patients}.", "Ask for at least one patient."
            )
        return write_zhao_episodes(out, n_patients, seed)
    if fmt not in FORMATS:
        raise BadInputError(
            f"--format must be one of {', '.join(FORMATS)}. Got `{fmt}`.", "Use registry or omop."
        )
    if file_format not in FILE_FORMATS:
        raise BadInputError(
            f"--file-format must be one of {', '.join(FILE_FORMATS)}. Got `{file_format}`.",
            "Use csv.gz, csv or parquet.",
        )
    if n_patients < 1:
        raise BadInputError(f"--patients must be >= 1. Got {n_patients}.", "Ask for at least one patient.")
    out = Path(out)
    with staged_output(out) as work:
        params = load_oncology_parameters()
        start = time.perf_counter()
        policy = ClinicianPolicy(params["behaviour.deviation_probability"], params["behaviour.dose_noise_sd"])
        cohort = simulate_cohort(policy, n_patients, seed)
        records = dated_records(cohort, seed)
        sim_seconds = time.perf_counter() - start
        start = time.perf_counter()
        if fmt == "registry":
            table = registry_table(records)
            written = {"registry": write_table(table, work / "registry", file_format)}
            n_rows = len(table)
        else:
            from .oncology_omop import omop_tables

            tables = omop_tables(records)
            written = {name: write_table(frame, work / name, file_format) for name, frame in tables.items()}
            n_rows = sum(len(f) for f in tables.values())
        truth = work / "truth"
        write_table_atomic(records.planted, truth / "planted.parquet")
        write_table_atomic(
            records.behaviour.assign(patient_id=records.behaviour["patient_id"].astype(str)),
            truth / "behaviour.parquet",
        )
        patients = cohort.patients.assign(patient_id=cohort.patients["patient_id"].astype(str))
        write_table_atomic(patients, truth / "patients.parquet")
        manifest = RunManifest.start(
            "synthetic_oncology",
            {
                "patients": n_patients,
                "seed": seed,
                "format": fmt,
                "file_format": file_format,
                "regimen": cohort.settings.regimen,
                "behaviour": "clinician dose-modification table",
            },
            seed=seed,
        )
        rule_files = (PARAMETER_FILE, DOSE_RULES_FILE, REGIMENS_FILE)
        manifest.inputs = {f"rules/{n}": rule_sha256(n) for n in rule_files}
        manifest.stages = [
            StageRecord(
                name="simulate",
                rows_in=n_patients,
                rows_out=len(cohort.cycles),
                seconds=round(sim_seconds, 3),
                note="patients -> delivered cycles",
            ),
            StageRecord(
                name="write",
                rows_in=len(cohort.cycles),
                rows_out=n_rows,
                seconds=round(time.perf_counter() - start, 3),
                note=f"{fmt} tables",
            ),
        ]
        manifest.extra = {
            "files": {k: v.name for k, v in written.items()},
            "dirt_rates": DIRT_RATES,
            "dirt_planted": records.planted["dirt"].value_counts().to_dict() if len(records.planted) else {},
            "n_cycles": len(cohort.cycles),
            "deaths_by_horizon": int(cohort.patients["death_day"].notna().sum()),
        }
        manifest.record_outputs(work)
        manifest.write(work)
    return manifest
