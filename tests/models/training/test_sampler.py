"""The vectorised sampler samples what d3rlpy samples and learns as well as d3rlpy's `fit()`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dosewise.data_schemas import TrajectoryDatasetInfo
from dosewise.data_schemas import columns as c
from dosewise.models import load_policy, load_training_data, train_policy
from dosewise.models.sampling import TransitionSampler

from .conftest import tiny_config, write_folder

N_STATES, N_ACTIONS, REPEATS = 6, 4, 40


def _bandit(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """One-step episodes: Q*(s, a) is the reward table, so learning quality is exactly measurable."""
    s, a = np.meshgrid(np.arange(N_STATES), np.arange(N_ACTIONS), indexing="ij")
    rewards = 0.1 + 0.25 * ((3 * s + a) % N_ACTIONS)  # a distinct best action per state, gaps of 0.25
    s, a = np.meshgrid(np.arange(N_STATES), np.arange(N_ACTIONS), indexing="ij")
    s, a = np.repeat(s.ravel(), REPEATS), np.repeat(a.ravel(), REPEATS)
    frame = pd.DataFrame({
        # shuffled ids, so that the id-ordered 70/15/15 split sees every state in train
        c.EPISODE_ID: [f"e{i:05d}" for i in np.random.default_rng(0).permutation(len(s))], c.STEP: 0,
        c.BIN_START: pd.Timestamp("2150-01-01"), c.ACTION: a.astype("int64"),
        c.REWARD: rewards[s, a], c.TERMINAL: True, c.TIMEOUT: False,
    })
    for j in range(N_STATES):
        frame[f"state_{j}"] = (s == j).astype(float)
    frame[c.BIN_START] = frame[c.BIN_START].astype("datetime64[ns]")
    info = TrajectoryDatasetInfo(state_columns=[f"state_{j}" for j in range(N_STATES)], n_actions=N_ACTIONS)
    return write_folder(tmp_path / "bandit", frame, info), rewards


def test_vectorised_sampler_learns_as_well_as_fit(tmp_path: Path) -> None:
    folder, truth = _bandit(tmp_path)
    states = pd.DataFrame(np.eye(N_STATES), columns=[f"state_{j}" for j in range(N_STATES)])
    errors = {}
    for sampler in ("vectorised", "d3rlpy"):
        algorithm = {"name": "double_dqn", "hidden_units": [32, 32], "learning_rate": 3e-3}
        config = tiny_config("double_dqn", n_steps=600, log_every=200, batch_size=64, sampler=sampler,
                             algorithm=algorithm)
        result = train_policy(folder, config, out_dir=tmp_path / sampler, show_progress=False)
        policy = load_policy(result.policy_dir)
        errors[sampler] = float(np.abs(policy.q_values(states) - truth).mean())
        np.testing.assert_array_equal(policy.recommend(states), truth.argmax(axis=1))
    assert errors["vectorised"] < 0.05 and errors["d3rlpy"] < 0.05, errors
    assert errors["vectorised"] <= 1.5 * errors["d3rlpy"] + 0.01, errors


def test_sampler_draws_uniformly_from_d3rlpys_transitions(traj_dir: Path) -> None:
    data = load_training_data(traj_dir)
    arrays = data.transitions()
    sampler = TransitionSampler(arrays, 4096, "cpu:0", seed=0)
    batch = sampler.sample()
    assert batch.observations.dtype == torch.float32 and batch.observations.shape == (4096, 4)
    assert batch.actions.shape == (4096, 1) and batch.terminals.shape == (4096, 1)
    # each sampled row is one of the dataset's transitions, fields kept together
    rows = {(*tuple(np.round(o, 5)), float(a)) for o, a in zip(arrays.observations, arrays.actions[:, 0],
                                                                 strict=True)}
    sampled = np.concatenate([batch.observations.numpy(), batch.actions.numpy()], axis=1)
    assert all((*tuple(np.round(r[:-1], 5)), float(r[-1])) in rows for r in sampled[:200])
    # uniform over transitions: every one is drawn, none far more often than expected
    counts = np.unique(batch.observations.numpy(), axis=0, return_counts=True)[1]
    assert len(counts) == len(arrays)
    assert counts.max() < 3 * 4096 / len(arrays)
    # same seed -> same batches; the generator is the sampler's own, not torch's global one
    again = TransitionSampler(arrays, 4096, "cpu:0", seed=0)
    torch.manual_seed(123)
    assert torch.equal(again.sample().observations, batch.observations)
