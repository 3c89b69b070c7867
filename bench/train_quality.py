"""Training quality against a ground truth: DiscreteCQL on ICU-Sepsis clinician episodes.

Simulates N clinician episodes of the ICU-Sepsis MDP (PyPI `icu-sepsis`, estimated from real
MIMIC-III stays), trains DiscreteCQL on all of them (the shipped `discrete_cql` config, then with
the clinicians' observed-support mask and less conservatism) and the `pessimistic_mbp` planner
(the `dosewise train` default), and reports each policy's *exact*
survival probability (dynamic programming on the MDP matrices). For context the table also shows
what tabular methods reach on the very same episodes with the true state ids (the empirical MDP
solved with a minimum count per (state, action), with and without pessimism: the best an offline
method can hope for from this data), greedy on the *exact* clinician Q (an oracle), the clinicians
and the optimum. Goal from issue 5: >= 0.86 (clinicians 0.782, optimal 0.875).

    .venv/bin/python bench/train_quality.py [--episodes 20000] [--steps 20000] [--threads 1]
        [--set algorithm.alpha=0.5 ...] [--only bcq --only ensemble]

`--only WORD` (repeatable) trains only the learned variants whose label contains WORD (the
references are always shown). Besides DiscreteCQL and the planner, the variants are discrete BCQ at
two imitator thresholds (its own support restriction) and a 3-member Q ensemble of the shipped
DiscreteCQL config (targets from the ensemble minimum). `--only spibb` and `--only bootstrap` add
two more tabular references on the true state ids: SPIBB (Pi_b and Pi_<=b, Laroche et al. 2019) and
a bootstrap-ensemble lower bound of the empirical MDP's Q (mean - sd over resampled models).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dosewise.data_schemas import load_config, read_trajectories
from dosewise.data_schemas.console import print_table
from dosewise.models import TrainConfig, config_folder, load_policy, train_policy
from dosewise.pipelines.simulators.icu_sepsis import (
    FEATURE_NAMES,
    STATE_DEATH,
    STATE_SURVIVAL,
    exact_policy_value,
    exact_q_values,
    load_icu_sepsis_mdp,
    optimal_policy,
)
from dosewise.pipelines.simulators.icu_sepsis_episodes import write_icu_sepsis_episodes


def empirical_mdp(folder: Path, split: str | None = None) -> np.ndarray:
    """Transition counts n(s, a, s') of the episodes (episode ends go to the survival or death state),
    of one split's episodes where `split` is given."""
    mdp = load_icu_sepsis_mdp()
    frame, _ = read_trajectories(folder)
    if split is not None:
        splits = pd.read_parquet(folder / "splits.parquet")
        frame = frame[frame["episode_id"].isin(set(splits.loc[splits["split"] == split, "episode_id"]))]
    frame = frame.sort_values(["episode_id", "step"])
    s, a, r = frame["mdp_state"].to_numpy(), frame["action"].to_numpy(), frame["reward"].to_numpy()
    episode = frame["episode_id"].to_numpy()
    ends = np.r_[episode[1:] != episode[:-1], True]
    nxt = np.where(ends, np.where(r > 0, STATE_SURVIVAL, STATE_DEATH), np.roll(s, -1))
    counts = np.zeros((mdp.n_states, mdp.n_actions, mdp.n_states))
    np.add.at(counts, (s, a, nxt), 1)
    return counts


def _survival_backup(mdp: Any, values: np.ndarray) -> np.ndarray:
    """Terminal states keep their value: 1 in the survival state, 0 elsewhere."""
    values[list(mdp.terminal_states)] = 0.0
    values[STATE_SURVIVAL] = 1.0
    return values


def planned_q(counts: np.ndarray, allowed: np.ndarray, penalty: float) -> np.ndarray:
    """Q of the empirical MDP (undiscounted survival) over `allowed` pairs, minus penalty / sqrt(n)."""
    mdp = load_icu_sepsis_mdp()
    n = counts.sum(axis=2)
    p = counts / np.maximum(n, 1)[..., None]
    values = _survival_backup(mdp, np.zeros(mdp.n_states))
    q = np.zeros_like(n)
    for _ in range(300):
        q = np.where(allowed, p @ values - penalty / np.sqrt(np.maximum(n, 1)), -1.0)
        values = _survival_backup(mdp, q.max(axis=1))
    return q


def tabular_reference(counts: np.ndarray, min_count: int, penalty: float) -> float:
    """Exact value of the greedy policy of the empirical MDP (value iteration on counts), using
    only (state, action) pairs seen >= `min_count` times, with a c/sqrt(n) pessimism penalty."""
    mdp = load_icu_sepsis_mdp()
    q = planned_q(counts, counts.sum(axis=2) >= min_count, penalty)
    return exact_policy_value(np.eye(mdp.n_actions)[q.argmax(axis=1)], mdp)


def spibb_reference(counts: np.ndarray, n_wedge: int, soft: bool) -> float:
    """Exact value of SPIBB (Laroche, Trichelair & Tachet des Combes 2019) on the empirical MDP.

    Policy iteration from the clinicians' empirical policy pi_b: pairs seen < `n_wedge` times are
    bootstrapped. Pi_b-SPIBB (`soft=False`) gives them pi_b's probability; Pi_<=b-SPIBB (`soft=True`)
    keeps that probability only where they beat the best non-bootstrapped action and gives them
    none otherwise. The rest of the state's mass goes to the best non-bootstrapped action by Q."""
    mdp = load_icu_sepsis_mdp()
    n = counts.sum(axis=2)
    p = counts / np.maximum(n, 1)[..., None]
    pi_b = np.where(n.sum(1, keepdims=True) > 0, n / np.maximum(n.sum(1, keepdims=True), 1), 1.0 / n.shape[1])
    bootstrapped, rows = n < n_wedge, np.arange(n.shape[0])
    free_rows = (~bootstrapped).any(axis=1)
    pi = pi_b.copy()
    for _ in range(60):
        values = _survival_backup(mdp, np.zeros(mdp.n_states))
        for _ in range(300):
            values = _survival_backup(mdp, (pi * (p @ values)).sum(axis=1))
        q = p @ values
        best = np.where(bootstrapped, -np.inf, q).argmax(axis=1)
        keep = bootstrapped & (q > q[rows, best][:, None]) if soft else bootstrapped
        new = np.where(keep, pi_b, 0.0)
        new[rows[free_rows], best[free_rows]] += 1.0 - new[free_rows].sum(axis=1)
        new[~free_rows] = pi_b[~free_rows]
        if np.allclose(new, pi):
            break
        pi = new
    return exact_policy_value(pi, mdp)


def bootstrap_lcb_reference(counts: np.ndarray, min_count: int, penalty: float, k: float, seed: int,
                            n_models: int = 20) -> float:
    """Exact value of the greedy policy of mean - k x sd of Q over `n_models` resampled empirical
    MDPs (each count n(s, a, s') redrawn from Poisson(n), as a bootstrap of the transitions)."""
    mdp = load_icu_sepsis_mdp()
    allowed, rng = counts.sum(axis=2) >= min_count, np.random.default_rng(seed)
    qs = np.stack([planned_q(rng.poisson(counts).astype(np.float64), allowed, penalty)
                   for _ in range(n_models)])
    q = np.where(allowed, qs.mean(axis=0) - k * qs.std(axis=0), -np.inf)
    return exact_policy_value(np.eye(mdp.n_actions)[q.argmax(axis=1)], mdp)


def policy_value(policy_dir: Path) -> float:
    """Exact survival probability of a saved policy's greedy (masked) actions."""
    mdp = load_icu_sepsis_mdp()
    states = pd.DataFrame(mdp.state_features[mdp.non_terminal], columns=list(FEATURE_NAMES))
    return exact_policy_value(load_policy(policy_dir).action_probabilities(states, 0.0), mdp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=None, help="default: the shipped config's n_steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--only", action="append", default=[], help="only variants whose label has this")
    args = parser.parse_args()
    overrides = [f"threads={args.threads}", f"device='{args.device}'", "compile=true", *args.overrides]
    if args.steps:
        overrides.append(f"n_steps={args.steps}")
    mdp = load_icu_sepsis_mdp()
    rows = [("clinicians (behaviour)", f"{exact_policy_value(mdp.clinician_policy, mdp):.4f}", "-"),
            ("optimal (knows the MDP)", f"{exact_policy_value(optimal_policy(mdp), mdp):.4f}", "-")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "episodes"
        write_icu_sepsis_episodes(folder, args.episodes, "clinician", seed=0, split_fractions=(1.0, 0.0, 0.0))
        counts = empirical_mdp(folder)  # read once: every tabular reference plans on the same counts
        for min_count, penalty in ((1, 0.0), (10, 0.0), (20, 0.0), (10, 0.1), (1, 0.3)):
            label = f"tabular empirical MDP (n>={min_count}, c={penalty})"
            rows.append((label, f"{tabular_reference(counts, min_count, penalty):.4f}", "-"))
        if any(w.lower() in "spibb" for w in args.only):
            for n_wedge, soft in ((15, False), (20, False), (15, True), (20, True)):
                label = f"SPIBB {'Pi_<=b' if soft else 'Pi_b'} (N_wedge {n_wedge}), empirical MDP"
                rows.append((label, f"{spibb_reference(counts, n_wedge, soft):.4f}", "-"))
        if any(w.lower() in "bootstrap" for w in args.only):
            for min_count, penalty, k, seed in ((15, 0.0, 1.0, 0), (15, 0.0, 1.0, 1), (15, 0.025, 1.0, 0),
                                                (20, 0.0, 1.0, 0)):
                label = (f"bootstrap LCB (n>={min_count}, c={penalty}, mean - {k:g} sd of 20 resampled "
                         f"MDPs, draw seed {seed})")
                value = bootstrap_lcb_reference(counts, min_count, penalty, k, seed)
                rows.append((label, f"{value:.4f}", "-"))
        greedy = exact_q_values(mdp.clinician_policy, mdp).argmax(axis=1)
        rows.append(("oracle: greedy on the exact clinician Q",
                     f"{exact_policy_value(np.eye(mdp.n_actions)[greedy], mdp):.4f}", "-"))
        support = {"mask.source": "'observed_support'", "mask.min_count": "20"}
        variants: dict[str, tuple[str, dict[str, str]]] = {
            "DiscreteCQL, shipped config (alpha 0.05, support mask n>=20)": ("discrete_cql", {}),
            "DiscreteCQL, alpha 1, no mask (earlier default)":
                ("discrete_cql", {"algorithm.alpha": "1.0", "mask.source": "'none'", "mask.min_count": "1"}),
            "DiscreteCQL, alpha 0, support mask n>=20":
                ("discrete_cql", {"algorithm.alpha": "0.0", **support}),
            "DiscreteCQL ensemble of 3 (n_critics 3), shipped config":
                ("discrete_cql", {"algorithm.n_critics": "3"}),
            "DiscreteBCQ threshold 0.3 (shipped discrete_bcq)": ("discrete_bcq", {}),
            "DiscreteBCQ threshold 0.5": ("discrete_bcq", {"algorithm.action_flexibility": "0.5"}),
        }
        chosen = {k: v for k, v in variants.items()
                  if not args.only or any(w.lower() in k.lower() for w in args.only)}
        if not args.only or any(w.lower() in "pessimistic_mbp planner" for w in args.only):
            planner = load_config("pessimistic_mbp", TrainConfig, [f"threads={args.threads}"],
                                  search=[config_folder()])
            start = time.perf_counter()
            result = train_policy(folder, planner, out_dir=Path(tmp) / "mbp", show_progress=False)
            rows.append(("pessimistic_mbp (`dosewise train` default: n>=20, no penalty)",
                         f"{policy_value(result.policy_dir):.4f}", f"{time.perf_counter() - start:.0f}s"))
        for label, (name, change) in chosen.items():
            cfg = load_config(name, TrainConfig, overrides + [f"{k}={v}" for k, v in change.items()],
                              search=[config_folder()])
            start = time.perf_counter()
            result = train_policy(folder, cfg, out_dir=Path(tmp) / f"run_{len(rows)}", show_progress=False)
            seconds = time.perf_counter() - start
            rows.append((f"{label}, {cfg.n_steps} steps", f"{policy_value(result.policy_dir):.4f}",
                         f"{seconds:.0f}s"))
    print_table(f"Exact survival probability, ICU-Sepsis, trained on {args.episodes:,} clinician episodes, "
                f"goal (issue 17): default >= 0.80; load average {os.getloadavg()[0]:.0f}",
                ["policy", "survival", "train time"], rows)


if __name__ == "__main__":
    main()
