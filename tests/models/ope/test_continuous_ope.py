"""Continuous-action OPE against a continuous-dose MDP whose true values are computed here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import BadInputError, RunManifest
from dosewise.data_schemas.ope import OpeReport
from dosewise.models import OpeConfig, evaluate_policy
from dosewise.models.behaviour_density import BehaviourDoseDensity
from dosewise.models.constant_policy import constant_policy
from dosewise.models.ope.continuous import dose_kernel, kernel_density, pit_calibration
from dosewise.models.tracking.promotion import PromotionConfig, decide_promotion

from .continuous_mdp import DOSE, STATES, true_value, write_continuous_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("continuous") / "data"
    write_continuous_folder(folder, n_episodes=800, seed=3)
    return folder


def _config(**extra: object) -> OpeConfig:
    base = {"n_bootstrap": 400, "bca": False,
            "fqe": {"n_steps": 2000, "learning_rate": 1e-3, "target_update_interval": 100,
                    "bootstrap_refits": 0}}
    return OpeConfig.model_validate(base | extra)


@pytest.mark.slow
def test_constant_dose_intervals_cover_the_monte_carlo_truth(data: Path, tmp_path: Path) -> None:
    info = RunManifest.read(data).dataset
    assert info is not None
    report = evaluate_policy(data, constant_policy("constant:0.9", info), _config(), out_dir=tmp_path,
                             show_progress=False)
    truth = true_value(lambda x: np.full(len(x), 0.9))
    clinicians = true_value(None)
    assert report.action_space == "continuous"
    assert report.behaviour.source == "fitted_density"
    for name in ("WIS", "PDWIS"):
        est = report.estimate(name, "always rdi=0.9")
        assert est.ci_low - 0.03 <= truth <= est.ci_high + 0.03, (name, est, truth)  # 0.03: kernel bias
    assert abs(report.estimate("FQE", "always rdi=0.9").value - truth) < 0.15
    wis_clin = report.estimate("WIS", "clinicians")
    assert wis_clin.ci_low <= clinicians <= wis_clin.ci_high
    assert report.estimate("WIS", "clinicians").ess == pytest.approx(report.n_episodes)  # ratio 1
    calibration = report.behaviour.density_calibration
    assert calibration is not None and calibration.bandwidth[DOSE] > 0
    assert abs(calibration.interval_coverage["0.9"] - 0.9) < 0.04 and calibration.pit_ks < 0.06
    assert (tmp_path / "behaviour_calibration.png").stat().st_size > 0
    written = OpeReport.model_validate_json((tmp_path / "ope_report.json").read_text())
    assert written.action_space == "continuous"


def test_a_density_with_near_zero_mass_on_logged_doses_warns_and_records_the_floor(tmp_path: Path) -> None:
    write_continuous_folder(tmp_path / "data", n_episodes=400, seed=5, outlier_share=0.02)
    info = RunManifest.read(tmp_path / "data").dataset
    assert info is not None
    report = evaluate_policy(tmp_path / "data", constant_policy("constant:1.0", info),
                             _config(fqe={"enabled": False}), out_dir=tmp_path / "out", show_progress=False)
    floored = report.behaviour.n_floored
    assert floored >= 5  # ~2 % of 600 evaluated doses sit at 3.0, far outside the density
    assert any(f"{floored} of 600 logged doses have behaviour density mass below 0.001" in w
               for w in report.warnings)


def test_a_known_behaviour_density_gives_the_ratios(tmp_path: Path) -> None:
    write_continuous_folder(tmp_path / "data", n_episodes=800, seed=8, known_density=True)
    info = RunManifest.read(tmp_path / "data").dataset
    assert info is not None
    report = evaluate_policy(tmp_path / "data", constant_policy("constant:0.9", info),
                             _config(fqe={"enabled": False}), out_dir=tmp_path / "out", show_progress=False)
    assert report.behaviour.source == "logged_behaviour_density"
    decision = decide_promotion(report, PromotionConfig())
    assert decision.leaving_support == report.support.share_episodes_with_any  # not "unknown"
    wis = report.estimate("WIS", "always rdi=0.9")
    truth = true_value(lambda x: np.full(len(x), 0.9))
    assert wis.ci_low - 0.03 <= truth <= wis.ci_high + 0.03


def test_continuous_density_ratios_are_clipped_at_max_ratio_and_the_clip_recorded(data: Path, tmp_path: Path
                                                                                  ) -> None:
    info = RunManifest.read(data).dataset
    assert info is not None
    policy = constant_policy("constant:0.9", info)
    no_fqe = {"enabled": False}
    free = evaluate_policy(data, policy, _config(fqe=no_fqe, continuous={"max_ratio": None}),
                           out_dir=tmp_path / "free", show_progress=False)
    clipped = evaluate_policy(data, policy, _config(fqe=no_fqe, continuous={"max_ratio": 1.5}),
                              out_dir=tmp_path / "clipped", show_progress=False)
    target = "always rdi=0.9"
    by_target = {w.target: w for w in clipped.weights}
    assert free.max_weight is None and {w.n_clipped for w in free.weights} == {0}
    assert clipped.max_weight == 1.5 and by_target[target].n_clipped > 0
    assert by_target["clinicians"].n_clipped == 0  # their own ratios are 1
    n_steps = max(len(g) for _, g in pd.read_parquet(data / "trajectories.parquet").groupby("episode_id"))
    assert by_target[target].max <= 1.5 ** n_steps < {w.target: w for w in free.weights}[target].max
    assert any("clipped at 1.5 (`continuous.max_ratio`" in w for w in clipped.warnings)
    assert not any("clipped at" in w for w in free.warnings)
    assert clipped.estimate("WIS", target).value != free.estimate("WIS", target).value


def test_dr_clip_applies_to_dr_and_wdr_only_and_is_recorded(data: Path, tmp_path: Path) -> None:
    info = RunManifest.read(data).dataset
    assert info is not None
    policy = constant_policy("constant:0.9", info)
    fast_fqe = {"n_steps": 200, "learning_rate": 1e-3, "target_update_interval": 50, "bootstrap_refits": 0}
    runs = {}
    for name, clip in (("same", "none"), ("dr", 1.5)):
        config = _config(estimators=["WIS", "DR", "WDR", "FQE"], n_bootstrap=50, fqe=fast_fqe,
                         continuous={"max_ratio": "none", "dr_max_ratio": clip})
        runs[name] = evaluate_policy(data, policy, config, out_dir=tmp_path / name, show_progress=False)
    target = "always rdi=0.9"
    same, dr = runs["same"], runs["dr"]
    assert same.dr_max_weight is None and dr.dr_max_weight == 1.5 and dr.max_weight is None
    assert dr.estimate("WIS", target).value == same.estimate("WIS", target).value  # IS family unclipped
    assert dr.estimate("FQE", target).value == same.estimate("FQE", target).value
    assert dr.estimate("WDR", target).value != same.estimate("WDR", target).value
    assert dr.estimate("WIS", target).ess == same.estimate("WIS", target).ess
    assert dr.estimate("WDR", target).ess != same.estimate("WDR", target).ess  # the ratios WDR used
    assert any("Inside DR and WDR the ratios were clipped at 1.5" in w for w in dr.warnings)
    assert not any("Inside DR and WDR" in w for w in same.warnings)


def test_dr_ratio_clip_takes_the_smaller_setting_and_only_in_continuous_mode() -> None:
    config = OpeConfig.model_validate({"continuous": {"max_ratio": 20.0, "dr_max_ratio": 5.0}})
    assert (config.ratio_clip("continuous"), config.dr_ratio_clip("continuous")) == (20.0, 5.0)
    assert config.dr_ratio_clip("discrete") is None
    both = OpeConfig.model_validate({"max_weight": 3.0, "continuous": {"dr_max_ratio": 5.0}})
    assert both.dr_ratio_clip("continuous") == 3.0 and both.dr_ratio_clip("discrete") == 3.0
    unclipped = OpeConfig.model_validate({"continuous": {"dr_max_ratio": "none"}})
    assert unclipped.dr_ratio_clip("continuous") is None
    with pytest.raises(ValueError, match="greater than 0"):
        OpeConfig.model_validate({"continuous": {"dr_max_ratio": -1}})


def test_ratio_clip_takes_the_smaller_setting_and_max_ratio_only_in_continuous_mode() -> None:
    config = OpeConfig.model_validate({"continuous": {"max_ratio": 20.0}})
    assert config.ratio_clip("continuous") == 20.0 and config.ratio_clip("discrete") is None
    both = OpeConfig.model_validate({"max_weight": 8.0, "continuous": {"max_ratio": 20.0}})
    assert both.ratio_clip("continuous") == 8.0 and both.ratio_clip("discrete") == 8.0
    for off in (None, "none", "None"):  # TOML has no null: the string unclips
        assert OpeConfig.model_validate({"continuous": {"max_ratio": off}}).ratio_clip("continuous") is None
    with pytest.raises(ValueError, match="greater than 0"):
        OpeConfig.model_validate({"continuous": {"max_ratio": 0}})


def test_pit_check_detects_a_too_narrow_density() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 2))
    fitted = BehaviourDoseDensity().fit(x, np.exp(0.1 * x[:, :1] + 0.2 * rng.standard_normal((4000, 1))))
    wide = np.exp(0.1 * x[:, :1] + 0.5 * rng.standard_normal((4000, 1)))  # the clinicians vary more
    same = np.exp(0.1 * x[:, :1] + 0.2 * rng.standard_normal((4000, 1)))
    good = pit_calibration(fitted, x, same, 10, 0, {})
    bad = pit_calibration(fitted, x, wide, 10, 0, {})
    assert abs(good.interval_coverage["0.9"] - 0.9) < 0.02
    assert bad.interval_coverage["0.9"] < 0.6 and bad.pit_ks > 0.1


def test_kernel_density_integrates_to_one_over_positive_doses() -> None:
    def density(a: float, centre: float) -> float:
        return float(kernel_density(np.array([[a]]), np.array([[centre]]), np.array([0.1]))[0])

    for centre in (0.05, 1.0):
        total, _ = integrate.quad(density, 0.0, 3.0, args=(centre,), points=[centre])
        assert total == pytest.approx(1.0, abs=1e-6)
    assert kernel_density(np.array([[0.0]]), np.array([[1.0]]), np.array([0.1]))[0] == 0.0


def test_proportional_kernel_scales_its_width_with_the_dose() -> None:
    fit = pd.DataFrame({"rdi": [0.0, 0.5, 1.0, 1.0, 1.0]})  # median non-zero dose 1.0
    def kernel(**extra: str):  # type: ignore[no-untyped-def]
        config = OpeConfig.model_validate({"continuous": {"bandwidth": {"rdi": 0.1}, **extra}})
        return dose_kernel(config, fit, ["rdi"])

    proportional, absolute = kernel(kernel_scale="proportional"), kernel()
    assert absolute.reference is None and proportional.reference is not None
    assert proportional.reference.tolist() == [1.0]
    at = np.array([[1.0], [0.5], [0.55], [0.0]])
    centre = np.array([[1.0], [0.5], [0.5], [0.0]])
    prop, abso = proportional.density(at, centre), absolute.density(at, centre)
    assert prop[0] == pytest.approx(abso[0])  # at the reference dose the two kernels agree
    # at half the dose the kernel's sd is 0.05: twice as tall at its centre, a 1-sd step is 0.05 away
    assert prop[1] == pytest.approx(2 * abso[1], rel=1e-6)
    assert prop[2] == pytest.approx(kernel_density(at[2:3], centre[2:3], np.array([0.05]))[0])
    assert prop[3] == abso[3] == 1.0  # a hold stays a point mass
    def density(a: float, c: float) -> float:
        return float(proportional.density(np.array([[a]]), np.array([[c]]))[0])

    for c in (0.3, 1.2):  # and it stays a density over positive doses
        total, _ = integrate.quad(density, 0.0, 3.0, args=(c,), points=[c])
        assert total == pytest.approx(1.0, abs=1e-6)


def test_constant_specs_parse_against_the_dataset(data: Path) -> None:
    info = RunManifest.read(data).dataset
    assert info is not None
    assert constant_policy("constant:3", info).action_space == "discrete"
    dose = constant_policy(f"constant:{DOSE}=1.25", info)
    assert dose.action_space == "continuous" and dose.recommend_doses(
        pd.DataFrame({s: [0.0] for s in STATES}))[DOSE].tolist() == [1.25]
    for bad, match in (("constant:7", "0..4"), ("constant:dose=1", "exactly"), ("constant:", "needs"),
                       ("constant:-1.0", ">= 0")):
        with pytest.raises(BadInputError, match=match):
            constant_policy(bad, info)


def test_evaluate_cli_constant_dose_and_mismatched_action_spaces(data: Path, tmp_path: Path) -> None:
    from dosewise.pipelines import write_icu_sepsis_episodes

    runner = CliRunner()
    common = ["--set", "fqe.enabled=false", "--set", "n_bootstrap=50", "--no-track"]
    ok = runner.invoke(app, ["evaluate", "--trajectories", str(data), "--policy", "constant:1.0",
                             "--out", str(tmp_path / "ok"), *common])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "ok" / "ope_report.json").is_file() and "always rdi=1" in ok.output
    write_icu_sepsis_episodes(tmp_path / "sim", 30, seed=0)
    continuous_on_discrete = runner.invoke(app, ["evaluate", "--trajectories", str(tmp_path / "sim"),
                                                 "--policy", "constant:1.0", "--out", str(tmp_path / "a"),
                                                 *common])
    assert continuous_on_discrete.exit_code == 2
    message = continuous_on_discrete.output
    assert "continuous policy" in message and "discrete" in message
    discrete_as_continuous = runner.invoke(app, ["evaluate", "--trajectories", str(data), "--policy",
                                                 "constant:2", "--out", str(tmp_path / "b"),
                                                 "--set", "action_space=continuous", *common])
    assert discrete_as_continuous.exit_code == 2
    assert "is discrete" in discrete_as_continuous.output
