"""An ETL output that does not fit the training config is exit 2 before any training starts:
`dosewise run` and `dosewise sweep` both check the trajectories' manifest against it first."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dosewise import pipelines
from dosewise.app.cli import app
from dosewise.app.pipeline.checks import check_training_fits
from dosewise.data_schemas import ConfigError
from dosewise.models import TrainConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 ICU-Sepsis episodes, all in train: 25 discrete actions, no dose columns."""
    folder = tmp_path_factory.mktemp("fits") / "episodes"
    pipelines.write_icu_sepsis_episodes(folder, 100, seed=11, split_fractions=(1.0, 0.0, 0.0))
    return folder


@pytest.mark.parametrize(("change", "message"), [
    ({"algorithm": {"name": "td3_plus_bc"}}, "needs dose columns"),
    ({"mask": {"forbidden_actions": [3, 25]}}, "must lie in [0, 24]"),
    ({"features": ["sofa_24h"]}, "must be state columns"),
    ({"split": "validation"}, "must have episodes in the ETL output"),
])
def test_action_space_features_and_split_must_fit(episodes: Path, change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_training_fits(episodes, TrainConfig.model_validate(change))


def test_sweep_refuses_an_unfit_training_config_before_ray(episodes: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = runner.invoke(app, ["sweep", "--config", "sweep_demo", "--set", f"out={str(out)!r}",
                                 "--set", "data.kind='path'", "--set", f"data.path={str(episodes)!r}",
                                 "--set", "train.config=td3_plus_bc",
                                 "--set", "search.space={\"algorithm.alpha\" = [1.0]}"])
    assert result.exit_code == 2 and "needs dose columns" in result.output
    assert not (out / "tune").exists() and not (out / "trials").exists()  # no trial was started
