"""The off-policy evaluation contract: the estimates table and the `ope_report.json` model.

`OpeReport` is what `dosewise evaluate` writes and what the registry gate and the review app read:
every value comes with its interval, effective sample size, support and the behaviour model used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict, Field

ESTIMATORS = ("IS", "WIS", "PDIS", "PDWIS", "DR", "WDR", "FQE")
MIN_ESS_SHARE = 0.05  # below this share of the episodes the report warns that an estimate rests on few
# tabular FQE's coverage was shown (bench/ope_coverage.py --fqe-intervals, 30 reps) up to this share of
# a target's steps on never-logged (state, action) pairs: epsilon-greedy optimal, 16.8 % on average, 97 %
TABULAR_FQE_SHOWN_SHARE = 0.17
DEFAULT_MIN_EPISODES = 100  # OpeConfig.min_episodes, for reports that do not record it
BEHAVIOUR_SOURCES = (
    "logged_behaviour_prob", "fitted_classifier", "logged_behaviour_density", "fitted_density",
)

OpeEstimateSchema = pa.DataFrameSchema(
    {
        "estimator": pa.Column(str, pa.Check.isin(list(ESTIMATORS)), nullable=False),
        "target": pa.Column(str, nullable=False),
        "value": pa.Column(float, pa.Check(lambda s: np.isfinite(s)), nullable=False),
        "ci_low": pa.Column(float, nullable=False),
        "ci_high": pa.Column(float, nullable=False),
        "lower_bound_95": pa.Column(float, nullable=False),
        "bca_low": pa.Column(float, nullable=True),
        "bca_high": pa.Column(float, nullable=True),
        "ess": pa.Column(float, pa.Check.ge(0), nullable=True),
        "ess_share": pa.Column(float, pa.Check.in_range(0.0, 1.0 + 1e-9), nullable=True),
        "n_episodes": pa.Column("int64", pa.Check.ge(1), nullable=False),
        "refit_sd": pa.Column(float, pa.Check.ge(0.0), nullable=True),
    },
    checks=[
        pa.Check(lambda f: f["ci_low"] <= f["ci_high"] + 1e-12, error="ci_low must be <= ci_high"),
        pa.Check(
            lambda f: f["ess"].isna() | (f["ess"] <= f["n_episodes"] + 1e-6),
            error="ess must not exceed n_episodes",
        ),
    ],
    strict=True,
    name="OpeEstimateSchema",
)


class OpeEstimate(BaseModel):
    """One estimator's value for one target policy, with its bootstrap interval and ESS."""

    model_config = ConfigDict(extra="forbid")

    estimator: Literal["IS", "WIS", "PDIS", "PDWIS", "DR", "WDR", "FQE"]
    target: str = Field(description="Which policy: the learned policy's name or `clinicians`.")
    value: float = Field(description="Point estimate of the policy value (expected return).")
    ci_low: float = Field(description="Lower end of the percentile bootstrap interval.")
    ci_high: float = Field(description="Upper end of the percentile bootstrap interval.")
    lower_bound_95: float = Field(
        description="5th bootstrap percentile: the one-sided '95 % lower bound' of AI Clinician."
    )
    bca_low: float | None = Field(default=None, description="BCa interval, lower end.")
    bca_high: float | None = Field(default=None, description="BCa interval, upper end.")
    ess: float | None = Field(default=None, ge=0, description="Kish effective sample size.")
    ess_share: float | None = Field(default=None, ge=0, le=1.000001, description="ESS / n.")
    n_episodes: int = Field(ge=1)
    refit_sd: float | None = Field(
        default=None, ge=0,
        description="FQE: robust spread (1.4826 x median absolute deviation) of the value over FQE refits "
        "on bootstrap resamples, added to the interval; None for other estimators and when FQE was not "
        "refitted.",
    )


class WeightSummary(BaseModel):
    """Distribution of one target's trajectory importance weights."""

    model_config = ConfigDict(extra="forbid")

    target: str
    n_episodes: int = Field(ge=1)
    mean: float
    median: float
    p99: float
    max: float
    share_zero: float = Field(ge=0, le=1, description="Episodes whose weight is exactly zero.")
    n_clipped: int = Field(ge=0, description="Per-step ratios cut down to `max_weight`.")


