"""Continuous-action OPE on the oncology simulator: 95 % interval coverage and error vs MC truth.

Three targets: the clinicians' dose-modification policy (the behaviour policy itself), a learned
policy (shipped `chemo_iql` config at a reduced step count, trained once on its own cohort) and
"always full dose" (`constant:1.0`). Their true values come from `true_policy_value` (Monte Carlo
on the known dynamics, no censoring, common random numbers; SE shown). The learned policy's
recommended RDI is delivered the way the clinicians deliver that RDI (`DeliveredAsClinicians`):
that is what an estimate on the RDI action values (RDI 0.75 is, in the records, mostly full dose a
week late). Every replication simulates a fresh cohort (seeds from --seed-base, never used by the
tests), runs `etl chemo`, and `evaluate_policy` (continuous mode: kernel-smoothed ratios against
the logged behaviour density, continuous FQE fitted on the train split, the test split evaluated)
for the learned and the full-dose policy; the clinicians' row comes from the full-dose run.

Goals: >= 90 % coverage for WIS and WDR, WDR mean absolute error <= 2 % of the value range (the
range of returns possible: the horizon reward minus every cycle's penalties). A diagnostic column
gives the coverage of the value *as recorded* (the same Monte Carlo with the simulator's loss to
follow-up switched on; a censored patient's outcome reward is unknown, so it is missing from the
logged return): the gap between the two is the censoring bias, not the estimator's.

    .venv/bin/python bench/chemo_ope_coverage.py [--replications 50] [--patients 2000]
        [--truth-patients 200000] [--fqe-steps 400] [--bandwidth-share 0.25] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chemo_common import RDI, chemo_trajectories, simulator_policy, train_chemo

from dosewise.data_schemas import RunManifest
from dosewise.data_schemas.console import print_table
from dosewise.models import OpeConfig, evaluate_policy
from dosewise.models.constant_policy import constant_policy
from dosewise.pipelines import (
    ChemoPipelineConfig,
    ClinicianPolicy,
    ConstantPolicy,
    CyclePolicy,
    PolicyValue,
    simulate_cohort,
    true_policy_value,
)
from dosewise.pipelines.simulators.oncology_truth import cohort_returns

ESTIMATORS = ("IS", "WIS", "PDWIS", "DR", "WDR", "FQE")


def _value_range() -> float:
    """Range of returns possible under the ETL's default reward (outcome minus every penalty)."""
    reward = ChemoPipelineConfig().reward
    n_cycles = 6  # the simulated regimen's cycles (docetaxel, 6 x 21 days)
    return reward.outcome_reward + n_cycles * (reward.penalty_grade3 + reward.penalty_febrile_neutropenia)


def _rows(report: object, truth: dict[str, tuple[float, float]], rep: int) -> list[dict[str, object]]:
    rows = []
    for e in report.estimates:  # type: ignore[attr-defined]
        if e.estimator in ESTIMATORS and e.target in truth:
            rows.append({"rep": rep, "target": e.target, "estimator": e.estimator, "value": e.value,
                         "low": e.ci_low, "high": e.ci_high, "truth": truth[e.target][0],
                         "recorded": truth[e.target][1]})
    return rows


def _recorded_value(policy: CyclePolicy, n_patients: int, seed: int) -> float:
    """Mean return as the records give it: loss to follow-up on, a censored outcome missing."""
    cohort = simulate_cohort(policy, n_patients, seed)
    return float(cohort_returns(cohort, ChemoPipelineConfig().reward).mean())


