"""OPE on the oncology simulator (doses and RDI bins): 95 % interval coverage and error vs MC truth.

Four targets: the clinicians' dose-modification policy (the behaviour policy itself), a learned
continuous policy (shipped `chemo_iql` config at a reduced step count, trained once on its own
cohort), "always full dose" (`constant:1.0`), and the demo's discrete policy on the RDI bins
(shipped `chemo_discrete_cql` config at its own step count, trained once on the same cohort).
Their true values come from `true_policy_value` (Monte Carlo on the known dynamics, no censoring,
common random numbers; SE shown). The learned continuous policy's recommended RDI is delivered the
way the clinicians deliver that RDI (`DeliveredAsClinicians`): that is what an estimate on the RDI
action values (RDI 0.75 is, in the records, mostly full dose a week late). Every replication
simulates a fresh cohort (seeds from --seed-base, never used by the tests), runs `etl chemo`, and
`evaluate_policy` (continuous mode: kernel-smoothed ratios against the logged behaviour density,
continuous FQE fitted on the train split, the test split evaluated) for the learned and the
full-dose policy; the clinicians' row comes from the full-dose run.

The discrete policy is evaluated in discrete mode, as `dosewise evaluate` does on these trajectories:
ratios of its epsilon-greedy bin probabilities (`OpeConfig.epsilon`, default 0.01) to the logged
`behaviour_prob` (the clinicians' exact probability of the logged RDI bin, which the ETL computes
from the simulator's known option probabilities; no fitted model), FQE over the bins. Its truth is
`BinDeliveredAsClinicians`: the bin drawn from the same epsilon-greedy probabilities, the dose and
delay drawn as the clinicians deliver an RDI in that bin in that state (the bin's estimand).

Goals: >= 90 % coverage for WIS and WDR, WDR mean absolute error <= 2 % of the value range (the
range of returns possible: the horizon reward minus every cycle's penalties). A diagnostic column
gives the coverage of the value *as recorded* (the same Monte Carlo with the simulator's loss to
follow-up switched on; a censored patient's outcome reward is unknown, so it is missing from the
logged return): the gap between the two is the censoring bias, not the estimator's.

    .venv/bin/python bench/chemo_ope_coverage.py [--replications 50] [--patients 2000]
        [--truth-patients 200000] [--fqe-steps 400] [--bandwidth-share 0.25]
        [--kernel-scale absolute|proportional] [--max-ratio R|none]
        [--dr-max-ratio R|none]
        [--work-dir DIR]
        [--evaluate full,learned,discrete] [--discrete-config chemo_discrete_cql]

`--evaluate` picks which targets a run evaluates (rows already in --work-dir are kept per
replication and target, so a later run with other targets adds theirs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chemo_common import RDI, chemo_trajectories, simulator_bin_policy, simulator_policy, train_chemo

from dosewise.data_schemas import RunManifest
from dosewise.data_schemas.console import print_table
from dosewise.models import OpeConfig, evaluate_policy, load_policy
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
ROLES = ("full", "learned", "discrete")  # the targets --evaluate can pick (the clinicians come with full)


def _value_range() -> float:
    """Range of returns possible under the ETL's default reward (outcome minus every penalty)."""
    reward = ChemoPipelineConfig().reward
    n_cycles = 6  # the simulated regimen's cycles (docetaxel, 6 x 21 days)
    per_cycle = reward.penalty_grade3 + reward.penalty_febrile_neutropenia
    return float(reward.outcome_reward + n_cycles * per_cycle)


@dataclass
class Targets:
    """The evaluated policies by role, and every target's true value (no censoring) and value as
    recorded (loss to follow-up on), by target name."""

    policies: dict[str, Any]
    truth: dict[str, PolicyValue]
    recorded: dict[str, float]
    modes: dict[str, str]  # target name -> OPE mode shown in the table


