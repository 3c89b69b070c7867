"""A small continuous-dose MDP with known dynamics, for continuous-action OPE tests.

State (x0, x1) ~ N(0, I) at the start; each step the clinicians hold (dose 0) with probability
0.1, else give a log-normal relative dose exp(N(-0.1 + 0.1 x0, 0.2^2)). The reward is
1 - (dose - (1 + 0.2 x1))^2 and the dose pushes x0: x0' = 0.5 x0 + 0.5 (dose - 0.9) + 0.5 e.
The true value of any dose policy comes from `true_value` by Monte Carlo on these dynamics.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dosewise.data_schemas import RunManifest, TrajectoryDatasetInfo, write_table_atomic

STATES = ["x0_score", "x1_score", "cycle_number"]  # the horizon is finite: time is state
DOSE = "rdi"
EDGES = {DOSE: [0.0, 0.6, 0.8, 0.95]}
STEPS = 3
HOLD, MU0, MU_SLOPE, SIGMA = 0.1, -0.1, 0.1, 0.2
DosePolicy = Callable[[np.ndarray], np.ndarray]  # (n, 2) states -> (n,) doses


def behaviour_doses(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clinicians' doses: hurdle log-normal given the state."""
    dose = np.exp(MU0 + MU_SLOPE * x[:, 0] + SIGMA * rng.standard_normal(len(x)))
    return np.where(rng.random(len(x)) < HOLD, 0.0, dose)


def _step(x: np.ndarray, dose: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    reward = 1.0 - (dose - (1.0 + 0.2 * x[:, 1])) ** 2
    nxt = np.column_stack([0.5 * x[:, 0] + 0.5 * (dose - 0.9) + 0.5 * rng.standard_normal(len(x)),
                           0.5 * x[:, 1] + 0.5 * rng.standard_normal(len(x))])
    return reward, nxt


def true_value(policy: DosePolicy | None, n: int = 400_000, seed: int = 123) -> float:
    """Monte-Carlo value (undiscounted, 3 steps) of a dose policy; None = the clinicians."""
    rng = np.random.default_rng(seed)
    x, total = rng.standard_normal((n, 2)), np.zeros(n)
    for _ in range(STEPS):
        dose = behaviour_doses(x, rng) if policy is None else policy(x)
        reward, x = _step(x, dose, rng)
        total += reward
    return float(total.mean())


def behaviour_density(x: np.ndarray, dose: np.ndarray) -> np.ndarray:
    """The clinicians' true density of `dose` (point mass HOLD at 0)."""
    mu = MU0 + MU_SLOPE * x[:, 0]
    safe = np.maximum(dose, 1e-12)
    z = (np.log(safe) - mu) / SIGMA
    positive = (1 - HOLD) * np.exp(-0.5 * z**2) / (SIGMA * safe * np.sqrt(2 * np.pi))
    return np.where(dose > 0, positive, HOLD)


def write_continuous_folder(folder: Path, n_episodes: int = 600, seed: int = 0,
                            outlier_share: float = 0.0, known_density: bool = False) -> None:
    """Trajectories of the clinicians on this MDP (half train, half test). `outlier_share` of the
    doses are replaced by 3.0, far outside what the density expects (the near-zero-mass case);
    `known_density` writes the true density of each logged dose as `behaviour_density`."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_episodes, 2))
    parts = []
    for t in range(STEPS):
        dose = behaviour_doses(x, rng)
        if outlier_share:
            dose = np.where(rng.random(n_episodes) < outlier_share, 3.0, dose)
        reward, nxt = _step(x, dose, rng)
        density = behaviour_density(x, dose)
        parts.append(pd.DataFrame({"episode_id": [f"e{i:05d}" for i in range(n_episodes)], "step": t,
                                   STATES[0]: x[:, 0], STATES[1]: x[:, 1], STATES[2]: float(t), DOSE: dose,
                                   "reward": reward, "behaviour_density": density}))
        x = nxt
    frame = pd.concat(parts).sort_values(["episode_id", "step"]).reset_index(drop=True)
    frame["step"] = frame["step"].astype(np.int64)
    frame["action"] = np.searchsorted(EDGES[DOSE], frame[DOSE].to_numpy(), side="left").astype(np.int64)
    frame["bin_start"] = (pd.Timestamp("2150-01-01") + pd.to_timedelta(21 * frame["step"], unit="D")
                          ).astype("datetime64[ns]")
    frame["terminal"] = frame["step"] == STEPS - 1  # the horizon ends the MDP: nothing follows
    frame["timeout"] = False
    if not known_density:
        frame = frame.drop(columns=["behaviour_density"])
    ids = frame["episode_id"].unique()
    halves = np.where(np.arange(len(ids)) % 2 == 0, "train", "test")
    splits = pd.DataFrame({"episode_id": ids, "split": halves})
    info = TrajectoryDatasetInfo(state_columns=STATES, n_actions=5, action_grid=[5],
                                 continuous_action_columns=[DOSE], action_bin_edges=EDGES)
    write_table_atomic(frame, folder / "trajectories.parquet")
    write_table_atomic(splits, folder / "splits.parquet")
    RunManifest.start("test_trajectories", {"kind": "test"}, dataset=info).write(folder)