class DensityCalibration(BaseModel):
    """Held-out calibration of a continuous behaviour (dose) density: the probability integral
    transform u = F(a | s) of each logged dose is uniform when the density is calibrated (randomised
    at point masses such as a zero dose; Czado, Gneiting & Held 2009)."""

    model_config = ConfigDict(extra="forbid")

    pit_histogram: list[float] = Field(description="Share of logged doses per equal-width PIT bin; "
                                       "calibrated: 1 / bins each.")
    pit_ks: float = Field(ge=0, le=1, description="Kolmogorov-Smirnov distance of the PITs from uniform.")
    interval_coverage: dict[str, float] = Field(
        description="Nominal level -> share of logged doses inside the central predictive interval.")
    mean_log_density: float = Field(description="Mean log density of the logged doses (held out).")
    n_doses: int = Field(ge=0, description="Logged dose values behind the PITs (rows x dose columns).")
    bandwidth: dict[str, float] = Field(description="Kernel bandwidth of the smoothed target per dose "
                                        "column, in its units.")


class ActionPropensity(BaseModel):
    """One action's behaviour probability: known (when logged) beside the fitted model's."""

    model_config = ConfigDict(extra="forbid")

    action: int = Field(ge=0)
    label: str | None = Field(default=None, description="The action's name (a trial arm) when it has one.")
    n_logged: int = Field(ge=0, description="Evaluated steps that logged this action.")
    known: float | None = Field(
        default=None, description="Mean known `behaviour_prob` of the steps that logged it (a trial's "
        "randomisation probability); None without known probabilities.")
    fitted: float = Field(description="The fitted model's P(action | state), mean over the evaluated steps.")
    ci_low: float | None = Field(
        default=None, description="Percentile interval of `fitted` over refits of the model on episode "
        "resamples of its fit split (behaviour.propensity_refits).")
    ci_high: float | None = None


class BehaviourModelInfo(BaseModel):
    """Which behaviour probabilities the weights used, and how good the fitted model is."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["logged_behaviour_prob", "fitted_classifier", "logged_behaviour_density",
                    "fitted_density"] = Field(
        description="`logged_behaviour_prob`: known logging probabilities from the trajectories; "
        "`fitted_classifier`: the calibrated classifier fitted on the train split; continuous-action OPE: "
        "`logged_behaviour_density` (known density of the logged dose) or `fitted_density` (the "
        "conditional dose density fitted on the train split)."
    )
    estimator: str = Field(description="The classifier's base estimator and calibration.")
    fitted_on: str = Field(description="Split the classifier was fitted on.")
    n_fit_rows: int = Field(ge=0)
    heldout_split: str
    heldout_log_loss: float
    heldout_ece: float = Field(ge=0, description="Expected calibration error (top-label, 15 bins).")
    heldout_accuracy: float = Field(ge=0, le=1)
    min_behaviour_prob: float = Field(ge=0, description="Floor applied to behaviour probabilities.")
    n_floored: int = Field(ge=0, description="Logged actions whose probability was raised to the floor.")
    model_file: str | None = None
    density_calibration: DensityCalibration | None = Field(
        default=None, description="Continuous-action OPE: PIT and predictive-interval coverage of the "
        "dose density (the log-loss, ECE and accuracy above are of its integral over the dose bins).")
    by_action: list[ActionPropensity] = Field(
        default_factory=list, description="Discrete OPE: per action, the known and the fitted probability "
        "(for a randomised trial both should be the randomisation probability).")
    propensity_refits: int = Field(default=0, ge=0, description="Refits behind the `by_action` intervals.")
    cache: Literal["off", "fitted", "loaded"] = Field(
        default="off", description="`behaviour.cache_dir`: `fitted` (fitted here and stored under "
        "`cache_key`), `loaded` (the model stored under `cache_key` by an earlier evaluation of the same "
        "data and config), `off` (no cache: fitted here).")
    cache_key: str | None = Field(
        default=None, description="SHA-256 of what the model depends on (trajectories manifest, fit split, "
        "features, behaviour config, seed, code version); equal keys mean the same model.")
    model_sha256: str | None = Field(default=None, description="SHA-256 of the cached model's joblib file.")


class SupportSummary(BaseModel):
    """How often the policy recommends actions the clinicians rarely took."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(gt=0, lt=1)
    share_steps_out_of_support: float = Field(ge=0, le=1)
    share_episodes_with_any: float = Field(ge=0, le=1)
    mean_share_per_episode: float = Field(ge=0, le=1)
    n_steps: int = Field(ge=0)


