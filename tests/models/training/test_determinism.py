"""Same seed and config on the CPU -> bitwise-identical weights; another seed -> different."""

from __future__ import annotations

from pathlib import Path

import torch

from dosewise.models import load_policy, train_policy

from .conftest import tiny_config


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    policy = load_policy(folder)
    return {k: v.clone() for k, v in policy.network.state_dict().items()}


def test_same_seed_same_weights_other_seed_differs(traj_dir: Path, tmp_path: Path) -> None:
    config = tiny_config("discrete_cql", n_steps=40, mask={"source": "observed_support"})
    a = train_policy(traj_dir, config, out_dir=tmp_path / "a", show_progress=False)
    b = train_policy(traj_dir, config, out_dir=tmp_path / "b", show_progress=False)
    c = train_policy(traj_dir, config.model_copy(update={"seed": 1}), out_dir=tmp_path / "c",
                     show_progress=False)
    wa, wb, wc = _weights(a.policy_dir), _weights(b.policy_dir), _weights(c.policy_dir)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert (a.policy_dir / "model.pt").read_bytes() == (b.policy_dir / "model.pt").read_bytes()


def test_continuous_same_seed_same_weights(traj_dir: Path, tmp_path: Path) -> None:
    config = tiny_config("td3_plus_bc")
    a = train_policy(traj_dir, config, out_dir=tmp_path / "a", show_progress=False)
    b = train_policy(traj_dir, config, out_dir=tmp_path / "b", show_progress=False)
    wa, wb = _weights(a.policy_dir), _weights(b.policy_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
