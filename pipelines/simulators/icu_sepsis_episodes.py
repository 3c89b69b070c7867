"""Episodes of the ICU-Sepsis MDP written as a trajectories folder (the public contract).

Every episode is simulated from the MDP's own matrices under a known behaviour policy, so
learners see data shaped like the sepsis ETL's output while OPE can be checked against the
exact values of `icu_sepsis.exact_policy_value`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from dosewise.data_schemas import (
    BadInputError,
    RunManifest,
    StageRecord,
    TrajectoryDatasetInfo,
    staged_output,
    trajectory_schema_for,
    validate_frame,
    write_table_atomic,
)
from dosewise.data_schemas import columns as c

from ..splits import assign_splits
from .icu_sepsis import (
    FEATURE_NAMES,
    IcuSepsisMdp,
    behaviour_policy_matrix,
    exact_policy_value,
    load_icu_sepsis_mdp,
)

MAX_EPISODE_STEPS = 500  # icu-sepsis' own episode limit; reaching it is a timeout
BIN_HOURS = 4
_EPOCH = np.datetime64("2150-01-01T00:00:00", "ns")


def _sample_rows(cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a cumulative-probability matrix."""
    draws = rng.random((cumulative.shape[0], 1))
    picked = (cumulative < draws * cumulative[:, -1:]).sum(axis=1)
    return np.asarray(np.minimum(picked, cumulative.shape[1] - 1))


def simulate_episodes(
    n_episodes: int, behaviour: np.ndarray, seed: int, mdp: IcuSepsisMdp | None = None
) -> pd.DataFrame:
    """Simulate all episodes in lock-step (vectorised over episodes), one row per decision."""
    mdp = mdp or load_icu_sepsis_mdp()
    rng = np.random.default_rng(seed)
    behaviour_cum = np.cumsum(behaviour, axis=1)
    states = _sample_rows(np.cumsum(mdp.initial)[None, :].repeat(n_episodes, axis=0), rng)
    active = np.arange(n_episodes)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("ep", "step", "s", "a", "p", "r", "term")}
    terminal_set = np.array(mdp.terminal_states)
    for step in range(MAX_EPISODE_STEPS):
        if active.size == 0:
            break
        s = states[active]
        a = _sample_rows(behaviour_cum[s], rng)
        nxt = _sample_rows(np.cumsum(mdp.transitions[s, a], axis=1), rng)
        done = np.isin(nxt, terminal_set)
        for key, value in (("ep", active), ("step", np.full(active.size, step)), ("s", s), ("a", a),
                           ("p", behaviour[s, a]), ("r", mdp.rewards[s, a, nxt]), ("term", done)):
            columns[key].append(value)
        states[active] = nxt
        active = active[~done]
    frame = pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()})
    frame = frame.sort_values(["ep", "step"], kind="stable").reset_index(drop=True)
    last = frame["step"] == frame.groupby("ep")["step"].transform("max")
    frame["timeout"] = last & ~frame["term"] & (frame["step"] == MAX_EPISODE_STEPS - 1)
    return frame


def to_trajectories(raw: pd.DataFrame, mdp: IcuSepsisMdp | None = None) -> pd.DataFrame:
    """Map simulated rows onto the trajectory contract (47-d cluster centre as the state)."""
    mdp = mdp or load_icu_sepsis_mdp()
    width = len(str(max(int(raw["ep"].max()), 1)))
    out = pd.DataFrame(
        {
            c.EPISODE_ID: "sim-" + raw["ep"].astype(str).str.zfill(width),
            c.STEP: raw["step"].astype("int64"),
            c.BIN_START: _EPOCH + raw["step"].to_numpy() * np.timedelta64(BIN_HOURS, "h"),
        }
    )
    features = pd.DataFrame(mdp.state_features[raw["s"].to_numpy()], columns=list(FEATURE_NAMES))
    out = pd.concat([out, features], axis=1)
    out[c.MDP_STATE] = raw["s"].astype("int64")
    out[c.ACTION] = raw["a"].astype("int64")
    out[c.BEHAVIOUR_PROB] = raw["p"].astype("float64")
    out[c.REWARD] = raw["r"].astype("float64")
    out[c.TERMINAL] = raw["term"].astype(bool)
    out[c.TIMEOUT] = raw["timeout"].astype(bool)
    return out


def dataset_info() -> TrajectoryDatasetInfo:
    """The trajectory contract of ICU-Sepsis folders."""
    return TrajectoryDatasetInfo(
        state_columns=list(FEATURE_NAMES),
        n_actions=25,
        action_grid=[5, 5],
        bin_hours=BIN_HOURS,
        has_behaviour_prob=True,
        ids_pseudonymised=True,
        reward_description="1 on reaching the survival state, 0 otherwise (gamma = 1: survival probability)",
    )


def write_icu_sepsis_episodes(
    out_dir: Path,
    n_episodes: int,
    behaviour: str = "clinician",
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> RunManifest:
    """Simulate `n_episodes` under `behaviour` and write a validated trajectories folder."""
    if n_episodes < 1:
        raise BadInputError(f"`--episodes` must be at least 1. Got {n_episodes}.", "Try --episodes 1000.")
    out_dir = Path(out_dir)
    config = {"kind": "icu_sepsis_sim", "n_episodes": n_episodes, "behaviour": behaviour,
              "seed": seed, "split_fractions": list(split_fractions), "max_episode_steps": MAX_EPISODE_STEPS}
    mdp = load_icu_sepsis_mdp()
    probs = behaviour_policy_matrix(behaviour, mdp)
    manifest = RunManifest.start("icu_sepsis_trajectories", config, seed=seed, dataset=dataset_info())
    start = time.perf_counter()
    trajectories = to_trajectories(simulate_episodes(n_episodes, probs, seed, mdp), mdp)
    trajectories = validate_frame(trajectories, trajectory_schema_for(dataset_info()), "simulated episodes")
    manifest.stages.append(StageRecord(name="simulate", rows_in=n_episodes, rows_out=len(trajectories),
                                       seconds=time.perf_counter() - start,
                                       note="episodes in, one row per decision out"))
    splits = assign_splits(trajectories[c.EPISODE_ID].unique().tolist(), split_fractions, seed)
    with staged_output(out_dir) as work:
        write_table_atomic(trajectories, work / "trajectories.parquet")
        write_table_atomic(splits, work / "splits.parquet")
        manifest.extra["exact_behaviour_value"] = exact_policy_value(probs, mdp)
        manifest.record_outputs(work)
        manifest.write(work)
    return manifest