def _rows(report: Any, targets: set[str], rep: int, run: str) -> list[dict[str, object]]:
    """One row per (target, estimator) of `report` for the targets kept from this run."""
    return [{"rep": rep, "run": run, "target": e.target, "estimator": e.estimator, "value": e.value,
             "low": e.ci_low, "high": e.ci_high, "ess_share": e.ess_share}
            for e in report.estimates if e.estimator in ESTIMATORS and e.target in targets]


def _recorded_value(policy: CyclePolicy, n_patients: int, seed: int) -> float:
    """Mean return as the records give it: loss to follow-up on, a censored outcome missing."""
    cohort = simulate_cohort(policy, n_patients, seed)
    return float(cohort_returns(cohort, ChemoPipelineConfig().reward).mean())


def _train_data(args: argparse.Namespace, work: Path) -> Path:
    """The learned targets' own cohort (seed --seed-base - 1), simulated and ETL'd once per work dir."""
    path = work / f"trajectories_{args.seed_base - 1}"
    if not (path / "manifest.json").is_file():
        path = chemo_trajectories(work, max(2 * args.patients, 1000), args.seed_base - 1)
    return path


def _trained(train_data: Path, config: str, out: Path, steps: int | None, overrides: list[str]) -> Any:
    """A learned target, trained once on the training cohort and loaded from `out` after that."""
    if (out / "manifest.json").is_file():
        return load_policy(out)
    return train_chemo(train_data, config, out, steps, overrides=overrides)


def _truths(sims: dict[str, tuple[str, CyclePolicy]], n_patients: int, work: Path
            ) -> tuple[dict[str, PolicyValue], dict[str, float]]:
    """Monte-Carlo truth and value as recorded of each target (name -> (cache key, simulator
    policy)), cached in `work` by key for reruns."""
    cache = work / f"truth_{n_patients}.json"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    for key, policy in sims.values():
        if key not in cached:
            pv = true_policy_value(policy, n_patients, seed=1)
            cached[key] = [pv.value, pv.se, _recorded_value(policy, n_patients, seed=1)]
            cache.write_text(json.dumps(cached))
    truth = {name: PolicyValue(cached[key][0], cached[key][1], n_patients, np.zeros(0))
             for name, (key, _) in sims.items()}
    return truth, {name: float(cached[key][2]) for name, (key, _) in sims.items()}


def _setup(args: argparse.Namespace, work: Path, epsilon: float) -> Targets:
    """The evaluated targets (learned ones trained once) and their true values, cached in `work`."""
    train_data = _train_data(args, work)
    info = RunManifest.read(train_data).dataset
    if info is None:
        raise SystemExit(f"{train_data} has no dataset contract; delete --work-dir and rerun.")
    policies: dict[str, Any] = {}
    sims: dict[str, tuple[str, CyclePolicy]] = {}
    modes: dict[str, str] = {}
    if "full" in args.evaluate:
        policies["full"] = constant_policy("constant:1.0", info)
        sims["clinicians"] = ("clinicians", ClinicianPolicy())
        sims[policies["full"].name] = (policies["full"].name, ConstantPolicy(1.0))
        modes["clinicians"] = modes[policies["full"].name] = "continuous"
    if "learned" in args.evaluate:
        learned = _trained(train_data, args.learned_config, work / "learned", args.train_steps,
                           args.learned_set)
        policies["learned"] = learned
        sims[learned.name] = (learned.name, simulator_policy(learned, "as_clinicians"))
        modes[learned.name] = "continuous"
    if "discrete" in args.evaluate:
        discrete = _trained(train_data, args.discrete_config, work / "learned_discrete",
                            args.discrete_train_steps, args.discrete_set)
        edges = list(info.action_bin_edges[RDI])
        policies["discrete"] = discrete
        # the truth depends on the softening: it is part of the cache key
        sims[discrete.name] = (f"{discrete.name} bins epsilon={epsilon:g}",
                               simulator_bin_policy(discrete, edges, epsilon))
        modes[discrete.name] = f"discrete: RDI bins, edges {edges}"
    names = [p.name for p in policies.values()]
    if len(set(names)) < len(names):
        raise SystemExit(f"Two targets share a name ({names}); their rows could not be told apart. "
                         "Pick a --discrete-config and --learned-config of different algorithms.")
    truth, recorded = _truths(sims, args.truth_patients, work)
    return Targets(policies, truth, recorded, modes)


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--discrete-config", default="chemo_discrete_cql",
                        help="shipped train config of the discrete learned target (the demo's CHEMO_ALGO)")
    parser.add_argument("--discrete-train-steps", type=int, default=0,
                        help="training steps of the discrete target (0: the shipped config's n_steps)")
    parser.add_argument("--discrete-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the discrete target's train config (repeatable)")
    parser.add_argument("--evaluate", default=",".join(ROLES),
                        help=f"comma-separated targets to evaluate, of {', '.join(ROLES)} "
                        "(full brings the clinicians)")
    parser.add_argument("--bandwidth-share", type=float, default=0.25)
    parser.add_argument("--kernel-scale", choices=("absolute", "proportional"), default=None,
                        help="continuous.kernel_scale (default: the shipped value)")
    parser.add_argument("--max-weight", type=float, default=None,
                        help="clip every per-step importance ratio at this value (OpeConfig.max_weight)")
    parser.add_argument("--max-ratio", default=None,
                        help="clip of the continuous density ratios (continuous.max_ratio; 'none': "
                             "unclipped; default: the shipped value)")
    parser.add_argument("--dr-max-ratio", default=None,
                        help="clip of the continuous density ratios inside DR and WDR only "
                             "(continuous.dr_max_ratio; 'none': unclipped; default: the shipped value)")
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument("--seed-base", type=int, default=70_000)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep the learned policies, truth and per-replication rows here (resumable)")
    parser.add_argument("--table-only", action="store_true", help="print the table from --work-dir's rows")
    return parser