class SupportBounds(BaseModel):
    """The values a target can have given the data, whatever its out-of-support actions lead to
    (partial identification; see `models/ope/bounds.py`)."""

    model_config = ConfigDict(extra="forbid")

    target: str
    value_low: float = Field(description="Estimated value if every episode that reaches an out-of-support "
                             "action ends with the lowest return.")
    value_high: float = Field(description="The same with the highest return.")
    ci_low: float = Field(description="Lower end of the lower bound's bootstrap interval.")
    ci_high: float = Field(description="Upper end of the upper bound's bootstrap interval.")
    return_low: float = Field(description="Lowest episode return assumed possible.")
    return_high: float = Field(description="Highest episode return assumed possible.")
    return_range_source: Literal["configured", "observed"]
    share_leaving_support: float = Field(
        ge=0, le=1, description="Estimated chance that an episode under the policy reaches an "
        "out-of-support action.")
    threshold: float = Field(gt=0, lt=1, description="Clinicians' probability below which an action "
                             "is out of support.")


class FqeSupport(BaseModel):
    """How much of one target's FQE value the fit data show (tabular FQE; see models/ope/fqe_tabular.py)."""

    model_config = ConfigDict(extra="forbid")

    target: str
    method: Literal["tabular", "neural"]
    n_states: int = Field(ge=0, description="Distinct states tabular FQE solved over.")
    never_logged_steps: float = Field(
        ge=0, description="Expected steps per episode of the target on (state, action) pairs the fit data "
        "never log; they take the state's pooled logged transitions (an assumption).")
    never_logged_share: float = Field(
        ge=0, le=1 + 1e-9, description="never_logged_steps as a share of the target's expected steps.")
    unknown_share: float = Field(
        ge=0, le=1 + 1e-9, description="Estimated share of the target's episodes that reach a state the fit "
        "data cannot value (never seen, or a loop never left); the interval spans the whole return range "
        "for them.")


class BootstrapInfo(BaseModel):
    """How the intervals were computed."""

    model_config = ConfigDict(extra="forbid")

    n_resamples: int = Field(ge=1)
    seed: int
    confidence: float = Field(gt=0, lt=1)
    unit: Literal["episode"] = "episode"
    fqe_refits: int = Field(default=0, ge=0, description="FQE refits behind the FQE/DR/WDR intervals.")
    fqe_note: str = ""
    fqe_method: Literal["tabular", "neural", ""] = Field(
        default="", description="The FQE that ran (`fqe.method` resolved); empty when FQE was not fitted.")


