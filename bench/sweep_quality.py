"""Policy quality on ICU-Sepsis from a sweep: exact survival of each trial, the OPE-selected one,
the selection regret and the rank correlation of the validation estimates with the exact values.

The data: clinician episodes simulated with a seed the tests do not use (7), 20,000 of them in the
train split (plus 5,000 validation and 5,000 test episodes). The sweep: pessimistic model-based
planning over `min_count` x `penalty` x `gamma` (12 trials), selected as `sweep_demo` selects: the
one-sided 95 % lower bound of tabular FQE fitted on the validation episodes themselves
(`fqe.fit_split = same`: independent of the train episodes the planner fitted; fitted on train it
would score the planner's own model, which is optimistic), with the WIS ESS floor. The validation OPE
also computes WIS, and a second table shows what selecting by each computed estimator would pick
(`--set selection.estimator=WIS` selects by WIS).
The behaviour model is fitted once for the whole sweep (`behaviour.cache_dir`, set by the sweep).
`--set` changes any sweep key. Goals (issue 17): selected >= 0.83, regret <= 0.005; clinicians 0.782,
optimum 0.875.

    .venv/bin/python bench/sweep_quality.py [--train-episodes 20000] [--seed 7] [--out DIR]
        [--set key=value ...]

With `--out DIR` the sweep folder is kept, and rerunning the same command resumes an interrupted
sweep (Tune's restore: finished trials are not retrained).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise.app.sweep import load_sweep_config, regret, run_sweep
from dosewise.app.sweep.selection import rank_correlation, select_winner
from dosewise.app.sweep.trial import pick_estimate, selection_ess, trial_dir
from dosewise.data_schemas.console import print_table
from dosewise.data_schemas.ope import OpeReport

SPACE = ('{"algorithm.min_count" = [10, 20, 40], "algorithm.penalty" = [0.0, 0.05], '
         '"algorithm.gamma" = [0.99, 1.0]}')
OPE = ("evaluate.settings={estimators = ['WIS', 'FQE'], n_bootstrap = 1000, "
       "fqe = {method = 'tabular', fit_split = 'same', tabular_refits = 200}}")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _by_estimator(outcome: Any, estimator: str, min_ess: float) -> tuple[str, ...]:
    """What selecting by `estimator`'s lower bound (same ESS floor) would pick, its regret, Spearman."""
    rows = []
    for row in outcome.rows:
        path = trial_dir(outcome.out, row.index) / "ope_validation" / "ope_report.json"
        if row.status != "finished" or not path.is_file():
            continue
        report = OpeReport.model_validate_json(path.read_text(encoding="utf-8"))
        item = pick_estimate(report, estimator)
        rows.append(type(row)(**{**row.as_dict(), "score": item.lower_bound_95, "estimate": item.value,
                                 "ess": selection_ess(report, item)}))
    winner = select_winner(rows, min_ess)
    return (estimator, str(winner.index) if winner else "-", _fmt(winner.exact if winner else None),
            _fmt(regret(rows, winner)), _fmt(rank_correlation(rows), 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-episodes", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7, help="data seed (the tests use others)")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="keep the sweep here (a rerun resumes it)")
    args = parser.parse_args()
    total = int(args.train_episodes * 1.5)  # 2/3 train, 1/6 validation, 1/6 test
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out.resolve() if args.out else Path(tmp) / "sweep"
        config = load_sweep_config("sweep_demo", [
            f"out={str(out)!r}", f"data.episodes={total}", f"data.seed={args.seed}",
            "data.split_fractions=[0.6667, 0.1667, 0.1666]", "train.config=pessimistic_mbp",
            "train.settings={}", f"search.space={SPACE}", "search.seeds=[0]", OPE, "selection.min_ess=100",
            *args.overrides,
        ])
        outcome = run_sweep(config, max_concurrent=args.max_concurrent, quiet=True)
        computed = [e for e in ("WIS", "WDR", "FQE") if e in config.evaluate.settings.get("estimators", [])]
        alternatives = [_by_estimator(outcome, e, config.selection.min_ess) for e in computed]
    wall, driver_cpu = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    winner = outcome.winner
    rows = [(str(r.index), r.label(), r.status, _fmt(r.estimate), _fmt(r.score), _fmt(r.ess, 0),
             _fmt(r.exact), f"{r.seconds:.0f}" if r.seconds is not None else "-",
             (r.behaviour_model or "-")[:14], "<- selected" if r is winner else "") for r in outcome.rows]
    print_table(f"ICU-Sepsis sweep, {args.train_episodes:,} train episodes (data seed {args.seed}), "
                f"selected by {config.selection.estimator} {config.selection.bound} on validation (ESS >= "
                f"{config.selection.min_ess:g})", ["trial", "settings", "status", "estimate", "lower bound",
                                                   "ESS", "exact", "trial s", "behaviour model", ""], rows)
    best = max((r.exact for r in outcome.rows if r.exact is not None), default=None)
    summary = [("selected exact", _fmt(winner.exact if winner else None), ">= 0.83"),
               ("best trial exact", _fmt(best), "-"),
               ("selection regret", _fmt(regret(outcome.rows, winner)), "<= 0.005"),
               ("Spearman(estimate, exact)", _fmt(outcome.rank_correlation, 2), "reported"),
               ("winner on test", outcome.test_summary or "-", "-"),
               ("wall s / Tune s", f"{wall:.0f} / {outcome.extra.get('tune_seconds', 0.0):.0f}", "-"),
               ("driver CPU s (trials run in Ray workers)",
                f"{driver_cpu.ru_utime + driver_cpu.ru_stime:.0f}", "-"),
               ("load average before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}", "2 cores")]
    print_table("Selection", ["what", "value", "goal"], summary)
    print_table("Selecting by each computed estimator's lower bound (same trials, same ESS floor)",
                ["estimator", "selected trial", "its exact", "regret", "Spearman(estimate, exact)"],
                alternatives)


if __name__ == "__main__":
    main()
