"""FQE interval coverage, one FQE fit and refits per replication, against exact ICU-Sepsis values.

Run as `bench/ope_coverage.py --fqe-intervals [options]` (or this file directly); `--method tabular`
(the default) runs bench/ope_tabular_coverage.py instead, the rest of this docstring is `--method
neural`. Every replication
draws its own 2,000-episode clinician dataset split as `dosewise evaluate` splits one (70 / 15 / 15:
FQE is fitted on the 1,400 train episodes, the 300 test episodes are evaluated, validation is unused;
the simulator's episodes are independent, so the fit and test sets are drawn apart). Per target it
fits FQE once plus K refits on episode resamples of the fit set (`fqe.bootstrap_refits`), and checks
whether the exact value lies in

- the FQE interval around the main fit alone (`bootstrap_refits = 0`),
- the same widened by the refits' standard deviation, normal quantile (the previous default),
- the same widened by the refits' robust spread, 1.4826 x MAD with Student t (the shipped default,
  `widen_for_refits(refit_spread(...))`, the code `dosewise evaluate` runs),
- and the DR and WDR intervals around the main fit (not widened: a Q fitted on other episodes leaves
  them unbiased).

Goal: >= 90 % coverage of 95 % intervals. Targets whose probability leaves the clinicians' support
are not identified by the data (bench/ope_coverage.py prints their exact range): no interval of
theirs can be honest and the table says so instead of judging them.

    .venv/bin/python bench/ope_coverage.py --fqe-intervals [--replications 30] [--refits 5]
        [--fit-episodes 1400] [--episodes 300] [--fqe-steps 500] [--fqe-lr 0.001] [--fqe-interval 25]
        [--fqe-batch 512]
        [--learned-cache PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests/

from ope_coverage import estimator_terms, learned_table, outside_support  # bench/ is the script's own folder
from ope_tabular_coverage import run_tabular

from dosewise.data_schemas.console import print_table
from dosewise.models.ope.bootstrap import BootstrapResult, bootstrap_intervals, refit_spread, widen_for_refits
from dosewise.models.ope.config import FqeConfig
from dosewise.models.ope.fqe import fit_fqe_with_refits
from dosewise.pipelines import (
    exact_policy_value,
    load_icu_sepsis_mdp,
    optimal_policy,
    write_icu_sepsis_episodes,
)
from dosewise.pipelines.simulators.icu_sepsis_episodes import simulate_episodes
from tests.models.ope.tabular_policy import FEATURES, TabularPolicy

Q_ESTIMATORS = ("FQE", "DR", "WDR")
ONE, SD, ROBUST = "one fit", "+refits, sd (old)", "+refits, robust (default)"
BIAS = "+refits, robust + |median - fit| (tried)"


def q_tables(folder: Path, tables: dict[str, np.ndarray], fqe: FqeConfig, seed: int, refits: int,
             mdp) -> list[dict[str, np.ndarray]]:
    """[main fit, refit 1, ..., refit K] -> Q over every MDP state (716, 25) per target."""
    states = pd.DataFrame(mdp.state_features, columns=FEATURES)
    out: list[dict[str, np.ndarray]] = [{} for _ in range(refits + 1)]
    for name, table in tables.items():
        policy = TabularPolicy(name, table)
        fits = fit_fqe_with_refits(folder, lambda f, p=policy: p.action_probabilities(f), FEATURES, fqe,
                                   split="train", gamma=1.0, seed=seed, refits=refits)
        for k, fitted in enumerate(fits):
            q = fitted.q_values(states)
            q[list(mdp.terminal_states)] = 0.0
            out[k][name] = q
    return out


def _sd_widened(res: BootstrapResult, values: list[float]) -> tuple[float, float]:
    """The previous default: half-widths widened by z x the refits' standard deviation."""
    sd, z = float(np.std(values, ddof=1)), float(norm.ppf(0.975))
    return (res.value - np.hypot(max(res.value - res.ci_low, 0.0), z * sd),
            res.value + np.hypot(max(res.ci_high - res.value, 0.0), z * sd))


