"""Content fingerprints of chemotherapy ETL outputs, to prove a refactor changes nothing in them.

The same fingerprint as the sepsis one (`sepsis_fingerprint.fingerprint`: every parquet table by
column names, dtypes and values in row order, float columns rounded to `FLOAT_DECIMALS`, and each
stage's row and quarantine counts),
on a small synthetic OMOP folder with dirt planted at every stage that quarantines (a duplicated
measurement, one before birth, one in an unknown unit, an unknown drug concept, a negative dose, a
duplicated cycle number, a person failing the schema) and on the registry of the same patients.
`CASES` are the runs the committed reference (`chemo_fingerprint.json`) was computed on; the
OMOP cases run again in small patient batches in the test, which must not change a value.

Regenerate the reference only when an output is meant to change (say so in the commit):
    .venv/bin/python -m tests.pipelines.chemo_fingerprint --write
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import load_config
from dosewise.pipelines import (
    ChemoPipelineConfig,
    config_folder,
    run_chemo_pipeline,
    write_synthetic_oncology,
)

from .sepsis_fingerprint import fingerprint

REFERENCE = Path(__file__).with_name("chemo_fingerprint.json")
N_PATIENTS, SOURCE_SEED = 120, 5
FLOAT_DECIMALS = 12
SALT = "output.id_salt='fingerprint-salt-0123456789'"
#: name -> (source folder, shipped config, overrides): pseudonyms (hash order) and raw ids (id order)
CASES: dict[str, tuple[str, str, list[str]]] = {
    "omop": ("omop", "chemo_omop", [SALT, "input.unknown_regimen=quarantine"]),
    # an unknown drug concept leaves its cycle without a dose (a hold the simulated clinicians never
    # chose, behaviour_prob 0), so this case reads no simulator truth
    "omop_raw_ids": ("omop_unknown_drug", "chemo_omop", [
        "output.pseudonymize_ids=false", "input.unknown_regimen=quarantine",
        "input.use_simulator_truth=false", "reward.outcome=progression_free"]),
    "registry": ("registry", "chemo_registry", [SALT]),
}


def run_case(sources: Path, name: str, out: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """Run one of `CASES` (with `extra` overrides) into `out` and fingerprint the result."""
    folder, config_name, overrides = CASES[name]
    settings = [*overrides, *(extra or [])]
    config = load_config(config_name, ChemoPipelineConfig, settings, search=[config_folder()])
    run_chemo_pipeline(config, sources / folder, out, show_progress=False)
    # exact float hashes of the cases with the simulator's truth (behaviour_prob, behaviour_density,
    # from numpy's exp/log) differed on another machine, the case without it did not: 12 decimals
    return fingerprint(out, float_decimals=FLOAT_DECIMALS)


def _plant_omop_dirt(src: Path) -> None:
    meas = pd.read_csv(src / "measurement.csv", dtype=str, keep_default_na=False)
    meas.loc[0, "measurement_date"] = "1901-01-01"  # before birth
    meas.loc[7, "unit_source_value"] = "furlongs"  # unknown unit
    pd.concat([meas, meas.iloc[[11, 40]]]).to_csv(src / "measurement.csv", index=False)  # duplicates
    drugs = pd.read_csv(src / "drug_exposure.csv", dtype=str, keep_default_na=False)
    drugs.loc[200, "quantity"] = "-5.0"  # negative dose: the patient's later cycles follow it out
    drugs.to_csv(src / "drug_exposure.csv", index=False)
    episode = pd.read_csv(src / "episode.csv", dtype=str, keep_default_na=False)
    cycles = episode.index[episode["episode_number"] != ""]
    episode.loc[cycles[30], "episode_number"] = episode.loc[cycles[29], "episode_number"]  # number twice
    episode.to_csv(src / "episode.csv", index=False)
    person = pd.read_csv(src / "person.csv", dtype=str, keep_default_na=False)
    person.loc[4, "year_of_birth"] = "1700"  # fails the person schema
    person.to_csv(src / "person.csv", index=False)


def write_sources(folder: Path) -> Path:
    """The synthetic OMOP folder (with dirt), a copy with an unknown drug concept, and the registry
    of the same patients."""
    write_synthetic_oncology(folder / "omop", N_PATIENTS, seed=SOURCE_SEED, fmt="omop", file_format="csv")
    _plant_omop_dirt(folder / "omop")
    shutil.copytree(folder / "omop", folder / "omop_unknown_drug")
    drugs = pd.read_csv(folder / "omop_unknown_drug" / "drug_exposure.csv", dtype=str, keep_default_na=False)
    drugs.loc[3, "drug_concept_id"] = "999999001"  # not in the concept map
    drugs.to_csv(folder / "omop_unknown_drug" / "drug_exposure.csv", index=False)
    write_synthetic_oncology(folder / "registry", N_PATIENTS, seed=SOURCE_SEED, fmt="registry")
    return folder


def main(argv: list[str]) -> int:
    """`--write`: recompute the reference with the code as it is now."""
    if argv != ["--write"]:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        sources = write_sources(Path(tmp) / "src")
        found = {name: run_case(sources, name, Path(tmp) / name) for name in CASES}
    REFERENCE.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
