"""The outputs of a chemotherapy cycle run besides the trajectories, on either engine: one row per
episode, the cohort table, the splits and quarantine files, and each stage's record in the manifest.
"""

from __future__ import annotations

import pandas as pd

from dosewise.data_schemas import columns as c
from dosewise.data_schemas import counts_by_rule, write_table_atomic

from ..outputs import write_frame_quarantine
from ..runner import StageLog
from .run_state import QUARANTINED_BY, STAGES, ChemoRun


def per_episode(traj: pd.DataFrame) -> pd.DataFrame:
    """Cycles, mean RDI and whether the episode ended terminal, per episode of `traj`."""
    return traj.groupby(c.EPISODE_ID).agg(
        n_cycles=(c.STEP, "size"), mean_rdi=(c.RDI_FRACTION, "mean"), terminal=(c.TERMINAL, "any")
    )


def cohort_table(patients: pd.DataFrame, per: pd.DataFrame, ids: dict[str, str], raw: bool) -> pd.DataFrame:
    """One row per episode: covariates, outcome dates and `per` (cycles, mean RDI, terminal)."""
    out = patients.assign(episode_id=patients["patient_id"].astype(str).map(ids))
    out = out.merge(per, left_on="episode_id", right_index=True, how="inner")
    cols = ["episode_id", "regimen", "age_years", "sex_male", "ecog", "n_cycles", "mean_rdi", "terminal",
            "first_cycle_date", "progression_date", "death_date", "last_followup_date"]
    out = out[cols + (["patient_id"] if raw else [])]
    for col in ("first_cycle_date", "progression_date", "death_date", "last_followup_date"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
    return out.sort_values("episode_id").reset_index(drop=True)


def write_tables(run: ChemoRun, per: pd.DataFrame) -> None:
    out = run.out_dir
    splits = run.need("splits")
    write_table_atomic(splits.sort_values(c.EPISODE_ID).reset_index(drop=True), out / "splits.parquet")
    cohort = cohort_table(run.need("patients"), per, run.need("episode_ids"),
                          not run.config.output.pseudonymize_ids)
    write_table_atomic(cohort, out / "cohort.parquet")
    for stage in QUARANTINED_BY:
        q = run.totals[stage].quarantined()
        write_frame_quarantine(q, out / "quarantine" / f"{stage}.parquet", run.ids)


def record_stages(run: ChemoRun) -> None:
    """Each stage's summed counts, as one record per stage in the manifest."""
    src, t = run.need("src"), run.totals
    q = {s: t[s].quarantined() for s in QUARANTINED_BY}
    assembled = t["sources"].rows_out
    grain = f"OMOP table rows (cycles assembled: {assembled})" if src.format == "omop" else "registry rows"
    n_read = t["sources"].rows_in
    logs = {
        "sources": StageLog(n_read, n_read - len(q["sources"]), counts_by_rule(q["sources"]),
                            note=f"grain: {grain}; {src.describe()}"),
        "cycles": StageLog(t["cycles"].rows_in, t["cycles"].rows_out, counts_by_rule(q["cycles"])),
        "units": StageLog(t["units"].rows_in, t["units"].rows_out, counts_by_rule(q["units"]),
                          note="grain: count values (ANC, nadir, platelets) converted to 1e9/L"),
        "states": StageLog(t["states"].rows_in, t["states"].rows_out,
                           note="missing labs held forward, then the median"),
        "trajectories": StageLog(t["trajectories"].rows_in, t["trajectories"].rows_out),
        "outputs": StageLog(t["outputs"].rows_in, t["outputs"].rows_in,
                            note="written: trajectories, splits, cohort, quarantine"),
    }
    for stage in STAGES:
        run.runner.add(stage, logs[stage], t[stage].seconds)



__all__ = ["cohort_table", "per_episode", "record_stages", "write_tables"]