def cached_learned_table(mdp, cache: Path | None) -> np.ndarray:
    """The learned target's (716, 25) table, trained once and kept in `cache` when given."""
    if cache is not None and cache.is_file():
        return np.load(cache)
    table = learned_table(mdp)
    if cache is not None:
        np.save(cache, table)
    return table


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["tabular", "neural"], default="tabular",
                        help="tabular: the shipped `auto` on ICU-Sepsis (bench/ope_tabular_coverage.py).")
    parser.add_argument("--replications", type=int, default=30)
    parser.add_argument("--refits", type=int, default=None, help="default: 200 tabular, 5 neural")
    parser.add_argument("--fit-episodes", type=int, default=1400, help="FQE fit (train) episodes.")
    parser.add_argument("--episodes", type=int, default=300, help="Evaluated (test) episodes.")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--fqe-steps", type=int, default=500)
    parser.add_argument("--fqe-lr", type=float, default=1e-3)
    parser.add_argument("--fqe-interval", type=int, default=25, help="FQE target update interval.")
    parser.add_argument("--fqe-batch", type=int, default=512, help="FQE transitions per step.")
    parser.add_argument("--learned-cache", type=Path, default=None, help="npy file for the learned table.")
    parser.add_argument("--targets", nargs="+", default=["learned", "clinicians", "optimal"],
                        help="Which targets (learned, clinicians, optimal).")
    parser.add_argument("--first-replication", type=int, default=0,
                        help="Seed offset: replications first..first+N-1 (to split a run over processes).")
    parser.add_argument("--save", type=Path, default=None, help="Write this part's raw results (JSON).")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="Print the table of parts saved with --save instead of running.")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(f"cores: {os.cpu_count()}, load average (1 min): {os.getloadavg()[0]:.2f}", flush=True)
    mdp = load_icu_sepsis_mdp()
    tables = {"learned CQL (eps 0.01)": cached_learned_table(mdp, args.learned_cache),
              "clinicians": mdp.clinician_policy,
              "optimal (eps 0.1)": 0.9 * optimal_policy() + 0.1 / mdp.n_actions}
    tables = {name: table for name, table in tables.items() if name.split()[0] in args.targets}
    truth = {name: exact_policy_value(t, mdp) for name, t in tables.items()}
    outside = {name: outside_support(t, mdp.clinician_policy, mdp) for name, t in tables.items()}
    if args.method == "tabular":
        args.refits = FqeConfig().tabular_refits if args.refits is None else args.refits
        return run_tabular(args, tables, truth, outside, mdp)
    args.refits = FqeConfig().bootstrap_refits if args.refits is None else args.refits
    fqe = FqeConfig(n_steps=args.fqe_steps, learning_rate=args.fqe_lr, batch_size=args.fqe_batch,
                    target_update_interval=args.fqe_interval)
    hits: dict[tuple[str, str, str], list[bool]] = {}
    widths: dict[tuple[str, str, str], list[float]] = {}
    errors: dict[tuple[str, str], list[float]] = {}
    t0 = time.perf_counter()
    if args.merge:
        return merge(args, tables, truth, outside)
    for rep in range(args.first_replication, args.first_replication + args.replications):
        with tempfile.TemporaryDirectory() as tmp:
            write_icu_sepsis_episodes(Path(tmp), args.fit_episodes, seed=50_000 + rep, behaviour="clinician",
                                      split_fractions=(1.0, 0.0, 0.0))
            fits = q_tables(Path(tmp), tables, fqe, rep, args.refits, mdp)
        raw = simulate_episodes(args.episodes, mdp.clinician_policy, seed=rep, mdp=mdp)
        terms = {k: t for k, t in estimator_terms(raw, tables, fits[0]).items() if k[1] in Q_ESTIMATORS}
        results = bootstrap_intervals(terms, n_resamples=args.resamples, seed=rep, bca=False)
        refit_values = [{k: t.value() for k, t in estimator_terms(raw, tables, q).items() if k[1] == "FQE"}
                        for q in fits[1:]]
        for key, res in results.items():
            kinds = {ONE: (res.ci_low, res.ci_high)}
            if key[1] == "FQE" and args.refits >= 2:
                spread = [values[key] for values in refit_values]
                kinds[SD] = _sd_widened(res, spread)
                robust = widen_for_refits(res, refit_spread(spread), 0.95, len(spread))
                kinds[ROBUST] = (robust.ci_low, robust.ci_high)
                shift = abs(float(np.median(spread)) - res.value)  # the refits' bootstrap bias estimate
                kinds[BIAS] = (robust.ci_low - shift, robust.ci_high + shift)
            for kind, (low, high) in kinds.items():
                hits.setdefault((*key, kind), []).append(low <= truth[key[0]] <= high)
                widths.setdefault((*key, kind), []).append(high - low)
            errors.setdefault(key, []).append(abs(res.value - truth[key[0]]))
        print(f"replication {rep + 1}: {time.perf_counter() - t0:.0f} s", flush=True)
    print_coverage(args, tables, truth, outside, hits, widths, errors, time.perf_counter() - t0)
    if args.save is not None:
        args.save.write_text(json.dumps({"seconds": time.perf_counter() - t0, "hits": _flat(hits),
                                         "widths": _flat(widths), "errors": _flat(errors)}))


