"""Bad input to OPE: mismatched features, zero behaviour probabilities, missing splits, tiny data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dosewise.data_schemas import BadInputError, TrajectoryDatasetInfo, read_trajectories
from dosewise.models import OpeConfig, evaluate_policy
from dosewise.models.ope.config import BehaviourConfig
from dosewise.models.ope.inputs import behaviour_probabilities, fit_behaviour_model
from dosewise.pipelines import optimal_policy, write_icu_sepsis_episodes
from tests.models.ope.tabular_policy import FEATURES, TabularPolicy

FAST = {"n_bootstrap": 50, "fqe": {"enabled": False}}


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("icu_sepsis_small")
    write_icu_sepsis_episodes(folder, 60, behaviour="clinician", seed=5)
    return folder


def test_features_in_another_order_are_refused(small_dir: Path, tmp_path: Path) -> None:
    policy = TabularPolicy("optimal", optimal_policy(), feature_names=FEATURES[::-1])
    with pytest.raises(BadInputError, match="different order"):
        evaluate_policy(small_dir, policy, OpeConfig.model_validate(FAST), out_dir=tmp_path)


def test_unknown_features_are_refused(small_dir: Path, tmp_path: Path) -> None:
    policy = TabularPolicy("optimal", optimal_policy(), feature_names=[*FEATURES[:-1], "lactate_mmol_l"])
    with pytest.raises(BadInputError, match="lacks"):
        evaluate_policy(small_dir, policy, OpeConfig.model_validate(FAST), out_dir=tmp_path)


def test_another_action_count_is_refused(small_dir: Path, tmp_path: Path) -> None:
    policy = TabularPolicy("wide", np.full((716, 30), 1 / 30))
    with pytest.raises(BadInputError, match="30 actions"):
        evaluate_policy(small_dir, policy, OpeConfig.model_validate(FAST), out_dir=tmp_path)


def test_missing_split_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "no_test"
    write_icu_sepsis_episodes(folder, 30, seed=1, split_fractions=(1.0, 0.0, 0.0))
    with pytest.raises(BadInputError, match=r"Split `test`.*no episodes"):
        evaluate_policy(folder, TabularPolicy("optimal", optimal_policy()),
                        OpeConfig.model_validate(FAST), split="test", out_dir=tmp_path / "out")


def test_too_few_episodes_warn_in_the_report(small_dir: Path, tmp_path: Path) -> None:
    report = evaluate_policy(small_dir, TabularPolicy("optimal", optimal_policy()),
                             OpeConfig.model_validate(FAST), split="test", out_dir=tmp_path)
    assert report.n_episodes < 100
    assert "bootstrap intervals are not meaningful" in report.warnings[0]
    assert any("FQE is disabled" in w for w in report.warnings)
    assert {e.estimator for e in report.estimates} == {"IS", "WIS", "PDIS", "PDWIS"}


def _unseen_action_rows(small_dir: Path):
    frame, manifest = read_trajectories(small_dir)
    info = manifest.dataset
    assert isinstance(info, TrajectoryDatasetInfo)
    unseen = int(frame["action"].value_counts().index[-1])
    fit_rows = frame[frame["action"] != unseen]
    return fit_rows, frame[frame["action"] == unseen], info


def test_zero_behaviour_probability_is_an_error_without_a_floor(small_dir: Path) -> None:
    fit_rows, rows, info = _unseen_action_rows(small_dir)
    config = BehaviourConfig(use_logged_prob=False, min_prob=0.0, calibration="none")
    model = fit_behaviour_model(fit_rows, FEATURES, config, seed=0)
    with pytest.raises(BadInputError, match="behaviour probability 0"):
        behaviour_probabilities(model, rows, FEATURES, info, config)


def test_zero_behaviour_probability_is_floored_and_reported(small_dir: Path) -> None:
    fit_rows, rows, info = _unseen_action_rows(small_dir)
    config = BehaviourConfig(use_logged_prob=False, min_prob=0.002, calibration="none")
    model = fit_behaviour_model(fit_rows, FEATURES, config, seed=0)
    probs = behaviour_probabilities(model, rows, FEATURES, info, config)
    assert probs.source == "fitted_classifier"
    assert probs.n_floored == len(rows)
    assert (probs.logged == 0.002).all()
    assert "raised to it" in probs.warnings[0]



def test_a_single_fqe_refit_is_refused_with_what_to_use_instead() -> None:
    from dosewise.data_schemas import ConfigError, load_config
    from dosewise.models import config_folder

    with pytest.raises(ConfigError, match="at least 2"):
        load_config("ope_default", OpeConfig, ["fqe.bootstrap_refits=1"], search=[config_folder()])
    assert load_config("ope_default", OpeConfig, ["fqe.bootstrap_refits=2"],
                       search=[config_folder()]).fqe.bootstrap_refits == 2
