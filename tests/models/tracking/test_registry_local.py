"""The default local store end to end: train, register with an alias, load in a fresh process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosewise.data_schemas import BadInputError
from dosewise.models import (
    alias_policy,
    list_registered_policies,
    load_policy,
    load_registered_policy,
    register_policy,
)
from dosewise.models.tracking.pyfunc import SUPPORT_COLUMN, predict_recommendations, q_column
from dosewise.models.tracking.runs import start_run
from dosewise.models.tracking.session import train_tracked

from .helpers import predict_in_fresh_process, sample_states, tiny_train_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_flow(tmp_path_factory: pytest.TempPathFactory, icu_trajectories: Path):  # type: ignore[no-untyped-def]
    """Train into the default store of a fresh working folder and register `@candidate`."""
    work = tmp_path_factory.mktemp("local_store")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        trained = train_tracked(icu_trajectories, tiny_train_config(), out_dir=work / "policy",
                                show_progress=False)
        registered = register_policy(trained.run_id, "sepsis-dosing", alias="candidate")
        yield work, trained, registered


def test_default_store_files_sit_in_the_working_folder(local_flow) -> None:  # type: ignore[no-untyped-def]
    work, trained, registered = local_flow
    assert trained.tracking_uri == f"sqlite:///{work.resolve() / 'mlflow.db'}"
    assert registered.version == "1" and registered.aliases == ("candidate",)
    assert list((work / "mlartifacts").rglob("MLmodel"))
    assert not (work / "mlruns").exists()
    pins = next((work / "mlartifacts").rglob("requirements.txt")).read_text().split()
    assert "torch==2.13.0" in pins and "mlflow==3.17.2" in pins
    assert any(p.startswith("dosewise==") for p in pins) and all("==" in p for p in pins)


def test_fresh_process_predicts_what_the_policy_recommends(  # type: ignore[no-untyped-def]
    local_flow, icu_trajectories: Path, tmp_path: Path
) -> None:
    work, trained, _ = local_flow
    states = sample_states(icu_trajectories)
    out = predict_in_fresh_process("models:/sepsis-dosing@candidate", states, tmp_path, None, cwd=work)
    policy = load_policy(trained.result.policy_dir)
    np.testing.assert_array_equal(out["recommended_action"].to_numpy(), policy.recommend(states))
    q = out[[q_column(a, 25) for a in range(25)]].to_numpy()
    np.testing.assert_allclose(q, policy.q_values(states), rtol=1e-6)
    # No OPE was run for this version: support is unknown, so every row is flagged.
    assert out[SUPPORT_COLUMN].all() and out["behaviour_prob_recommended"].isna().all()
    pd.testing.assert_frame_equal(out, predict_recommendations(policy, states), check_dtype=True)


def test_registry_listing_loading_and_bad_requests(  # type: ignore[no-untyped-def]
    local_flow, icu_trajectories: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, trained, _ = local_flow
    monkeypatch.chdir(work)
    listed = list_registered_policies()
    assert [(r.name, r.version, r.run_id, r.aliases) for r in listed] == [
        ("sepsis-dosing", "1", trained.run_id, ("candidate",))]
    states = sample_states(icu_trajectories, 10)
    policy = load_registered_policy("models:/sepsis-dosing@candidate")
    np.testing.assert_array_equal(policy.recommend(states), load_policy(work / "policy").recommend(states))

    with pytest.raises(BadInputError, match=r"no version 7.*versions are 1"):
        alias_policy("sepsis-dosing", "7", "champion")
    _, bare_run = start_run(run_name="no-policy")
    with pytest.raises(BadInputError, match="no policy artefact"):
        register_policy(bare_run, "sepsis-dosing")
    with pytest.raises(BadInputError, match="not a registered-model URI"):
        load_registered_policy("sepsis-dosing@candidate")
    with pytest.raises(BadInputError, match="alias"):
        load_registered_policy("models:/sepsis-dosing@nobody")
