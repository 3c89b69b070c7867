"""Tabular FQE interval coverage against exact ICU-Sepsis values (the shipped `fqe.method = auto` there).

Run as `bench/ope_coverage.py --fqe-intervals` (the default `--method tabular`). Every replication
draws its own 2,000-episode clinician dataset as `dosewise evaluate` splits one: FQE is solved on
the 1,400 train episodes, the 300 test episodes are evaluated. Per target it runs the code
`dosewise evaluate` runs (`fit_tabular_fqe`: one closed-form solve plus `--refits` solves on episode
resamples; `refit_paired_interval`) and checks whether the exact value lies in

- "paired refits (default)": the shipped interval, each evaluated-episode resample paired with a refit,
- "one fit": the evaluated-episode bootstrap around the main solve alone (`fqe.tabular_refits = 0`),
- DR and WDR with the tabular Q as the control variate (not widened).

The table also gives each target's mean expected steps per episode on never-logged (state, action)
pairs and their share of its steps (`never-logged steps`: valued by the state's pooled transitions,
an assumption) and the share
of episodes reaching a state the fit data cannot value (`unknown`: the interval spans [0, 1] there).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ope_coverage import estimator_terms

from dosewise.data_schemas.console import print_table
from dosewise.models.ope.bootstrap import bootstrap_intervals, refit_paired_interval
from dosewise.models.ope.fqe_tabular import fit_tabular_fqe, tabular_transitions
from dosewise.pipelines.simulators.icu_sepsis_episodes import simulate_episodes

PAIRED, ONE = "paired refits (default)", "one fit"


def one_replication(rep: int, args: argparse.Namespace, tables: dict[str, np.ndarray],
                    truth: dict[str, float], mdp, rows: dict) -> None:
    """Append (target, estimator, interval) -> (covered, width, error, never-logged, unknown) for one rep."""
    fit = simulate_episodes(args.fit_episodes, mdp.clinician_policy, seed=50_000 + rep, mdp=mdp)
    test = simulate_episodes(args.episodes, mdp.clinician_policy, seed=rep, mdp=mdp)
    data = tabular_transitions(fit, fit["s"].to_numpy(np.int64), mdp.n_states, mdp.n_actions, "r", "a", "ep",
                               "term")
    starts = test.groupby("ep")["s"].first().to_numpy()
    test_states = test["s"].to_numpy(np.int64)
    fits = {name: fit_tabular_fqe(data, table, test_states, gamma=1.0, value_range=(0.0, 1.0),
                                  refits=args.refits, seed=rep) for name, table in tables.items()}
    terms = {k: t for k, t in estimator_terms(test, tables, {n: f.main.q for n, f in fits.items()}).items()
             if k[1] in ("FQE", "DR", "WDR")}
    plain = bootstrap_intervals(terms, n_resamples=args.resamples, seed=rep, bca=False)
    for name, tab in fits.items():
        main = tab.main
        paired = refit_paired_interval((float(main.v_low[starts].mean()), float(main.v_high[starts].mean())),
                                       tab.refit_low[:, starts], tab.refit_high[:, starts],
                                       n_resamples=args.resamples, seed=rep, confidence=0.95)
        support = (float(main.pooled_steps[starts].mean()), float((main.v_high - main.v_low)[starts].mean()),
                   float(main.pooled_steps[starts].mean() / max(main.steps[starts].mean(), 1e-12)))
        kinds = {(name, "FQE", PAIRED): paired, (name, "FQE", ONE): plain[(name, "FQE")],
                 (name, "DR", ONE): plain[(name, "DR")], (name, "WDR", ONE): plain[(name, "WDR")]}
        for key, res in kinds.items():
            covered = res.ci_low <= truth[name] <= res.ci_high
            rows.setdefault(key, []).append((covered, res.ci_high - res.ci_low, res.value - truth[name],
                                             *support))


def run_tabular(args: argparse.Namespace, tables: dict[str, np.ndarray], truth: dict[str, float],
                outside: dict[str, float], mdp) -> None:
    """The replications and the coverage table (>= 90 % goal)."""
    rows: dict = {}
    t0 = time.perf_counter()
    for rep in range(args.first_replication, args.first_replication + args.replications):
        one_replication(rep, args, tables, truth, mdp, rows)
        print(f"replication {rep + 1}: {time.perf_counter() - t0:.0f} s", flush=True)
    table = []
    for (name, est, kind), values in rows.items():
        columns = (np.array(v, dtype=np.float64) for v in zip(*values, strict=True))
        covered, width, error, never_logged, unknown, share = columns
        cover = 100 * covered.mean()
        table.append((f"{name} [{100 * outside[name]:.0f} % out]", est, kind, f"{truth[name]:.4f}",
                      str(len(covered)), f"{cover:.0f} %", f"{width.mean():.4f}", f"{error.mean():+.4f}",
                      f"{np.abs(error).mean():.4f}",
                      f"{never_logged.mean():.2f} ({100 * share.mean():.1f} %)",
                      f"{100 * unknown.mean():.1f} %",
                      "yes" if cover >= 90 else f"NO ({90 - cover:.0f} points short)"))
    print_table(f"Tabular FQE: coverage of 95 % intervals, {args.fit_episodes} fit + {args.episodes} test "
                f"episodes, {args.refits} refits, {args.resamples} resamples "
                f"({time.perf_counter() - t0:.0f} s)",
                ["target", "estimator", "interval", "exact", "reps", "cover", "mean width", "bias",
                 "mean |err|", "never-logged steps (share)", "unknown", ">= 90 %"], table)
