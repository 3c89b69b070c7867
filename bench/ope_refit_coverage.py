"""FQE/DR/WDR interval coverage with and without FQE bootstrap refits, against exact ICU-Sepsis values.

`bench/ope_coverage.py` fits FQE once and keeps it for every replication, so it measures the
intervals around one Q-function. Here every replication draws its own FQE-fit episodes and its own
evaluation episodes (both under the clinicians' policy), fits FQE per target plus K refits on
episode resamples of the fit set (`fqe.bootstrap_refits`), and checks whether the exact value lies
in the FQE interval around the main fit alone and widened by the refits' spread, as `dosewise
evaluate` reports it, and in the DR and WDR intervals around the main fit (a Q fitted on other
episodes leaves them unbiased, so they are not widened). Goal: >= 90 % coverage of 95 % intervals.

    .venv/bin/python bench/ope_refit_coverage.py [--replications 20] [--refits 5] [--fit-episodes 2000]
        [--episodes 2000] [--fqe-steps 2000] [--fqe-lr 0.001] [--fqe-interval 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests/

from ope_coverage import estimator_terms, learned_table  # bench/ is the script's own folder

from dosewise.data_schemas.console import print_table
from dosewise.models.ope.bootstrap import bootstrap_intervals, widen_for_refits
from dosewise.models.ope.config import FqeConfig
from dosewise.models.ope.fqe import fit_fqe_with_refits
from dosewise.pipelines import exact_policy_value, load_icu_sepsis_mdp, write_icu_sepsis_episodes
from dosewise.pipelines.simulators.icu_sepsis_episodes import simulate_episodes
from tests.models.ope.tabular_policy import FEATURES, TabularPolicy

Q_ESTIMATORS = ("FQE", "DR", "WDR")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--refits", type=int, default=5)
    parser.add_argument("--fit-episodes", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=2000, help="Evaluation episodes per replication.")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--fqe-steps", type=int, default=2000)
    parser.add_argument("--fqe-lr", type=float, default=1e-3)
    parser.add_argument("--fqe-interval", type=int, default=50, help="FQE target update interval.")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average (1 min): {os.getloadavg()[0]:.2f}", flush=True)
    mdp = load_icu_sepsis_mdp()
    tables = {"learned CQL (eps 0.01)": learned_table(mdp), "clinicians": mdp.clinician_policy}
    truth = {name: exact_policy_value(t, mdp) for name, t in tables.items()}
    fqe = FqeConfig(n_steps=args.fqe_steps, learning_rate=args.fqe_lr,
                    target_update_interval=args.fqe_interval)
    hits: dict[tuple[str, str, str], list[bool]] = {}
    widths: dict[tuple[str, str, str], list[float]] = {}
    errors: dict[tuple[str, str], list[float]] = {}
    t0 = time.perf_counter()
    for rep in range(args.replications):
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
            kinds = [("one fit", res)]
            if key[1] == "FQE":
                spread = [values[key] for values in refit_values]
                sd = float(np.std(spread, ddof=1)) if len(spread) > 1 else 0.0
                kinds.append((f"+{args.refits} refits", widen_for_refits(res, sd, 0.95)))
            for kind, item in kinds:
                hits.setdefault((*key, kind), []).append(item.ci_low <= truth[key[0]] <= item.ci_high)
                widths.setdefault((*key, kind), []).append(item.ci_high - item.ci_low)
            errors.setdefault(key, []).append(abs(res.value - truth[key[0]]))
        print(f"replication {rep + 1}/{args.replications}: {time.perf_counter() - t0:.0f} s", flush=True)
    rows = [(name, est, kind, f"{truth[name]:.4f}", f"{np.mean(errors[(name, est)]):.4f}",
             f"{np.mean(widths[(name, est, kind)]):.4f}", f"{100 * np.mean(hits[(name, est, kind)]):.0f} %")
            for name in tables for est in Q_ESTIMATORS for kind in ("one fit", f"+{args.refits} refits")
            if (name, est, kind) in hits]
    print_table(f"Coverage of 95 % intervals over {args.replications} replications (own FQE fit each): "
                f"{args.fit_episodes} fit + {args.episodes} evaluation episodes, FQE {args.fqe_steps} steps "
                f"lr {args.fqe_lr:g}, {time.perf_counter() - t0:.0f} s",
                ["target", "estimator", "interval", "exact", "mean |err|", "mean width", "cover"], rows)


if __name__ == "__main__":
    main()
