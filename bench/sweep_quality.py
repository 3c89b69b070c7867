"""Policy quality on ICU-Sepsis from a sweep: exact survival of each trial, the OPE-selected one,
the selection regret and the rank correlation of the validation estimates with the exact values.

The sweep is the shipped `sweep_mbp` (6 `pessimistic_mbp` trials: min_count {12, 15} x penalty
{0.025, 0.0375, 0.05} at gamma 1.0, chosen on ten design seeds), selected by the one-sided 95 % lower
bound of tabular FQE fitted on the validation episodes themselves (`fqe.fit_split = same`:
independent of the train episodes the planner fitted; fitted on train it would score the planner's
own model, which is optimistic), with the WIS ESS floor. The data: clinician episodes simulated with
`--seed` (the tests use seeds 0-11 and 21 at a few thousand episodes at most), 20,000 train +
10,000 validation + 5,000 test episodes by default. The validation OPE also computes WIS; a second
table shows what selecting by each computed estimator's lower bound or point estimate would pick
(`--set selection.estimator=WIS` selects by WIS). The behaviour model is fitted once for the whole
sweep (`behaviour.cache_dir`, set by the sweep). `--set` changes any sweep key (the 12-trial grid of
the earlier runs: `--set 'search.space={"algorithm.min_count" = [10, 20, 40], "algorithm.penalty" =
[0.0, 0.05], "algorithm.gamma" = [0.99, 1.0]}'`). Goals (issue 17): selected >= 0.83, regret <= 0.005;
clinicians 0.782, optimum 0.875. CPU: the driver's, and the trials' own (each Ray worker measures its
trial); Ray's GCS and raylet are in neither.

    .venv/bin/python bench/sweep_quality.py [--seed 7] [--train-episodes 20000]
        [--validation-episodes 10000] [--test-episodes 5000] [--out DIR] [--set key=value ...]

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

RULES = (("lower_bound_95", "lower bound"), ("value", "point estimate"))


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _by_estimator(outcome: Any, estimator: str, statistic: str, min_ess: float) -> tuple[str, ...]:
    """What selecting by `estimator`'s `statistic` (same ESS floor) would pick, its regret, Spearman."""
    rows = []
    for row in outcome.rows:
        path = trial_dir(outcome.out, row.index) / "ope_validation" / "ope_report.json"
        if row.status != "finished" or not path.is_file():
            continue
        report = OpeReport.model_validate_json(path.read_text(encoding="utf-8"))
        item = pick_estimate(report, estimator)
        rows.append(type(row)(**{**row.as_dict(), "score": getattr(item, statistic), "estimate": item.value,
                                 "ess": selection_ess(report, item)}))
    winner = select_winner(rows, min_ess)
    return (f"{estimator} {dict(RULES)[statistic]}", str(winner.index) if winner else "-",
            _fmt(winner.exact if winner else None), _fmt(regret(rows, winner)),
            _fmt(rank_correlation(rows), 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-episodes", type=int, default=20000)
    parser.add_argument("--validation-episodes", type=int, default=10000)
    parser.add_argument("--test-episodes", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7, help="data seed (the tests use others)")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="keep the sweep here (a rerun resumes it)")
    args = parser.parse_args()
    sizes = (args.train_episodes, args.validation_episodes, args.test_episodes)
    total = sum(sizes)
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out.resolve() if args.out else Path(tmp) / "sweep"
        config = load_sweep_config("sweep_mbp", [
            f"out={str(out)!r}", f"data.episodes={total}", f"data.seed={args.seed}",
            f"data.split_fractions={[n / total for n in sizes]}", *args.overrides,
        ])
        outcome = run_sweep(config, max_concurrent=args.max_concurrent, quiet=True)
        computed = [e for e in ("WIS", "WDR", "FQE") if e in config.evaluate.settings.get("estimators", [])]
        alternatives = [_by_estimator(outcome, e, rule, config.selection.min_ess)
                        for e in computed for rule, _ in RULES]
    wall, driver_cpu = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    winner = outcome.winner
    rows = [(str(r.index), r.label(), r.status, _fmt(r.estimate), _fmt(r.score), _fmt(r.ess, 0),
             _fmt(r.exact), f"{r.seconds:.0f}" if r.seconds is not None else "-",
             f"{r.cpu_seconds:.0f}" if r.cpu_seconds is not None else "-",
             (r.behaviour_model or "-")[:14], "<- selected" if r is winner else "") for r in outcome.rows]
    print_table(f"ICU-Sepsis sweep, {' + '.join(f'{n:,}' for n in sizes)} train + validation + test "
                f"episodes (data seed {args.seed}), "
                f"selected by {config.selection.estimator} {config.selection.bound} on validation (ESS >= "
                f"{config.selection.min_ess:g})",
                ["trial", "settings", "status", "estimate", "lower bound", "ESS", "exact", "trial s",
                 "trial CPU s", "behaviour model", ""], rows)
    best = max((r.exact for r in outcome.rows if r.exact is not None), default=None)
    summary = [("selected exact", _fmt(winner.exact if winner else None), ">= 0.83"),
               ("best trial exact", _fmt(best), "-"),
               ("selection regret", _fmt(regret(outcome.rows, winner)), "<= 0.005"),
               ("Spearman(estimate, exact)", _fmt(outcome.rank_correlation, 2), "reported"),
               ("winner on test", outcome.test_summary or "-", "-"),
               ("wall s / Tune s", f"{wall:.0f} / {outcome.extra.get('tune_seconds', 0.0):.0f}", "-"),
               ("CPU s: driver / trials (each Ray worker's own)",
                f"{driver_cpu.ru_utime + driver_cpu.ru_stime:.0f} / "
                f"{sum(r.cpu_seconds or 0.0 for r in outcome.rows):.0f}", "-"),
               ("load average before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}", "2 cores")]
    print_table("Selection", ["what", "value", "goal"], summary)
    print_table("Selecting by each computed estimator's lower bound or estimate (same trials, ESS floor)",
                ["rule", "selected trial", "its exact", "regret", "Spearman(estimate, exact)"],
                alternatives)


if __name__ == "__main__":
    main()
