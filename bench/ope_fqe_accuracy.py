"""FQE initial-state value error against exact ICU-Sepsis values, for several FQE settings.

Shows whether FQE's bias is a training problem (too few steps / target syncs) rather than a support
problem: the logging policy defaults to `epsilon:0.1` (every action has probability > 0).

    .venv/bin/python bench/ope_fqe_accuracy.py [--behaviour epsilon:0.1] [--episodes 20000]
        [--settings 5000/50/0.001,20000/200/0.001]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests/

from dosewise.data_schemas.console import print_table
from dosewise.models.ope.config import FqeConfig
from dosewise.models.ope.fqe import fit_fqe
from dosewise.pipelines import (
    exact_policy_value,
    load_icu_sepsis_mdp,
    optimal_policy,
    write_icu_sepsis_episodes,
)
from tests.models.ope.tabular_policy import FEATURES, TabularPolicy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--behaviour", default="epsilon:0.1")
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--settings", default="5000/50/0.001,20000/200/0.001",
                        help="Comma-separated n_steps/target_update_interval/learning_rate.")
    parser.add_argument("--targets", default="optimal,clinicians")
    args = parser.parse_args()
    mdp = load_icu_sepsis_mdp()
    all_targets = {"optimal": 0.9 * optimal_policy() + 0.1 / mdp.n_actions,
                   "clinicians": mdp.clinician_policy}
    states = pd.DataFrame(mdp.state_features, columns=FEATURES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_icu_sepsis_episodes(Path(tmp), args.episodes, seed=10_000, behaviour=args.behaviour,
                                  split_fractions=(1.0, 0.0, 0.0))
        for setting in args.settings.split(","):
            steps, interval, lr = setting.split("/")
            config = FqeConfig(n_steps=int(steps), target_update_interval=int(interval),
                               learning_rate=float(lr))
            for name in args.targets.split(","):
                table = all_targets[name]
                policy = TabularPolicy(name, table)
                t0 = time.perf_counter()
                fitted = fit_fqe(Path(tmp), lambda f, p=policy: p.action_probabilities(f), FEATURES, config,
                                 split="train", gamma=1.0, seed=0)
                q = fitted.q_values(states)
                q[list(mdp.terminal_states)] = 0.0
                v0, exact = float(mdp.initial @ (q * table).sum(axis=1)), exact_policy_value(table, mdp)
                rows.append((setting, name, f"{v0:.4f}", f"{exact:.4f}", f"{abs(v0 - exact):.4f}",
                             f"{time.perf_counter() - t0:.0f}"))
                print(rows[-1], flush=True)
    print_table(f"FQE V(s0) vs exact, behaviour {args.behaviour!r}, {args.episodes} episodes",
                ["steps/interval/lr", "target", "FQE V(s0)", "exact", "|error|", "fit s"], rows)


if __name__ == "__main__":
    main()
