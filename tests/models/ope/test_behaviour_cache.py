"""`behaviour.cache_dir`: the behaviour model is fitted once per (trajectories, behaviour config) and
loaded by later evaluations, with the same estimates as a fresh fit; other data or config refit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dosewise.models import OpeConfig
from dosewise.models.constant_policy import constant_policy
from dosewise.models.datasets import LoadedTrajectories
from dosewise.models.ope import prepare
from dosewise.models.ope.report import estimate_policy_value
from dosewise.pipelines import write_icu_sepsis_episodes

FAST = {"estimators": ["WIS"], "n_bootstrap": 50, "bca": False, "fqe": {"enabled": False}}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedTrajectories:
    data = tmp_path_factory.mktemp("cache") / "data"
    write_icu_sepsis_episodes(data, 120, behaviour="clinician", seed=21)
    return LoadedTrajectories.read(data)


def _values(report: object) -> list[tuple[str, str, float]]:
    return [(e.estimator, e.target, e.value) for e in report.estimates]  # type: ignore[attr-defined]


def test_cached_behaviour_model_is_fitted_once_and_gives_the_same_estimates(
    loaded: LoadedTrajectories, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fits: list[int] = []
    real = prepare.fit_behaviour_model
    monkeypatch.setattr(prepare, "fit_behaviour_model", lambda *a, **k: fits.append(1) or real(*a, **k))
    policy = constant_policy("constant:3", loaded.info)
    plain = estimate_policy_value(loaded, policy, OpeConfig.model_validate(FAST), split="validation",
                                  show_progress=False).report
    cached_config = OpeConfig.model_validate({**FAST, "behaviour": {"cache_dir": str(tmp_path)}})
    first, second = (estimate_policy_value(loaded, policy, cached_config, split=split,
                                           show_progress=False).report for split in ("validation", "test"))
    assert len(fits) == 2  # the plain evaluation and the first cached one; the second loaded it
    assert plain.behaviour.cache == "off" and plain.behaviour.cache_key is None
    assert (first.behaviour.cache, second.behaviour.cache) == ("fitted", "loaded")
    assert first.behaviour.cache_key == second.behaviour.cache_key
    assert first.behaviour.model_sha256 == second.behaviour.model_sha256
    assert _values(first) == _values(plain)
    record = json.loads((tmp_path / f"{first.behaviour.cache_key}.json").read_text())
    assert record["inputs"]["trajectories_manifest_sha256"] == loaded.manifest_sha256

    other = OpeConfig.model_validate({**FAST, "behaviour": {"cache_dir": str(tmp_path), "cv": 2}})
    refit = estimate_policy_value(loaded, policy, other, split="validation", show_progress=False).report
    assert refit.behaviour.cache == "fitted" and refit.behaviour.cache_key != first.behaviour.cache_key
    assert len(fits) == 3


def test_altered_cached_model_is_refitted(loaded: LoadedTrajectories, tmp_path: Path) -> None:
    config = OpeConfig.model_validate({**FAST, "behaviour": {"cache_dir": str(tmp_path)}})
    policy = constant_policy("constant:3", loaded.info)
    first = estimate_policy_value(loaded, policy, config, split="validation", show_progress=False).report
    model_file = tmp_path / f"{first.behaviour.cache_key}.joblib"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    again = estimate_policy_value(loaded, policy, config, split="validation", show_progress=False).report
    assert again.behaviour.cache == "fitted" and again.behaviour.model_sha256 == first.behaviour.model_sha256