def _setup(args: argparse.Namespace, work: Path
           ) -> tuple[object, object, dict[str, object], dict[str, float]]:
    """The learned policy (trained once), the three true values and the values as recorded,
    cached in `work` for reruns."""
    from dosewise.models import load_policy

    learned_dir = work / "learned"
    train_data = work / f"trajectories_{args.seed_base - 1}"
    if not (learned_dir / "manifest.json").is_file():
        train_data = chemo_trajectories(work, max(2 * args.patients, 1000), args.seed_base - 1)
        learned = train_chemo(train_data, args.learned_config, learned_dir, args.train_steps,
                              overrides=args.learned_set)
    else:
        learned = load_policy(learned_dir)
    info = RunManifest.read(train_data).dataset
    if info is None:
        raise SystemExit(f"{train_data} has no dataset contract; delete --work-dir and rerun.")
    full = constant_policy("constant:1.0", info)
    cache = work / f"truth_{args.truth_patients}.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
    else:
        sims: dict[str, CyclePolicy] = {"clinicians": ClinicianPolicy(), full.name: ConstantPolicy(1.0),
                                        learned.name: simulator_policy(learned, "as_clinicians")}
        cached = {}
        for name, pol in sims.items():
            pv = true_policy_value(pol, args.truth_patients, seed=1)
            cached[name] = [pv.value, pv.se, _recorded_value(pol, args.truth_patients, seed=1)]
        cache.write_text(json.dumps(cached))
    truth = {k: PolicyValue(v[0], v[1], args.truth_patients, np.zeros(0)) for k, v in cached.items()}
    recorded = {k: float(v[2]) for k, v in cached.items()}
    return learned, full, truth, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--truth-patients", type=int, default=200000)
    parser.add_argument("--fqe-steps", type=int, default=400)
    parser.add_argument("--fqe-target-interval", type=int, default=50,
                        help="steps between FQE target syncs (>= 6 syncs for the 6-cycle horizon)")
    parser.add_argument("--fqe-refits", type=int, default=0, help="FQE bootstrap refits (DR/WDR need none)")
    parser.add_argument("--train-steps", type=int, default=1000, help="training steps of the learned target")
    parser.add_argument("--learned-config", default="chemo_iql",
                        help="shipped train config of the learned target")
    parser.add_argument("--learned-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the learned target's train config (repeatable)")
    parser.add_argument("--bandwidth-share", type=float, default=0.25)
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument("--seed-base", type=int, default=70_000)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep the learned policy, truth and per-replication rows here (resumable)")
    parser.add_argument("--table-only", action="store_true", help="print the table from --work-dir's rows")
    args = parser.parse_args()
    started = time.perf_counter()
    config = OpeConfig.model_validate({
        "n_bootstrap": args.n_bootstrap, "bca": False, "estimators": list(ESTIMATORS),
        "continuous": {"bandwidth_share": args.bandwidth_share},
        "fqe": {"n_steps": args.fqe_steps, "learning_rate": 1e-3,
                "target_update_interval": args.fqe_target_interval,
                "bootstrap_refits": args.fqe_refits}})
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        learned, full, truth, recorded = _setup(args, work)
        truth_values = {k: (v.value, recorded[k]) for k, v in truth.items()}  # type: ignore[attr-defined]
        rows_file = work / "rows.csv"
        done = pd.read_csv(rows_file)["rep"].unique().tolist() if rows_file.is_file() else []
        for rep in range(args.replications if not args.table_only else 0):
            if rep in done:
                continue
            data = chemo_trajectories(work, args.patients, args.seed_base + rep)
            rows: list[dict[str, object]] = []
            for policy in (full, learned):
                report = evaluate_policy(data, policy, config, out_dir=work / f"ope_{rep}_{policy.name}",
                                         show_progress=False)
                keep = {k: v for k, v in truth_values.items() if k != "clinicians" or policy is full}
                rows += _rows(report, keep, rep)
            pd.DataFrame(rows).to_csv(rows_file, mode="a", header=not rows_file.is_file(), index=False)
            shutil.rmtree(work / f"records_{args.seed_base + rep}", ignore_errors=True)
            print(f"replication {rep + 1}/{args.replications} done ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr)
        frame = pd.read_csv(rows_file)
    _report(frame, truth, recorded, args, time.perf_counter() - started, learned.name, RDI)  # type: ignore[attr-defined]


def _report(frame: pd.DataFrame, truth: dict[str, object], recorded: dict[str, float],
            args: argparse.Namespace, seconds: float, learned: str, dose: str) -> None:
    span = _value_range()
    # the truth of this run's --truth-patients (rows written with another keep their estimates)
    frame["truth"] = frame["target"].map({k: v.value for k, v in truth.items()})  # type: ignore[attr-defined]
    frame["recorded"] = frame["target"].map(recorded)
    frame["covered"] = (frame["low"] <= frame["truth"]) & (frame["truth"] <= frame["high"])
    frame["abs_error"] = (frame["value"] - frame["truth"]).abs()
    frame["covered_recorded"] = (frame["low"] <= frame["recorded"]) & (frame["recorded"] <= frame["high"])
    table = []
    for (target, name), part in frame.groupby(["target", "estimator"], sort=False):
        coverage = float(part["covered"].mean())
        mae = float(part["abs_error"].mean())
        goal = ""
        if name in ("WIS", "WDR"):
            goal = "met" if coverage >= 0.9 else "NOT met"
        if name == "WDR":
            goal += ", error " + ("met" if mae <= 0.02 * span else "NOT met")
        pv = truth[target]
        table.append((target, name, f"{pv.value:.4f} ± {pv.se:.4f}", f"{part['value'].mean():.4f}",  # type: ignore[attr-defined]
                      f"{100 * coverage:.0f} %", f"{mae:.4f}", f"{100 * mae / span:.1f} %",
                      f"{(part['high'] - part['low']).mean():.4f}", goal or "-",
                      f"{part['recorded'].iloc[0]:.4f}", f"{100 * part['covered_recorded'].mean():.0f} %"))
    print_table(f"Chemo OPE coverage: {frame['rep'].nunique()} replications x {args.patients} patients "
                f"(test split {int(100 * 0.45)} %), truth from {args.truth_patients} patients, FQE "
                f"{args.fqe_steps} steps ({args.fqe_refits} refits), "
                f"bandwidth {args.bandwidth_share} x sd({dose}); "
                f"learned = {learned}; value range {span:.2f}; {seconds / 60:.1f} min "
                f"({time.process_time():.0f} CPU s) in this invocation",
                ["target", "estimator", "true value ± SE", "mean estimate", "95 % CI coverage", "MAE",
                 "MAE / range", "mean CI width", "goal", "value as recorded", "coverage of it"], table)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
