"""The Zhao, Kosorok & Zeng 2009 (Stat Med 28:3294) chemotherapy model: the field's DTR benchmark.

Monthly decisions t = 0..5 of a dose D in [0, 1]; toxicity W ("negative wellness") and tumour
size M follow dW = a1 max(M, M0) + b1 (D - d1), dM = [a2 max(W, W0) - b2 (D - d2)] 1(M > 0);
death in month t has probability 1 - exp(-exp(mu0 + mu1 W + mu2 M)). Rewards: -60 on death;
+15 on cure (M = 0); +/-5 for a fall/rise of at least 0.5 in W and in M. As in the paper's
trial, the behaviour policy draws D0 ~ U(0.5, 1) and later doses ~ U(0, 1), so the behaviour
density of every logged dose is known (2 and 1). All parameters: rules/oncology_model_parameters.csv.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dosewise.data_schemas import (
    RunManifest,
    StageRecord,
    TrajectoryDatasetInfo,
    staged_output,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas import columns as c

from ..binning import discretize_doses
from ..splits import assign_splits
from .oncology_params import OncologyParameters, load_oncology_parameters
from .oncology_truth import PolicyValue

STATE_COLUMNS = ["month", "wellness_score", "tumour_size_score"]
DOSE_EDGES = [0.0, 0.25, 0.5, 0.75]
_EPOCH = np.datetime64("2000-01-01T00:00:00", "ns")

#: (states with STATE_COLUMNS, the policy's own random stream) -> dose in [0, 1] per row
ZhaoPolicy = Callable[[pd.DataFrame, np.random.Generator], np.ndarray]


def _reward(delta: np.ndarray, value: float) -> np.ndarray:
    return np.where(delta <= -0.5, value, np.where(delta >= 0.5, -value, 0.0))


def simulate_zhao(
    policy: ZhaoPolicy | None, n: int, seed: int, params: OncologyParameters | None = None
) -> pd.DataFrame:
    """One row per patient-month under `policy(states, rng) -> dose` (None: the trial's uniform doses)."""
    p = params or load_oncology_parameters()
    g = {k: p[f"zhao2009.{k}"] for k in ("a1", "a2", "b1", "b2", "d1", "d2", "mu0", "mu1", "mu2")}
    rng = np.random.default_rng(seed)
    w0, m0 = rng.uniform(0, 2, n), rng.uniform(0, 2, n)
    u_death = rng.random((n, int(p["zhao2009.n_months"])))
    u_dose = rng.random((n, int(p["zhao2009.n_months"])))
    policy_rng = np.random.default_rng([seed, 7919])
    w, m = w0.copy(), m0.copy()
    alive = np.ones(n, dtype=bool)
    rows = []
    for t in range(int(p["zhao2009.n_months"])):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        states = pd.DataFrame({"month": float(t), "wellness_score": w[idx], "tumour_size_score": m[idx]})
        if policy is None:
            dose = 0.5 + 0.5 * u_dose[idx, t] if t == 0 else u_dose[idx, t]
            density = np.full(idx.size, 2.0 if t == 0 else 1.0)
        else:
            dose = np.clip(np.asarray(policy(states, policy_rng), dtype=np.float64), 0.0, 1.0)
            density = np.full(idx.size, np.nan)
        wi, mi = w[idx], m[idx]
        w_new = wi + g["a1"] * np.maximum(mi, m0[idx]) + g["b1"] * (dose - g["d1"])
        m_new = np.where(mi > 0, mi + g["a2"] * np.maximum(wi, w0[idx]) - g["b2"] * (dose - g["d2"]), 0.0)
        m_new = np.maximum(m_new, 0.0)
        w_new = np.maximum(w_new, 0.0)
        died = u_death[idx, t] < 1 - np.exp(-np.exp(g["mu0"] + g["mu1"] * w_new + g["mu2"] * m_new))
        step = p["zhao2009.change_reward"]
        reward = np.where(
            died,
            p["zhao2009.death_reward"],
            _reward(w_new - wi, step)
            + np.where(m_new == 0, p["zhao2009.cure_reward"], _reward(m_new - mi, step)),
        )
        rows.append(
            pd.DataFrame(
                {
                    "patient": idx,
                    c.STEP: t,
                    **{k: states[k].to_numpy() for k in STATE_COLUMNS},
                    c.DOSE_FRACTION: dose,
                    c.BEHAVIOUR_DENSITY: density,
                    c.REWARD: reward,
                    c.TERMINAL: died,
                }
            )
        )
        w[idx], m[idx] = w_new, m_new
        alive[idx[died]] = False
    frame = pd.concat(rows, ignore_index=True).sort_values(["patient", c.STEP], kind="stable")
    last = frame[c.STEP] == frame.groupby("patient")[c.STEP].transform("max")
    frame[c.TIMEOUT] = last & ~frame[c.TERMINAL]
    return frame.reset_index(drop=True)


def zhao_policy_value(policy: ZhaoPolicy, n: int = 20_000, seed: int = 0) -> PolicyValue:
    """Monte-Carlo value (undiscounted mean return +/- SE) of `policy` on the Zhao 2009 model."""
    frame = simulate_zhao(policy, n, seed)
    returns = frame.groupby("patient")[c.REWARD].sum().reindex(range(n), fill_value=0.0).to_numpy()
    return PolicyValue(float(returns.mean()), float(returns.std(ddof=1) / np.sqrt(n)), n, returns)


def write_zhao_episodes(out: Path | str, n: int, seed: int = 0) -> RunManifest:
    """Zhao 2009 trial episodes (uniform doses) as a trajectories folder with known densities."""
    out = Path(out)
    with staged_output(out) as work:
        start = time.perf_counter()
        frame = simulate_zhao(None, n, seed)
        frame[c.EPISODE_ID] = [f"zhao_{i:07d}" for i in frame["patient"]]
        frame[c.BIN_START] = _EPOCH + (frame[c.STEP].to_numpy() * 30).astype("timedelta64[D]")
        frame[c.ACTION] = discretize_doses(frame[c.DOSE_FRACTION], DOSE_EDGES)
        frame[c.BEHAVIOUR_PROB] = np.where(
            frame[c.STEP] == 0,
            np.clip(np.select([frame[c.ACTION] == 3, frame[c.ACTION] == 4], [0.5, 0.5], 0.0), 1e-12, 1.0),
            0.25,
        )
        info = TrajectoryDatasetInfo(
            state_columns=STATE_COLUMNS,
            n_actions=len(DOSE_EDGES) + 1,
            continuous_action_columns=[c.DOSE_FRACTION],
            action_bin_edges={c.DOSE_FRACTION: DOSE_EDGES},
            action_grid=[len(DOSE_EDGES) + 1],
            has_behaviour_prob=True,
            ids_pseudonymised=False,
            reward_description="Zhao, Kosorok & Zeng 2009: -60 on death, +15 on cure, +/-5 per 0.5 change in "
            "wellness and in tumour size; undiscounted",
        )
        traj = frame[
            [
                c.EPISODE_ID,
                c.STEP,
                c.BIN_START,
                *STATE_COLUMNS,
                c.DOSE_FRACTION,
                c.ACTION,
                c.BEHAVIOUR_PROB,
                c.BEHAVIOUR_DENSITY,
                c.REWARD,
                c.TERMINAL,
                c.TIMEOUT,
            ]
        ].reset_index(drop=True)
        traj = validate_frame(traj, trajectory_schema_for(info), "Zhao 2009 episodes")
        splits = assign_splits(traj[c.EPISODE_ID].unique().tolist(), (0.7, 0.15, 0.15), seed)
        write_table_atomic(traj, work / "trajectories.parquet")
        write_table_atomic(splits, work / "splits.parquet")
        manifest = RunManifest.start(
            "zhao2009_episodes", {"patients": n, "seed": seed, "behaviour": "uniform doses"}, seed=seed
        )
        manifest.dataset = info
        manifest.stages = [
            StageRecord(
                name="simulate", rows_in=n, rows_out=len(traj), seconds=round(time.perf_counter() - start, 3)
            )
        ]
        manifest.extra = {
            "behaviour_prob": "bins of U(0.5, 1) at month 0 and U(0, 1) later: exact",
            "n_cycles": len(traj),
            "deaths_by_horizon": int(traj[c.TERMINAL].sum()),
            "dirt_planted": {},
        }
        manifest.record_outputs(work)
        manifest.write(work)
    return manifest