def _max_ratio(text: str | None, key: str = "max_ratio") -> dict[str, float | None]:
    """`continuous.<key>` from --max-ratio / --dr-max-ratio: unset keeps the shipped default, 'none'
    unclips."""
    if text is None:
        return {}
    return {key: None if text.lower() == "none" else float(text)}


def _ope_config(args: argparse.Namespace) -> OpeConfig:
    return OpeConfig.model_validate({
        "n_bootstrap": args.n_bootstrap, "bca": False, "estimators": list(ESTIMATORS),
        "continuous": {"bandwidth_share": args.bandwidth_share, **_max_ratio(args.max_ratio),
                       **({"kernel_scale": args.kernel_scale} if args.kernel_scale else {}),
                       **_max_ratio(args.dr_max_ratio, "dr_max_ratio")},
        "max_weight": args.max_weight,
        "fqe": {"n_steps": args.fqe_steps, "learning_rate": 1e-3,
                "target_update_interval": args.fqe_target_interval,
                "bootstrap_refits": args.fqe_refits}})


def _done(rows_file: Path, targets: Targets) -> set[tuple[int, str]]:
    """(replication, evaluated policy) pairs already in the rows file. Rows written before the
    `run` column came from the full-dose run (its own and the clinicians' rows) and the learned one."""
    if not rows_file.is_file():
        return set()
    frame = pd.read_csv(rows_file)
    if "run" not in frame:
        full = targets.policies["full"].name if "full" in targets.policies else "constant:1.0"
        frame["run"] = frame["target"].replace({"clinicians": full})
    return {(int(r), str(n)) for r, n in zip(frame["rep"], frame["run"], strict=True)}


