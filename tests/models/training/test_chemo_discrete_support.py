"""The shipped chemo discrete configs keep the policy, and OPE's epsilon-softening, on RDI bins the
clinicians gave: no probability on a bin no record holds (the hold bin on the simulator), whose value
no importance ratio can see (README "Chemotherapy OPE")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise import models, pipelines
from dosewise.data_schemas import load_config


@pytest.fixture(scope="module")
def chemo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chemo_support")
    pipelines.write_synthetic_oncology(root / "records", 120, seed=4, fmt="registry", file_format="parquet")
    config = pipelines.ChemoPipelineConfig.model_validate({"output": {"id_salt": "support-test-salt"}})
    pipelines.run_chemo_pipeline(config, root / "records", root / "chemo", show_progress=False)
    return root / "chemo"


@pytest.mark.parametrize("name", ["chemo_discrete_cql", "chemo_double_dqn", "chemo_discrete_bcq"])
def test_never_logged_bins_get_no_probability(name: str, chemo_dataset: Path, tmp_path: Path) -> None:
    config = load_config(name, models.TrainConfig,
                         ["n_steps=30", "batch_size=32", "log_every=10", "device='cpu'", "threads=1"],
                         search=[models.config_folder()])
    policy = models.load_policy(
        models.train_policy(chemo_dataset, config, out_dir=tmp_path / name, show_progress=False).policy_dir)
    frame = pd.read_parquet(chemo_dataset / "trajectories.parquet")
    states = frame[policy.feature_names]
    logged = np.bincount(frame["action"].to_numpy(np.int64), minlength=policy.n_actions) > 0
    assert not logged.all(), "the simulator's records should leave a bin (the hold) never given"
    probs = policy.action_probabilities(states, epsilon=0.5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs[:, ~logged] == 0).all()
    assert logged[policy.recommend(states)].all()
