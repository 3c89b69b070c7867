"""Policy quality on ICU-Sepsis from a sweep: exact survival of each trial, the OPE-selected one,
the selection regret and the rank correlation of the validation estimates with the exact values.

The data: clinician episodes simulated with a seed the tests do not use (7), 20,000 of them in the
train split (plus validation and test episodes). The sweep: pessimistic model-based planning over
`min_count` x `penalty` x `gamma` (seconds per trial), selected by the WIS one-sided 95 % lower
bound on validation with an ESS floor. `--set` changes any sweep key (e.g. a discrete CQL space).
Goals (issue 17): the selected policy >= 0.83, regret <= 0.005; clinicians 0.782, optimum 0.875.

    .venv/bin/python bench/sweep_quality.py [--train-episodes 20000] [--out DIR] [--set key=value ...]

With `--out DIR` the sweep folder is kept, and rerunning the same command resumes an interrupted
sweep (Tune's restore: finished trials are not retrained).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise.app.sweep import load_sweep_config, regret, run_sweep
from dosewise.data_schemas.console import print_table

SPACE = ('{"algorithm.min_count" = [10, 20, 40], "algorithm.penalty" = [0.0, 0.05], '
         '"algorithm.gamma" = [0.99, 1.0]}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-episodes", type=int, default=20000)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="keep the sweep here (a rerun resumes it)")
    args = parser.parse_args()
    total = int(args.train_episodes * 1.5)  # 2/3 train, 1/6 validation, 1/6 test
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out.resolve() if args.out else Path(tmp) / "sweep"
        config = load_sweep_config("sweep_demo", [
            f"out={str(out)!r}", f"data.episodes={total}", "data.seed=7",
            "data.split_fractions=[0.6667, 0.1667, 0.1666]", "train.config=pessimistic_mbp",
            "train.settings={}", f"search.space={SPACE}", "search.seeds=[0]",
            "evaluate.settings={estimators = ['WIS'], n_bootstrap = 1000}", "selection.min_ess=100",
            *args.overrides,
        ])
        outcome = run_sweep(config, max_concurrent=args.max_concurrent, quiet=True)
    winner = outcome.winner
    rows = [(str(r.index), r.label(), r.status, f"{r.estimate:.4f}" if r.estimate is not None else "-",
             f"{r.score:.4f}" if r.score is not None else "-", f"{r.ess:.0f}" if r.ess is not None else "-",
             f"{r.exact:.4f}" if r.exact is not None else "-", "<- selected" if r is winner else "")
            for r in outcome.rows]
    print_table(f"ICU-Sepsis sweep, {args.train_episodes:,} train episodes, selected by "
                f"{config.selection.estimator} {config.selection.bound} on validation (ESS >= "
                f"{config.selection.min_ess:g})", ["trial", "settings", "status", "estimate", "lower bound",
                                                   "ESS", "exact", ""], rows)
    best = max((r.exact for r in outcome.rows if r.exact is not None), default=None)
    loss = regret(outcome.rows, winner)
    chosen = f"{winner.exact:.4f}" if winner is not None and winner.exact is not None else "-"
    summary = [("selected exact", chosen, ">= 0.83"),
               ("best trial exact", f"{best:.4f}" if best is not None else "-", "-"),
               ("selection regret", f"{loss:.4f}" if loss is not None else "-", "<= 0.005"),
               ("Spearman(estimate, exact)", f"{outcome.rank_correlation:.2f}"
                if outcome.rank_correlation is not None else "-", "reported"),
               ("winner on test", outcome.test_summary or "-", "-")]
    print_table(f"Selection (load average {os.getloadavg()[0]:.0f} on 2 cores)", ["what", "value", "goal"],
                summary)


if __name__ == "__main__":
    main()