def _replicate(args: argparse.Namespace, work: Path, targets: Targets, config: OpeConfig, started: float
               ) -> None:
    """Every replication's evaluations that the rows file lacks, appended to it as they finish."""
    rows_file = work / "rows.csv"
    done = _done(rows_file, targets)
    full = targets.policies["full"].name if "full" in targets.policies else None
    for rep in range(args.replications):
        todo = [p for p in targets.policies.values() if (rep, p.name) not in done]
        if not todo:
            continue
        data = chemo_trajectories(work, args.patients, args.seed_base + rep)
        rows: list[dict[str, object]] = []
        for policy in todo:
            report = evaluate_policy(data, policy, config, out_dir=work / f"ope_{rep}_{policy.name}",
                                     show_progress=False)
            keep = {policy.name, "clinicians"} if policy.name == full else {policy.name}
            rows += _rows(report, keep, rep, policy.name)
        frame = pd.DataFrame(rows)
        if rows_file.is_file():  # the columns in the file's order (an older file has no `run`)
            frame = frame.reindex(columns=pd.read_csv(rows_file, nrows=0).columns)
        frame.to_csv(rows_file, mode="a", header=not rows_file.is_file(), index=False)
        shutil.rmtree(work / f"records_{args.seed_base + rep}", ignore_errors=True)
        print(f"replication {rep + 1}/{args.replications} done ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr)


def main() -> None:
    args = _parser().parse_args()
    args.evaluate = [r.strip() for r in args.evaluate.split(",") if r.strip()]
    unknown = sorted(set(args.evaluate) - set(ROLES))
    if unknown or not args.evaluate:
        raise SystemExit(f"--evaluate takes a comma-separated subset of {', '.join(ROLES)}. "
                         f"Got {unknown or 'none'}.")
    started = time.perf_counter()
    config = _ope_config(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        targets = _setup(args, work, config.epsilon)
        if not args.table_only:
            _replicate(args, work, targets, config, started)
        rows_file = work / "rows.csv"
        if not rows_file.is_file():
            raise SystemExit(f"No rows in {work}: run without --table-only first (with this --work-dir).")
        frame = pd.read_csv(rows_file)
    _report(frame, targets, args, time.perf_counter() - started, config.epsilon)


def _report(frame: pd.DataFrame, targets: Targets, args: argparse.Namespace, seconds: float,
            epsilon: float) -> None:
    span = _value_range()
    clip, dr_clip = _ope_config(args).ratio_clip("continuous"), _ope_config(args).dr_ratio_clip("continuous")
    frame = frame[frame["target"].isin(targets.truth)].copy()  # the targets of this invocation
    # the truth of this run's --truth-patients (rows written with another keep their estimates)
    frame["truth"] = frame["target"].map({k: v.value for k, v in targets.truth.items()})
    frame["recorded"] = frame["target"].map(targets.recorded)
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
        pv = targets.truth[target]
        ess = part["ess_share"].mean() if "ess_share" in part else float("nan")
        ess_text = "-" if np.isnan(ess) else f"{100 * ess:.0f} %"
        table.append((target, targets.modes[target], name, str(part["rep"].nunique()),
                      f"{pv.value:.4f} ± {pv.se:.4f}", f"{part['value'].mean():.4f}",
                      f"{100 * coverage:.0f} %", f"{mae:.4f}", f"{100 * mae / span:.1f} %",
                      f"{(part['high'] - part['low']).mean():.4f}", ess_text,
                      goal or "-",
                      f"{part['recorded'].iloc[0]:.4f}", f"{100 * part['covered_recorded'].mean():.0f} %"))
    names = {role: p.name for role, p in targets.policies.items()}
    print_table(f"Chemo OPE coverage: {frame['rep'].nunique()} replications x {args.patients} patients "
                f"(test split {int(100 * 0.45)} %), truth from {args.truth_patients} patients, FQE "
                f"{args.fqe_steps} steps ({args.fqe_refits} refits), "
                f"bandwidth {args.bandwidth_share} x sd({RDI}) ({_ope_config(args).continuous.kernel_scale} "
                "kernel), continuous ratios clipped at "
                f"{clip or 'no value'} (inside DR and WDR at {dr_clip or 'no value'}), discrete targets "
                f"epsilon {epsilon:g}; "
                f"targets {names}; value range {span:.2f}; {seconds / 60:.1f} min "
                f"({time.process_time():.0f} CPU s) in this invocation",
                ["target", "OPE mode", "estimator", "replications", "true value ± SE", "mean estimate",
                 "95 % CI coverage", "MAE", "MAE / range", "mean CI width", "mean ESS share", "goal",
                 "value as recorded",
                 "coverage of it"], table)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