class OpeReport(BaseModel):
    """`ope_report.json`: every estimate with its interval, ESS, support and behaviour model."""

    model_config = ConfigDict(extra="forbid")

    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    policy_name: str
    trajectories: str
    split: str
    n_episodes: int = Field(ge=1)
    n_steps: int = Field(ge=1)
    gamma: float = Field(ge=0, le=1)
    epsilon: float = Field(ge=0, le=1, description="Softening of the learned policy (ε-greedy).")
    max_weight: float | None = Field(description="Per-step importance ratio clip; None = no clipping.")
    dr_max_weight: float | None = Field(
        default=None, description="Per-step ratio clip inside DR and WDR where it differs from `max_weight` "
        "(continuous mode, `continuous.dr_max_ratio`); None = the same as `max_weight`.")
    action_space: Literal["discrete", "continuous"] = Field(
        default="discrete", description="Discrete: ratios of action probabilities; continuous: ratios "
        "of a kernel-smoothed target density to the behaviour dose density.")
    estimates: list[OpeEstimate]
    weights: list[WeightSummary]
    behaviour: BehaviourModelInfo
    support: SupportSummary
    support_bounds: list[SupportBounds] = Field(
        default_factory=list, description="Per target: the range of values the data allow.")
    bootstrap: BootstrapInfo
    fqe_support: list[FqeSupport] = Field(default_factory=list, description="Per target, tabular FQE only.")
    warnings: list[str] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict, description="Output name -> file name.")
    config: dict[str, Any] = Field(default_factory=dict)

    def estimates_frame(self) -> pd.DataFrame:
        """The estimates as a table validated by `OpeEstimateSchema`."""
        frame = pd.DataFrame([e.model_dump() for e in self.estimates], columns=ESTIMATE_COLUMNS)
        frame["n_episodes"] = frame["n_episodes"].astype("int64")
        for name in ESTIMATE_COLUMNS[2:]:
            if name != "n_episodes":
                frame[name] = frame[name].astype(float)
        validated: pd.DataFrame = OpeEstimateSchema.validate(frame)
        return validated

    def reliability(self, item: OpeEstimate) -> str | None:
        """None when `item` passes every check the report warns about; else "not reliable: ..." with
        each failed check and its number (ESS share, episode count, support; FQE: see `_fqe_reasons`).

        A number failing one of them must not be shown as an improvement (no delta arrow, no "passes"):
        its interval does not mean what it says."""
        reasons = []
        if item.ess is not None and item.ess < MIN_ESS_SHARE * item.n_episodes:
            reasons.append(f"ESS {item.ess:.1f} of {item.n_episodes} episodes")
        min_episodes = int(self.config.get("min_episodes", DEFAULT_MIN_EPISODES))
        if item.n_episodes < min_episodes:
            reasons.append(f"only {item.n_episodes} episodes (fewer than {min_episodes})")
        bounds = next((b for b in self.support_bounds if b.target == item.target), None)
        if bounds is not None and bounds.value_high - bounds.value_low > item.ci_high - item.ci_low:
            reasons.append(f"{100 * bounds.share_leaving_support:.0f} % of episodes leave the clinicians' "
                           f"support, where the data allow any value in [{bounds.value_low:.3f}, "
                           f"{bounds.value_high:.3f}]")
        if item.estimator == "FQE":
            reasons += self._fqe_reasons(item)
        return f"not reliable: {'; '.join(reasons)}" if reasons else None

    def _fqe_reasons(self, item: OpeEstimate) -> list[str]:
        """An FQE interval counts as reliable only where its method's coverage was shown: tabular FQE
        with refits, on a target whose share of never-logged (state, action) steps is within what the
        coverage bench measured (bench/ope_coverage.py --fqe-intervals). The neural FQE's interval
        covered the exact ICU-Sepsis value in 40-53 % of replications even with refits."""
        if not self.bootstrap.fqe_refits:
            return ["one FQE fit: its interval leaves out the error of fitting it"]
        if self.bootstrap.fqe_method != "tabular":
            return ["the neural FQE's interval leaves out its fitting bias: with refits it covered the exact "
                    "ICU-Sepsis value in 40-53 % of bench/ope_coverage.py's replications; use DR/WDR, or "
                    "tabular FQE where the states repeat"]
        support = next((s for s in self.fqe_support if s.target == item.target), None)
        if support is not None and support.never_logged_share > TABULAR_FQE_SHOWN_SHARE:
            return [f"{100 * support.never_logged_share:.0f} % of the target's steps are (state, action) "
                    "pairs the fit data never log, valued as the clinicians' mix in that state; tabular "
                    f"FQE's coverage was shown up to {100 * TABULAR_FQE_SHOWN_SHARE:.0f} %"]
        return []

    def estimate(self, estimator: str, target: str) -> OpeEstimate:
        """The estimate of `estimator` for `target` (KeyError when absent)."""
        for item in self.estimates:
            if item.estimator == estimator and item.target == target:
                return item
        raise KeyError(f"{estimator} for {target}")


ESTIMATE_COLUMNS = list(OpeEstimate.model_fields)
