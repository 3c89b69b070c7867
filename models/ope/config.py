"""`OpeConfig`: how `dosewise evaluate` estimates a policy's value and how far to trust it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dosewise.data_schemas import StrictConfig

Estimator = Literal["IS", "WIS", "PDIS", "PDWIS", "DR", "WDR", "FQE"]


class BehaviourConfig(StrictConfig):
    """The behaviour (clinicians') policy model."""

    use_logged_prob: bool = Field(
        default=True,
        description="Use the trajectories' `behaviour_prob` column (known logging probabilities) for "
        "the weights when present; the fitted classifier still gives the clinicians' full policy.",
    )
    model: Literal["classifier", "dose_density"] = Field(
        default="classifier",
        description="`classifier`: calibrated classifier over the discrete actions; `dose_density`: "
        "conditional density of the continuous doses, integrated over the manifest's dose bins "
        "(needs dose columns and action_bin_edges).",
    )
    base: Literal["logistic", "hist_gradient_boosting"] = Field(
        default="logistic", description="Base classifier of `BehaviourPolicyClassifier`."
    )
    calibration: Literal["temperature", "sigmoid", "isotonic", "none"] = Field(
        default="temperature", description="Probability calibration (CalibratedClassifierCV method)."
    )
    cv: int = Field(default=3, ge=2, le=10, description="Calibration folds.")
    max_iter: int = Field(default=200, ge=1, description="Iterations of the base classifier.")
    fit_split: Literal["train", "validation", "test"] = Field(
        default="train", description="Split the classifier is fitted on."
    )
    max_fit_rows: int = Field(
        default=200_000, ge=100, description="Random subsample cap of fitting rows (seeded)."
    )
    min_prob: float = Field(
        default=1e-3, ge=0.0, lt=1.0,
        description="Floor for behaviour probabilities of logged actions; 0 makes a zero an error. "
        "Floored rows are counted in the report.",
    )
    propensity_refits: int = Field(
        default=0, ge=0, le=1000,
        description="Discrete OPE: refit the behaviour classifier on this many episode-bootstrap resamples "
        "of its fit split for a percentile interval of each action's mean fitted probability (the report's "
        "`behaviour.by_action`, beside the known probability). 0: the means without an interval.",
    )
    cache_dir: str | None = Field(
        default=None,
        description="Folder of fitted behaviour models keyed by the SHA-256 of the trajectories' manifest, "
        "fit split, features, this behaviour config, the seed and the code version: an evaluation with the "
        "same key loads the model instead of refitting it (models/ope/behaviour_cache.py). `dosewise "
        "sweep` sets it to <sweep>/behaviour_cache, so all trials share one fit. None: fit every time.",
    )


class FqeConfig(StrictConfig):
    """Fitted Q Evaluation (d3rlpy `DiscreteFQE`) for the FQE and DR/WDR estimates."""

    enabled: bool = Field(default=True, description="Fit FQE (needed for FQE, DR and WDR).")
    method: Literal["auto", "tabular", "neural"] = Field(
        default="auto",
        description="`tabular`: closed-form least-squares FQE on one-hot (state, action) features, one "
        "state per distinct row of the state features, with `tabular_refits` bootstrap refits (its "
        "interval covered the exact ICU-Sepsis values in bench/ope_coverage.py --fqe-intervals); "
        "`neural`: d3rlpy's FQE network, whose interval has not been shown to cover (the report says "
        "so). `auto`: tabular when the fit split and the evaluated split hold at most "
        "`tabular_max_states` distinct states and at least 5 fit transitions per state, else neural "
        "(continuous doses: always neural). The report records which one ran and why.",
    )
    tabular_max_states: int = Field(
        default=5000, ge=1, le=200_000,
        description="Most distinct states for tabular FQE (`method = auto` switches to neural above it; "
        "`method = tabular` refuses).",
    )
    tabular_refits: int = Field(
        default=200, ge=0, le=5000,
        description="Tabular FQE: closed-form refits on episode-bootstrap resamples of the fit split; "
        "each evaluated-episode resample of the FQE interval is paired with one refit (0: the interval "
        "leaves out the fit's error and the report says it is not honest).",
    )
    n_steps: int = Field(
        default=20000, ge=1,
        description="Gradient steps per target policy. 20k steps at lr 1e-4 halve FQE's error against "
        "exact ICU-Sepsis values compared with 5k at 1e-3 (bench/ope_fqe_accuracy.py).",
    )
    batch_size: int = Field(default=256, ge=1, description="Transitions per step.")
    learning_rate: float = Field(default=1e-4, gt=0, description="Adam learning rate.")
    target_update_interval: int = Field(default=200, ge=1, description="Steps between target syncs.")
    hidden_units: list[int] = Field(default=[128, 128], description="Q-network MLP widths.")
    fit_split: Literal["train", "validation", "test", "same"] = Field(
        default="train",
        description="Split FQE is fitted on; `same` fits on the evaluated split (cross-fitting "
        "is safer: DR stays unbiased only if Q is fitted on other episodes).",
    )
    bootstrap_refits: int = Field(
        default=5, ge=0, le=200,
        description="FQE refits per target on episode-bootstrap resamples of the fit split; the robust "
        "spread of their FQE values (1.4826 x MAD, Student t) is added to the FQE interval (bootstrapped "
        "FQE, Hao et al. 2021). 0: the FQE interval resamples episodes around one fitted Q and leaves out "
        "the error of fitting it, so it is not honest (the report says so). DR/WDR need none: a Q fitted "
        "on other episodes leaves them unbiased. 1 is refused: one refit gives no spread.",
    )

    @field_validator("bootstrap_refits")
    @classmethod
    def _refits_give_a_spread(cls, value: int) -> int:
        if value == 1:
            raise ValueError("one refit gives no spread; use 0 (no refits) or at least 2 (5-10 is typical)")
        return value
    device: str = Field(default="cpu", description="cpu, auto, cuda or cuda:N.")


class ContinuousConfig(StrictConfig):
    """Continuous-action OPE: density ratios against a kernel-smoothed deterministic target.

    A deterministic dose policy has no density, so the target is smoothed around its dose with a
    Gaussian kernel of bandwidth h (Kallus & Zhou 2018, "Policy evaluation and optimization with
    continuous treatments"): ratio = K_h(a - pi(s)) / mu(a | s). Smaller h means less bias
    (O(h^2)) and more variance (O(1/(n h))). A zero dose is a point mass on both sides.
    """

    bandwidth: dict[str, float] = Field(
        default_factory=dict,
        description="Kernel bandwidth per dose column, in the column's units (e.g. {rdi = 0.05}); a "
        "column not listed gets `bandwidth_share` x the standard deviation of its non-zero logged doses.",
    )
    bandwidth_share: float = Field(
        default=0.25, gt=0.0, le=5.0,
        description="Default bandwidth as a share of the standard deviation of the non-zero logged doses "
        "on the behaviour model's fit split.",
    )
    kernel_scale: Literal["absolute", "proportional"] = Field(
        default="absolute",
        description="`absolute`: the kernel's sd is the bandwidth at every dose. `proportional`: it grows "
        "with the recommended dose, bandwidth x dose / m (m the median non-zero logged dose of the column on "
        "the fit split, so the bandwidth is its sd at the typical dose), as the scatter of delivered doses "
        "around a prescribed one does (rounding to vials, dose banding within a percentage of the dose). "
        "A kernel wider than the clinicians' scatter around their dose gives ratios without a bounded "
        "variance (for Gaussians, wider than sqrt(2) times it).",
    )
    pit_bins: int = Field(default=10, ge=2, le=50, description="Bins of the PIT calibration histogram.")
    max_ratio: float | None = Field(
        default=20.0, gt=0,
        description="Clip of each per-step density ratio K_h(a - pi(s)) / mu(a | s) (truncated importance "
        "sampling, Ionides 2008; weight clipping in DR, Su et al. 2020). The kernel's peak is 1 / (h sqrt(2 "
        "pi)) while the clinicians' density can be near zero where they rarely dose, so unclipped ratios "
        "reach the hundreds and a handful of episodes decide WIS and WDR (README \"Chemotherapy OPE\" "
        "measures the choice). Clipped estimators lean towards the clinicians' value; the report counts "
        "the clipped ratios. `max_weight` clips every mode; where both are set the smaller applies. None: "
        "unclipped.",
    )

    dr_max_ratio: float | None = Field(
        default=5.0, gt=0,
        description="Clip of the per-step density ratios inside DR and WDR only (IS, WIS, PDIS and "
        "PDWIS keep `max_ratio`). In a doubly robust estimator the Q model carries the value wherever a "
        "ratio is clipped, so a tighter clip costs it less bias than it costs IS (weight clipping and "
        "shrinkage in DR, Su, Dimakopoulou, Krishnamurthy & Dudik 2020; the SWITCH estimator, Wang, "
        "Agarwal & Dudik 2017). "
        "Chosen on design seeds (README \"Chemotherapy OPE\"). The smaller of it and `max_weight` applies. "
        "None: unclipped.",
    )

    @field_validator("max_ratio", "dr_max_ratio", mode="before")
    @classmethod
    def _none_unclips(cls, value: object) -> object:
        """TOML has no null: `max_ratio = "none"` (or `--set continuous.max_ratio=none`) unclips."""
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("bandwidth")
    @classmethod
    def _positive_bandwidths(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not v > 0}
        if bad:
            raise ValueError(f"bandwidths must be > 0; got {bad}")
        return value


class OpeConfig(StrictConfig):
    """Everything that decides an off-policy evaluation, besides the data and the policy."""

    kind: Literal["ope"] = Field(default="ope", description="Config kind.")
    seed: int = Field(default=0, ge=0, description="Seed of the bootstrap, subsampling and FQE.")
    gamma: float = Field(default=1.0, ge=0.0, le=1.0, description="Discount of the evaluated return.")
    epsilon: float = Field(
        default=0.01, ge=0.0, le=1.0,
        description="Soften the learned policy to epsilon-greedy (AI Clinician used 0.01); a policy's "
        "own stochasticity is kept when it has any.",
    )
    estimators: list[Estimator] = Field(
        default=["IS", "WIS", "PDIS", "PDWIS", "DR", "WDR", "FQE"], description="Estimators to report."
    )
    id_salt_mismatch: Literal["error", "warn"] = Field(
        default="error",
        description="When the evaluated trajectories were pseudonymised with another id salt than the "
        "policy's training trajectories (their manifests' fingerprints differ), the episode ids and the "
        "train/validation/test split differ, so the evaluated split holds episodes the policy was trained "
        "on: `error` stops (exit 2); `warn` evaluates and records the warning in the report, for a "
        "population that shares no patient with the training data (external validation).",
    )
    max_weight: float | None = Field(
        default=None, gt=0, description="Clip each per-step importance ratio at this value (recorded)."
    )
    n_bootstrap: int = Field(default=2000, ge=10, description="Episode-level bootstrap resamples.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Two-sided interval level.")
    bca: bool = Field(default=True, description="Also compute BCa intervals.")
    min_episodes: int = Field(
        default=100, ge=1, description="Below this many episodes the report warns that the bootstrap "
        "is not meaningful.",
    )
    support_threshold: float = Field(
        default=0.01, gt=0.0, lt=1.0,
        description="A recommended action is out of support when the clinicians' probability of it "
        "is below this.",
    )
    value_range: tuple[float, float] | None = Field(
        default=None,
        description="Lowest and highest (discounted) episode return possible, for the support bounds "
        "(e.g. [-15, 15] for the AI Clinician mortality reward). None: the range of the returns observed "
        "in the evaluated episodes (recorded as such in the report).",
    )
    threads: int = Field(
        default=1, ge=1, le=64,
        description="CPU threads for the behaviour model and FQE (restored afterwards); small models "
        "gain little from more, and busy machines lose a lot to OpenMP/BLAS spinning.",
    )
    action_space: Literal["auto", "discrete", "continuous"] = Field(
        default="auto",
        description="`auto`: the policy's own action space; `discrete`: the action bins (a continuous "
        "policy is evaluated through the bin of its dose); `continuous`: dose densities (needs a "
        "continuous policy and dose columns).",
    )
    continuous: ContinuousConfig = Field(
        default_factory=ContinuousConfig, description="Kernel smoothing of continuous targets.")
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig, description="Behaviour model.")
    fqe: FqeConfig = Field(default_factory=FqeConfig, description="Fitted Q Evaluation.")

    def ratio_clip(self, action_space: str) -> float | None:
        """The clip of per-step importance ratios in `action_space` ("discrete" or "continuous"):
        `max_weight`, and in continuous mode also `continuous.max_ratio`, the smaller where both are set."""
        return self._smaller_clip(self.continuous.max_ratio, action_space)

    def dr_ratio_clip(self, action_space: str) -> float | None:
        """The clip of per-step ratios inside DR and WDR: `max_weight`, and in continuous mode also
        `continuous.dr_max_ratio`, the smaller where both are set (discrete mode: as `ratio_clip`)."""
        return self._smaller_clip(self.continuous.dr_max_ratio, action_space)

    def _smaller_clip(self, continuous_clip: float | None, action_space: str) -> float | None:
        """The smaller of `max_weight` and (continuous mode) `continuous_clip`; None where neither is set."""
        clips = [self.max_weight, continuous_clip if action_space == "continuous" else None]
        values = [v for v in clips if v is not None]
        return min(values) if values else None
