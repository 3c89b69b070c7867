"""OPE accuracy against exact ICU-Sepsis values: interval coverage over replications, WDR error.

For each target policy (optimal softened to ε = 0.1, a learned DiscreteCQL policy softened to
ε = 0.01 as `dosewise evaluate` does, uniform random, the clinicians'), the exact value comes from
the MDP matrices. The learned policy is trained on its own 20,000 clinician episodes. FQE is fitted
once per target on an independent set of
episodes (cross-fitting); every replication then draws a fresh evaluation set (full scale:
20,000 episodes) under the logging policy (known behaviour probabilities) and computes all seven
estimators and the support bounds with episode-bootstrap intervals. Goals: >= 90 % coverage of 95 %
intervals; WDR absolute error <= 0.01 at 20,000 episodes.

    .venv/bin/python bench/ope_coverage.py [--behaviour clinician|epsilon:E] [--replications 50]
        [--episodes 20000] [--fqe-steps N --fqe-lr LR] (default: the shipped FQE settings)
    .venv/bin/python bench/ope_coverage.py --fqe-intervals [...]   # FQE intervals with refits:
        every replication fits its own FQE and refits; --method tabular (default, the shipped
        `fqe.method = auto` on ICU-Sepsis: bench/ope_tabular_coverage.py) or neural
        (bench/ope_refit_coverage.py)

Each target's probability mass outside the behaviour support (the mean over visited states, weighted
by the target's own state visitation, of target probability on actions the behaviour never takes) is
reported next to its rows, with the exact range of values the logged data allow
(`support_value_bounds`: the same MDP except where the behaviour never acts). Where that range is
wider than 0.02 no estimator can be within 0.01 of the truth in every MDP that logs the same data,
so the WDR goal is marked "not identified" there. "WDR exact Q" is WDR with the MDP's exact
Q-function as the control variate: the error no better FQE could remove (an oracle: for targets
outside the support it also knows what the unseen actions do). The "bounds" rows are the report's
support bounds ([lower bound's CI low, upper bound's CI high]); their coverage is of the true value.
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

from dosewise.data_schemas import load_config
from dosewise.data_schemas.console import print_table
from dosewise.models import TrainConfig, config_folder, load_policy, train_policy
from dosewise.models.ope.bootstrap import bootstrap_intervals
from dosewise.models.ope.bounds import support_bound_terms
from dosewise.models.ope.config import FqeConfig
from dosewise.models.ope.doubly_robust import direct_method_terms, dr_terms, wdr_terms
from dosewise.models.ope.episodes import episode_layout
from dosewise.models.ope.fqe import fit_fqe
from dosewise.models.ope.importance_sampling import (
    importance_weights,
    is_terms,
    pdis_terms,
    pdwis_terms,
    wis_terms,
)
from dosewise.pipelines import (
    behaviour_policy_matrix,
    exact_policy_value,
    exact_q_values,
    load_icu_sepsis_mdp,
    optimal_policy,
    support_value_bounds,
    write_icu_sepsis_episodes,
)
from dosewise.pipelines.simulators.icu_sepsis_episodes import simulate_episodes
from tests.models.ope.tabular_policy import FEATURES, TabularPolicy

ESTIMATORS = ("IS", "WIS", "PDIS", "PDWIS", "DR", "WDR", "FQE")
ORACLE = "WDR exact Q"  # WDR with the MDP's exact Q-function: what a perfect FQE would give


LEARNED = ("algorithm.alpha=0.1", "mask.source='observed_support'", "mask.min_count=20", "threads=1",
           "device='cpu'")


def learned_table(mdp, episodes: int = 20000) -> np.ndarray:
    """A DiscreteCQL policy (shipped config, alpha 0.1, clinicians' support mask) trained on its own
    clinician episodes, as a (716, 25) table of its epsilon = 0.01 probabilities."""
    config = load_config("discrete_cql", TrainConfig, list(LEARNED), search=[config_folder()])
    with tempfile.TemporaryDirectory() as tmp:
        write_icu_sepsis_episodes(Path(tmp) / "data", episodes, seed=777, behaviour="clinician",
                                  split_fractions=(1.0, 0.0, 0.0))
        t0 = time.perf_counter()
        result = train_policy(Path(tmp) / "data", config, out_dir=Path(tmp) / "policy", show_progress=False)
        policy = load_policy(result.policy_dir)
        table = policy.action_probabilities(pd.DataFrame(mdp.state_features, columns=FEATURES), 0.01)
    print(f"learned policy: {config.n_steps} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    return np.asarray(table, dtype=np.float64)


def targets(mdp) -> dict[str, np.ndarray]:
    return {
        "optimal (eps 0.1)": 0.9 * optimal_policy() + 0.1 / mdp.n_actions,
        "learned CQL (eps 0.01)": learned_table(mdp),
        "random": np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions),
        "clinicians": mdp.clinician_policy,
    }


def outside_support(target: np.ndarray, behaviour: np.ndarray, mdp, horizon: int = 200) -> float:
    """Expected share, per step of the target's own trajectories, of target mass on zero-behaviour actions."""
    outside = (target * (behaviour <= 0.0)).sum(axis=1)
    terminal = np.zeros(mdp.n_states, bool)
    terminal[list(mdp.terminal_states)] = True
    step = np.einsum("sa,sat->st", target, mdp.transitions)
    d, mass, steps = mdp.initial.astype(float).copy(), 0.0, 0.0
    for _ in range(horizon):
        d = np.where(terminal, 0.0, d)
        if d.sum() < 1e-9:
            break
        mass += float(d @ outside)
        steps += float(d.sum())
        d = d @ step
    return mass / steps


def fitted_q_tables(
    tables: dict[str, np.ndarray], episodes: int, fqe: FqeConfig, seed: int, behaviour: str = "clinician",
) -> dict[str, np.ndarray]:
    """FQE per target on `episodes` independent episodes -> Q over every MDP state (716, 25)."""
    mdp = load_icu_sepsis_mdp()
    states = pd.DataFrame(mdp.state_features, columns=FEATURES)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_icu_sepsis_episodes(Path(tmp), episodes, seed=10_000 + seed, behaviour=behaviour,
                                  split_fractions=(1.0, 0.0, 0.0))
        for name, table in tables.items():
            policy = TabularPolicy(name, table)
            t0 = time.perf_counter()
            fitted = fit_fqe(Path(tmp), lambda f, p=policy: p.action_probabilities(f), FEATURES, fqe,
                             split="train", gamma=1.0, seed=seed)
            q = fitted.q_values(states)
            q[list(mdp.terminal_states)] = 0.0
            out[name] = q
            v0 = float(mdp.initial @ (q * table).sum(axis=1))
            print(f"FQE {name}: {fqe.n_steps} steps in {time.perf_counter() - t0:.1f} s, "
                  f"V(s0) {v0:.4f} vs exact {exact_policy_value(table):.4f}", flush=True)
    return out


def estimator_terms(raw: pd.DataFrame, tables, q_tables, behaviour: np.ndarray | None = None,
                    exact_q: dict | None = None) -> dict:
    """Per-episode terms of all seven estimators for every target on one simulated evaluation set;
    given the behaviour matrix also the support bounds (support = actions it ever takes), given the
    exact Q-tables also WDR with the exact Q (the floor that no better FQE can go below)."""
    layout = episode_layout(raw.rename(columns={"ep": "episode_id"}))
    rewards, mask = layout.pad(raw["r"].to_numpy(float), 0.0), layout.mask
    s, a = raw["s"].to_numpy(), raw["a"].to_numpy()
    terms = {}
    for name, table in tables.items():
        w = importance_weights(layout.pad(table[s, a], 1.0), layout.pad(raw["p"].to_numpy(), 1.0), mask)
        q = q_tables[name]
        q_logged, v = layout.pad(q[s, a], 0.0), layout.pad((q[s] * table[s]).sum(axis=1), 0.0)
        makers = {"IS": is_terms(w, rewards, 1.0), "WIS": wis_terms(w, rewards, 1.0),
                  "PDIS": pdis_terms(w, rewards, 1.0), "PDWIS": pdwis_terms(w, rewards, 1.0),
                  "DR": dr_terms(w, rewards, q_logged, v, 1.0),
                  "WDR": wdr_terms(w, rewards, q_logged, v, 1.0),
                  "FQE": direct_method_terms(v[:, 0])}
        terms.update({(name, est): t for est, t in makers.items()})
        if exact_q is not None:
            qe = exact_q[name]
            terms[(name, ORACLE)] = wdr_terms(w, rewards, layout.pad(qe[s, a], 0.0),
                                              layout.pad((qe[s] * table[s]).sum(axis=1), 0.0), 1.0)
        if behaviour is not None:
            low, high = support_bound_terms(table[s], behaviour[s], raw["p"].to_numpy(), a, rewards,
                                               layout, threshold=1e-12, bounds=(0.0, 1.0), gamma=1.0)
            terms[(name, "bound low")], terms[(name, "bound high")] = low, high
    return terms


def estimate_once(raw: pd.DataFrame, tables, q_tables, resamples: int, seed: int, behaviour=None,
                  exact_q=None):
    """All estimators for all targets on one simulated evaluation set (shared bootstrap resamples)."""
    return bootstrap_intervals(estimator_terms(raw, tables, q_tables, behaviour, exact_q),
                               n_resamples=resamples, seed=seed)


def wdr_goal(error: float, identified: tuple[float, float]) -> str:
    """'yes' / 'NO', or 'not identified' where the exact range the data allow is wider than 0.02."""
    if identified[1] - identified[0] > 0.02:
        return f"not identified (range {identified[1] - identified[0]:.2f})"
    return "yes" if error <= 0.01 else "NO"


def large_check(args, mdp, tables, q_tables, truth, behaviour, label, exact_q) -> None:
    """WIS/DR/WDR/FQE point estimates and errors on one large evaluation set (a single draw: the
    WDR goal is judged on the mean error over the replications)."""
    raw = simulate_episodes(args.large, behaviour, seed=99_999, mdp=mdp)
    large = estimate_once(raw, tables, q_tables, args.resamples, 0, exact_q=exact_q)
    rows = [(label[name], est, f"{truth[name]:.4f}", f"{large[(name, est)].value:.4f}",
             f"{abs(large[(name, est)].value - truth[name]):.4f}",
             f"[{large[(name, est)].ci_low:.4f}, {large[(name, est)].ci_high:.4f}]")
            for name in tables for est in ("WIS", "DR", "WDR", ORACLE, "FQE")]
    print_table(f"One draw of {args.large} episodes, behaviour {args.behaviour!r}",
                ["target", "estimator", "exact", "estimate", "|error|", "95 % CI"], rows)


def main() -> None:
    if "--fqe-intervals" in sys.argv[1:]:  # the FQE-interval table: own FQE fits and refits per replication
        from ope_refit_coverage import run

        run([arg for arg in sys.argv[1:] if arg != "--fqe-intervals"])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--behaviour", default="clinician", help="Logging policy: clinician | epsilon:E.")
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--episodes", type=int, default=20000, help="Evaluation episodes per replication.")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--fqe-episodes", type=int, default=20000)
    parser.add_argument("--fqe-steps", type=int, default=None, help="default: the shipped FqeConfig")
    parser.add_argument("--fqe-lr", type=float, default=None, help="FQE Adam lr (default: shipped).")
    parser.add_argument("--large", type=int, default=20000, help="Episodes of the single-draw error table.")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average (1 min): {os.getloadavg()[0]:.2f}", flush=True)
    mdp = load_icu_sepsis_mdp()
    tables = targets(mdp)
    truth = {name: exact_policy_value(t, mdp) for name, t in tables.items()}
    behaviour = behaviour_policy_matrix(args.behaviour, mdp)
    support = {name: outside_support(t, behaviour, mdp) for name, t in tables.items()}
    identified = {name: support_value_bounds(t, behaviour, mdp) for name, t in tables.items()}
    print_table(f"Target mass outside the support of behaviour {args.behaviour!r}",
                ["target", "outside", "exact value", "exact range the data allow"],
                [(name, f"{100 * v:.1f} %", f"{truth[name]:.4f}",
                  f"[{identified[name][0]:.4f}, {identified[name][1]:.4f}]") for name, v in support.items()])
    label = {name: f"{name} [{100 * support[name]:.0f} % out]" for name in tables}
    fqe = FqeConfig(**{k: v for k, v in (("n_steps", args.fqe_steps), ("learning_rate", args.fqe_lr))
                       if v is not None})
    q_tables = fitted_q_tables(tables, args.fqe_episodes, fqe, seed=0, behaviour=args.behaviour)
    exact_q = {name: exact_q_values(t, mdp) * ~np.isin(np.arange(mdp.n_states), mdp.terminal_states)[:, None]
               for name, t in tables.items()}
    large_check(args, mdp, tables, q_tables, truth, behaviour, label, exact_q)

    hits, bca_hits, errors, widths = {}, {}, {}, {}
    t0 = time.perf_counter()
    for rep in range(args.replications):
        raw = simulate_episodes(args.episodes, behaviour, seed=rep, mdp=mdp)
        results = estimate_once(raw, tables, q_tables, args.resamples, rep, behaviour, exact_q)
        for name in tables:  # the support bounds as one range: [low's CI low, high's CI high]
            low, high = results.pop((name, "bound low")), results.pop((name, "bound high"))
            key = (name, "bounds")
            hits.setdefault(key, []).append(low.ci_low <= truth[name] <= high.ci_high)
            bca_hits.setdefault(key, []).append(False)
            errors.setdefault(key, []).append(float("nan"))
            widths.setdefault(key, []).append(high.ci_high - low.ci_low)
        for (name, est), res in results.items():
            key = (name, est)
            hits.setdefault(key, []).append(res.ci_low <= truth[name] <= res.ci_high)
            bca = res.bca_low is not None and res.bca_low <= truth[name] <= (res.bca_high or 0.0)
            bca_hits.setdefault(key, []).append(bca)
            errors.setdefault(key, []).append(abs(res.value - truth[name]))
            widths.setdefault(key, []).append(res.ci_high - res.ci_low)
    elapsed = time.perf_counter() - t0
    rows = [(label[name], est, f"{truth[name]:.4f}", f"{100 * np.mean(hits[(name, est)]):.0f} %",
             "-" if est == "bounds" else f"{100 * np.mean(bca_hits[(name, est)]):.0f} %",
             "-" if est == "bounds" else f"{np.mean(errors[(name, est)]):.4f}",
             f"{np.mean(widths[(name, est)]):.4f}",
             wdr_goal(float(np.mean(errors[(name, est)])), identified[name]) if est == "WDR" else "")
            for name in tables for est in (*ESTIMATORS, ORACLE, "bounds")]
    print_table(f"Coverage of 95 % intervals, behaviour {args.behaviour!r}: {args.replications} reps x "
                f"{args.episodes} episodes, "
                f"{args.resamples} resamples ({elapsed:.0f} s)",
                ["target", "estimator", "exact", "pct cover", "BCa cover", "mean |err|", "mean width",
                 f"WDR goal (mean |err| <= 0.01 at {args.episodes})"], rows)


if __name__ == "__main__":
    main()
