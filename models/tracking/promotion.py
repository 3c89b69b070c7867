"""The promotion gate: a policy becomes `champion` only when off-policy evaluation says it
beats the clinicians with enough effective data behind the estimate.

The rule follows AI Clinician (Komorowski et al. 2018, Nat Med): compare the learned policy's
95 % lower bound with the clinicians' estimated value, and demand enough effective sample size
for the importance weights to mean something (Gottesman et al. 2019, Guidelines for RL in
healthcare), and keep to the clinicians' support: a policy whose episodes often reach actions the
clinicians (almost) never took has a value no data show (the report's support bounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from dosewise.data_schemas import BadInputError, StrictConfig
from dosewise.data_schemas.ope import OpeEstimate, OpeReport

CLINICIANS = "clinicians"


class PromotionConfig(StrictConfig):
    """When a registered policy version may take the `champion` alias."""

    kind: Literal["promotion"] = Field(default="promotion", description="Config kind.")
    estimator: Literal["IS", "WIS", "PDIS", "PDWIS", "DR", "WDR", "FQE"] = Field(
        default="WIS", description="OPE estimator whose lower bound decides."
    )
    bound: Literal["lower_bound_95", "ci_low"] = Field(
        default="lower_bound_95",
        description="`lower_bound_95`: one-sided 95 % bootstrap bound; `ci_low`: lower end of the "
        "two-sided interval.",
    )
    margin: float = Field(
        default=0.01, ge=0,
        description="How much the policy's lower bound must exceed the clinicians' value, in "
        "return units (0.01 = one percentage point of survival for a 0/1 survival reward).",
    )
    min_ess: float = Field(
        default=50.0, ge=0, description="Smallest effective sample size (Kish, episodes) accepted."
    )
    max_leaving_support: float = Field(
        default=0.2, ge=0, le=1,
        description="Largest estimated share of episodes that reach an out-of-support action (the OPE "
        "report's support bounds); above it the policy's value rests on outcomes no data show.",
    )
    ess_estimator: Literal["IS", "WIS", "PDIS", "PDWIS", "DR", "WDR"] = Field(
        default="WIS",
        description="Estimator whose ESS is used when `estimator` has none (FQE has no weights).",
    )
    split: Literal["train", "validation", "test"] = Field(
        default="test", description="Split the version's latest OPE report must be on (held-out data)."
    )
    alias: str = Field(default="champion", description="Alias moved when the gate passes.")


@dataclass(frozen=True)
class PromotionDecision:
    """The numbers the gate compared and whether the version passed."""

    policy_bound: float
    clinician_value: float
    margin: float
    ess: float | None
    min_ess: float
    estimator: str
    bound: str
    leaving_support: float | None = None
    max_leaving_support: float = 1.0

    @property
    def beats_clinicians(self) -> bool:
        """Lower bound > clinicians' value + margin."""
        return self.policy_bound > self.clinician_value + self.margin

    @property
    def enough_ess(self) -> bool:
        """ESS known and at least the minimum."""
        return self.ess is not None and self.ess >= self.min_ess

    @property
    def within_support(self) -> bool:
        """The share of episodes leaving the support is known and at most the maximum."""
        return self.leaving_support is not None and self.leaving_support <= self.max_leaving_support

    @property
    def passed(self) -> bool:
        """All three conditions hold."""
        return self.beats_clinicians and self.enough_ess and self.within_support

    def describe(self) -> str:
        """The comparison in one sentence, with every number."""
        ess = "unknown" if self.ess is None else f"{self.ess:.1f}"
        leaving = ("unknown (re-run dosewise evaluate)" if self.leaving_support is None
                   else f"{100 * self.leaving_support:.1f} %")
        return (
            f"{self.estimator} {self.bound} {self.policy_bound:.4f} vs clinicians "
            f"{self.clinician_value:.4f} + margin {self.margin:.4f} = "
            f"{self.clinician_value + self.margin:.4f} ({'passes' if self.beats_clinicians else 'fails'}); "
            f"ESS {ess} vs minimum {self.min_ess:.1f} ({'passes' if self.enough_ess else 'fails'}); "
            f"episodes leaving the clinicians' support {leaving} vs maximum "
            f"{100 * self.max_leaving_support:.1f} % ({'passes' if self.within_support else 'fails'})"
        )


class PromotionRefused(BadInputError):
    """The OPE gate did not pass: the alias was not moved (exit code 2)."""

    def __init__(self, message: str, hint: str, decision: PromotionDecision) -> None:
        super().__init__(message, hint)
        self.decision = decision


def decide_promotion(report: OpeReport, config: PromotionConfig) -> PromotionDecision:
    """Compare the policy's bound with the clinicians' value in one OPE report."""
    if report.split != config.split:
        raise BadInputError(
            f"The latest OPE report of this version is on the `{report.split}` split; the gate reads "
            f"`{config.split}`.",
            f"Run `dosewise evaluate --split {config.split}` on the version, or set `split` in the "
            "promotion config.",
        )
    policy = _estimate(report, config.estimator, report.policy_name)
    clinicians = _estimate(report, config.estimator, CLINICIANS)
    ess = policy.ess
    if ess is None:
        ess = _estimate(report, config.ess_estimator, report.policy_name).ess
    leaving = next((b.share_leaving_support for b in report.support_bounds
                    if b.target == report.policy_name), None)
    if leaving is None and report.action_space == "continuous":
        # dose policies have no support bounds: the share of evaluated episodes with any
        # recommendation out of the clinicians' support stands in for it
        leaving = report.support.share_episodes_with_any
    return PromotionDecision(
        policy_bound=float(getattr(policy, config.bound)),
        clinician_value=float(clinicians.value),
        margin=config.margin,
        ess=None if ess is None else float(ess),
        min_ess=config.min_ess,
        estimator=config.estimator,
        bound=config.bound,
        leaving_support=leaving,
        max_leaving_support=config.max_leaving_support,
    )


def _estimate(report: OpeReport, estimator: str, target: str) -> OpeEstimate:
    try:
        return report.estimate(estimator, target)
    except KeyError:
        available = sorted({f"{e.estimator} for {e.target}" for e in report.estimates})
        raise BadInputError(
            f"The OPE report has no {estimator} estimate for `{target}` (it has: {', '.join(available)}).",
            "Re-run `dosewise evaluate` with that estimator enabled, or set `estimator` in the "
            "promotion config to one the report has.",
        ) from None
