"""Admissible-action masks hold when recommending and in the bootstrap target; exports equal
`recommend`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dosewise.data_schemas import ConfigError
from dosewise.data_schemas import columns as c
from dosewise.models import load_policy, train_policy

from .conftest import tiny_config

FORBIDDEN = [0, 6, 12, 18, 24]


def _trained(traj_dir: Path, out: Path, config):  # type: ignore[no-untyped-def]
    return load_policy(train_policy(traj_dir, config, out_dir=out, show_progress=False).policy_dir)


def _states(traj_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(traj_dir / "trajectories.parquet")


@pytest.mark.parametrize("algo", ["discrete_cql", "dqn", "discrete_bcq", "iql"])
def test_rule_mask_is_respected(algo: str, traj_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(algo, mask={"forbidden_actions": FORBIDDEN})
    policy = _trained(traj_dir, tmp_path / "p", config)
    states = _states(traj_dir)
    assert not np.isin(policy.recommend(states), FORBIDDEN).any()
    probs = policy.action_probabilities(states, epsilon=0.5)
    assert (probs[:, FORBIDDEN] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_observed_support_mask_allows_only_clinicians_actions(traj_dir: Path, tmp_path: Path) -> None:
    config = tiny_config("double_dqn", mask={"source": "observed_support"})
    policy = _trained(traj_dir, tmp_path / "p", config)
    train = _states(traj_dir).merge(pd.read_parquet(traj_dir / "splits.parquet"), on=c.EPISODE_ID)
    train = train[train[c.SPLIT] == "train"]
    # every train state is distinct, so each is its own cluster and only its logged action is allowed
    np.testing.assert_array_equal(policy.recommend(train), train[c.ACTION].to_numpy())
    assert (policy.admissible(train).sum(axis=1) == 1).all()


@pytest.mark.parametrize("algo", ["dqn", "double_dqn", "discrete_cql", "discrete_bcq"])
def test_mask_applies_in_the_bootstrap_target(algo: str, traj_dir: Path) -> None:
    import io

    from dosewise.models.datasets import load_training_data
    from dosewise.models.masks import AdmissibleActions, mask_module
    from dosewise.models.policy import build_algo
    from dosewise.models.sampling import TransitionSampler

    data = load_training_data(traj_dir)
    n_features, n_actions = len(data.feature_names), data.action_size
    only_zero = AdmissibleActions(np.zeros((1, n_features), np.float32), np.eye(1, n_actions, dtype=bool))
    config = tiny_config(algo)
    masked = build_algo(config, n_features, n_actions, "cpu:0", admissible=mask_module(only_zero, "cpu:0"))
    batch = TransitionSampler(data.transitions(), 64, "cpu:0", 0).sample()
    impl = masked.impl
    # only action 0 is allowed, so the target must be Q_target(s', 0) whatever the networks prefer
    expected = impl._targ_q_func_forwarder.compute_target(
        batch.next_observations, torch.zeros(64, dtype=torch.int64), reduction="min")
    torch.testing.assert_close(impl.compute_target(batch), expected)
    unmasked = impl._targ_q_func_forwarder.compute_expected_q(batch.next_observations).max(dim=1).values
    assert (unmasked[:, None] > expected + 1e-6).any()
    # a subclass of d3rlpy's algorithm with d3rlpy's checkpoint: the plain algorithm loads its weights
    plain = build_algo(config, n_features, n_actions, "cpu:0", fused_loss=False)  # d3rlpy's own class
    assert isinstance(masked, type(plain)) and type(masked) is not type(plain)
    saved = io.BytesIO()
    impl.save_model(saved)
    plain.impl.load_model(io.BytesIO(saved.getvalue()))
    states = batch.observations.numpy()
    np.testing.assert_array_equal(plain.predict(states), masked.predict(states))


def test_mask_that_forbids_everything_is_a_config_error(traj_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="forbids every action"):
        train_policy(traj_dir, tiny_config(mask={"forbidden_actions": list(range(25))}),
                     out_dir=tmp_path / "p", show_progress=False)


CANDIDATES = {"source": "observed_support", "n_clusters": 3, "dose_candidates": 4}


@pytest.mark.parametrize("choice", ["nearest", "best_q"])
def test_dose_candidates_recommend_only_doses_logged_in_the_cluster(choice: str, traj_dir: Path,
                                                                     tmp_path: Path) -> None:
    config = tiny_config("iql", mask={**CANDIDATES, "dose_choice": choice})
    policy = _trained(traj_dir, tmp_path / "p", config)
    assert policy.mask is not None and policy.mask.doses is not None and policy.mask.doses.shape[:2] == (3, 4)
    states = _states(traj_dir)
    train = states.merge(pd.read_parquet(traj_dir / "splits.parquet"), on=c.EPISODE_ID)
    logged = train.loc[train[c.SPLIT] == "train", policy.dose_columns].to_numpy(np.float64)
    recommended = policy.recommend_doses(states).to_numpy(np.float64)
    # every recommendation is a dose vector the clinicians gave in the train split (unit scale round trip)
    gap = np.abs(recommended[:, None, :] - logged[None, :, :]).max(axis=2).min(axis=1)
    assert gap.max() < 1e-3 * np.abs(logged).max()
    # ... and one of its own cluster's candidates
    scaled = ((states[policy.feature_names].to_numpy(np.float64) - policy.network.mean.numpy())
              / policy.network.std.numpy())
    own = policy.mask.doses[policy.mask.nearest(scaled.astype(np.float32))]
    unit = (recommended - policy.network.head.low.numpy()) / (
        policy.network.head.high.numpy() - policy.network.head.low.numpy()) * 2.0 - 1.0
    assert np.abs(own - unit[:, None, :]).max(axis=2).min(axis=1).max() < 1e-4
    # the policy folder round trip keeps them
    np.testing.assert_allclose(load_policy(tmp_path / "p").recommend_doses(states).to_numpy(), recommended)


def test_bin_median_candidates_are_each_allowed_bins_median_in_its_cluster() -> None:
    from dosewise.models.masks import AdmissibleActions, with_bin_median_candidates

    centres = np.array([[0.0], [10.0]], np.float32)
    allowed = np.array([[True, True, False], [False, False, True]])  # cluster 1: bin 2, never given there
    states = np.array([[0.1], [0.2], [-0.1], [0.0], [9.9], [10.1], [0.3]])
    doses = np.array([[0.1], [0.3], [0.2], [0.9], [0.5], [0.7], [0.6]])
    actions = np.array([0, 0, 0, 1, 0, 0, 2])
    mask = with_bin_median_candidates(AdmissibleActions(centres, allowed), states, doses, actions)
    assert mask.doses is not None and mask.doses.shape == (2, 3, 1)
    # cluster 0: bin 0's median of 0.1, 0.3, 0.2 and bin 1's 0.9, padded with the first
    np.testing.assert_allclose(mask.doses[0, :, 0], [0.2, 0.9, 0.2])
    # cluster 1 never logged bin 2: the median of bin 2 over every cluster (0.6, from cluster 0's row)
    np.testing.assert_allclose(mask.doses[1, :, 0], [0.6, 0.6, 0.6])


def test_bin_median_candidates_train_and_need_no_count(traj_dir: Path, tmp_path: Path) -> None:
    mask = {"source": "observed_support", "n_clusters": 3, "dose_candidate_rule": "bin_medians"}
    policy = _trained(traj_dir, tmp_path / "p", tiny_config("iql", mask=mask))
    assert policy.mask is not None and policy.mask.doses is not None
    assert policy.mask.doses.shape[:2] == (3, policy.n_actions)
    recommended = policy.recommend_doses(_states(traj_dir)).to_numpy(np.float64)
    low, high = policy.network.head.low.numpy(), policy.network.head.high.numpy()
    candidates = (policy.mask.doses.reshape(-1, len(low)) + 1.0) / 2.0 * (high - low) + low
    gap = np.abs(recommended[:, None, :] - candidates[None, :, :]).max(axis=2).min(axis=1)
    assert gap.max() < 1e-4 * max(float(np.abs(candidates).max()), 1.0)
    with pytest.raises(ValueError, match="must be 0 with"):
        tiny_config("iql", mask={**mask, "dose_candidates": 4})
    with pytest.raises(ValueError, match="continuous algorithm"):
        tiny_config("discrete_cql", mask=mask)


def test_dose_candidates_without_observed_support_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="dose_candidates"):
        tiny_config("iql", mask={"dose_candidates": 4})
    with pytest.raises(ValueError, match="continuous algorithm"):
        tiny_config("discrete_cql", mask=CANDIDATES)


@pytest.mark.parametrize(("algo", "mask"), [
    ("discrete_cql", {"source": "observed_support", "min_count": 1}),
    ("discrete_bcq", {}),
    ("td3_plus_bc", {"forbidden_actions": FORBIDDEN}),
    ("iql", CANDIDATES),
])
def test_torchscript_and_onnx_exports_equal_recommend(algo: str, mask: dict, traj_dir: Path,
                                                      tmp_path: Path) -> None:
    import onnxruntime

    policy = load_policy(train_policy(traj_dir, tiny_config(algo, mask=mask), out_dir=tmp_path / "p",
                                      show_progress=False).policy_dir)
    states = _states(traj_dir)
    expected = policy.recommend(states)
    x = states[policy.feature_names].to_numpy(np.float32)
    scripted = torch.jit.load(str(policy.export_torchscript(tmp_path / "policy.pt")))
    np.testing.assert_array_equal(scripted(torch.as_tensor(x.copy())).numpy(), expected)
    session = onnxruntime.InferenceSession(str(policy.export_onnx(tmp_path / "policy.onnx")))
    assert [i.name for i in session.get_inputs()] == ["features"]
    (onnx_actions,) = session.run(["action"], {"features": x})
    np.testing.assert_array_equal(onnx_actions, expected)
    np.testing.assert_array_equal(policy.recommend(states), expected)  # export left the policy intact


def test_recommend_rejects_missing_or_non_finite_features(traj_dir: Path, tmp_path: Path) -> None:
    from dosewise.data_schemas import BadInputError

    policy = load_policy(train_policy(traj_dir, tiny_config(), out_dir=tmp_path / "p",
                                      show_progress=False).policy_dir)
    states = _states(traj_dir).head(3)
    with pytest.raises(BadInputError, match="state_1"):
        policy.recommend(states.drop(columns=["state_1"]))
    with pytest.raises(BadInputError, match="NaN or inf"):
        policy.recommend(states.assign(state_0=[0.0, np.inf, 1.0]))
    with pytest.raises(BadInputError, match="epsilon"):
        policy.action_probabilities(states, epsilon=1.5)