def _flat(table: dict) -> list:
    """JSON-ready [key, values] pairs (numpy bools and floats as Python ones)."""
    return [[list(key), [v.item() if hasattr(v, "item") else v for v in values]]
            for key, values in table.items()]


def merge(args: argparse.Namespace, tables, truth, outside) -> None:
    """The table over several saved parts (disjoint replication seeds)."""
    hits: dict = {}
    widths: dict = {}
    errors: dict = {}
    seconds = 0.0
    for path in args.merge:
        part = json.loads(path.read_text())
        seconds += part["seconds"]
        for name, into in (("hits", hits), ("widths", widths), ("errors", errors)):
            for key, values in part[name]:
                into.setdefault(tuple(key), []).extend(values)
    args.replications = len(next(iter(errors.values())))
    print_coverage(args, tables, truth, outside, hits, widths, errors, seconds)


def print_coverage(args, tables, truth, outside, hits, widths, errors, elapsed: float) -> None:
    """The coverage table, judged against the 90 % goal where the target's value is identified."""
    rows = []
    for name in tables:
        for est in Q_ESTIMATORS:
            for kind in (ONE, SD, ROBUST, BIAS):
                if (name, est, kind) not in hits:
                    continue
                cover = 100 * np.mean(hits[(name, est, kind)])
                goal = ("not identified (off support): cannot be honest" if outside[name] > 1e-6
                        else "yes" if cover >= 90 else f"NO ({90 - cover:.0f} points short)")
                width = widths[(name, est, kind)]
                rows.append((f"{name} [{100 * outside[name]:.0f} % out]", est, kind, f"{truth[name]:.4f}",
                             f"{np.mean(errors[(name, est)]):.4f}", f"{np.mean(width):.4f}",
                             f"{np.median(width):.4f}", f"{cover:.0f} %", goal))
    print_table(f"Coverage of 95 % intervals over {args.replications} replications (own FQE fits each): "
                f"{args.fit_episodes} fit + {args.episodes} test episodes, FQE {args.fqe_steps} steps lr "
                f"{args.fqe_lr:g} batch {args.fqe_batch} sync {args.fqe_interval}, {args.refits} refits, "
                f"{elapsed:.0f} s of replications (summed over processes)",
                ["target", "estimator", "interval", "exact", "mean |err|", "mean width", "median width",
                 "cover", ">= 90 %"], rows)


if __name__ == "__main__":
    run()
