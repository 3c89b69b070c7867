"""Content fingerprints of sepsis ETL outputs, to prove a refactor changes nothing in them.

`fingerprint(out)` hashes every table the ETL writes (trajectories, splits, cohort, imputed mask,
each quarantine file) by its column names, dtypes and exact values (`pd.util.hash_pandas_object`:
bit-exact floats, row order included), and keeps each stage's row and quarantine counts from the
manifest. `CASES` are the runs the committed reference (`sepsis_fingerprint.json`) was computed on.

Regenerate the reference only when an output is meant to change (say so in the commit):
    .venv/bin/python -m tests.pipelines.sepsis_fingerprint --write
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import RunManifest, load_config
from dosewise.pipelines import SepsisPipelineConfig, config_folder, run_sepsis_pipeline
from dosewise.pipelines.simulators.synthetic_icu import write_synthetic_icu

REFERENCE = Path(__file__).with_name("sepsis_fingerprint.json")
N_STAYS, SOURCE_SEED = 80, 7
#: name -> (shipped config, overrides): the defaults, and the other branch of every switch the
#: stage SQL reads from etl_params (clipping, raw fluid volumes, 2 h bins, pseudonyms)
CASES: dict[str, tuple[str, list[str]]] = {
    "defaults": ("sepsis_mimic4", ["output.pseudonymize_ids=false"]),
    "switched": ("sepsis_mimic4", ["outliers.clip=true", "doses.tonicity_adjusted=false",
                                   "binning.bin_hours=2", "output.id_salt='fingerprint-salt-0123456789'"]),
}


def _table_hash(path: Path, float_decimals: int | None = None) -> str:
    frame = pd.read_parquet(path)
    if float_decimals is not None:  # last-bit differences of exp/log between CPUs' SIMD paths drop out
        floats = frame.select_dtypes("float").columns
        frame[floats] = frame[floats].round(float_decimals)
    digest = hashlib.sha256(json.dumps([[str(k), str(v)] for k, v in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def fingerprint(out: Path, float_decimals: int | None = None) -> dict[str, Any]:
    """Hashes of every parquet table under `out` (float columns rounded to `float_decimals` when
    given) and the manifest's per-stage counts."""
    manifest = RunManifest.read(out)
    return {
        "tables": {str(p.relative_to(out)): _table_hash(p, float_decimals)
                   for p in sorted(out.rglob("*.parquet"))},
        "stages": [[s.name, s.rows_in, s.rows_out, s.rows_quarantined,
                    dict(sorted(s.quarantined_by_rule.items()))] for s in manifest.stages],
        "funnel": [step.model_dump(mode="json") for step in manifest.funnel],
    }


def run_case(source: Path, name: str, out: Path) -> dict[str, Any]:
    """Run one of `CASES` on `source` into `out` and fingerprint the result."""
    config_name, overrides = CASES[name]
    config = load_config(config_name, SepsisPipelineConfig, overrides, search=[config_folder()])
    run_sepsis_pipeline(config, source, out, show_progress=False)
    return fingerprint(out)


def write_source(folder: Path) -> Path:
    """The small synthetic MIMIC-IV source every case reads."""
    write_synthetic_icu(folder, N_STAYS, seed=SOURCE_SEED, show_progress=False)
    return folder


def main(argv: list[str]) -> int:
    """`--write`: recompute the reference with the code as it is now."""
    if argv != ["--write"]:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        source = write_source(Path(tmp) / "src")
        found = {name: run_case(source, name, Path(tmp) / name) for name in CASES}
    REFERENCE.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
