"""`TrainConfig`: one training run (data split, device, budget, sampler, masks, algorithm)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from dosewise.data_schemas import StrictConfig

from .algorithms import (
    CQLSettings,
    DiscreteBCQSettings,
    DiscreteCQLSettings,
    DoubleDQNSettings,
    DQNSettings,
    IQLSettings,
    PessimisticMBPSettings,
    TD3PlusBCSettings,
)

AlgorithmSettings = Annotated[
    DQNSettings
    | DoubleDQNSettings
    | DiscreteCQLSettings
    | DiscreteBCQSettings
    | CQLSettings
    | IQLSettings
    | TD3PlusBCSettings
    | PessimisticMBPSettings,
    Field(discriminator="name"),
]


class MaskConfig(StrictConfig):
    """Which actions a policy may recommend in a state (d3rlpy itself has no masks).

    `observed_support` allows, per state cluster, the actions the clinicians took there at least
    `min_count` times in the train split; `forbidden_actions` is a rule applied on top.
    """

    source: Literal["none", "observed_support"] = Field(
        default="none", description="Where the allowed actions come from."
    )
    n_clusters: int = Field(
        default=750, ge=1,
        description="State clusters for `observed_support`; when the train split has no more distinct "
        "states than this, each distinct state is its own cluster.",
    )
    min_count: int = Field(
        default=1, ge=1, description="Times an action must be seen in a cluster to be allowed there."
    )
    forbidden_actions: list[int] = Field(
        default_factory=list, description="Actions never allowed (a rule, e.g. doses a unit never gives)."
    )
    in_target: bool = Field(
        default=True,
        description="Also mask the bootstrap target's max/argmax (discrete algorithms only).",
    )
    dose_candidates: int = Field(
        default=0, ge=0, le=256,
        description="Continuous algorithms with `observed_support`: when > 0, the policy recommends only "
        "one of this many doses the clinicians gave in the state's cluster (for one dose column the "
        "inverted-CDF quantiles at levels (j + 0.5) / n, else a seeded sample of logged dose vectors), "
        "chosen by `dose_choice`: a support-constrained policy, recommending only doses given in "
        "comparable states, where the behaviour density has mass. 0: the actor's dose.",
    )
    dose_candidate_rule: Literal["quantiles", "bin_medians"] = Field(
        default="quantiles",
        description="Which logged doses are a cluster's candidates. `quantiles`: `dose_candidates` "
        "quantiles of its doses. `bin_medians`: one per action bin the clinicians gave in the cluster (the "
        "bins `min_count` allows), the median of the doses logged there: where their dose density peaks "
        "(a regimen's dose level), not in its tails, as the discrete policies' bin doses are; "
        "`dose_candidates` must then be 0.",
    )
    dose_choice: Literal["nearest", "best_q"] = Field(
        default="nearest",
        description="`mask.dose_candidates`: `nearest` projects the actor's dose onto the nearest "
        "candidate (the learned policy, kept within the support); `best_q` takes the candidate of highest "
        "Q (in-sample selection as in EMaQ, Ghasemipour et al. 2021, and IDQL, Hansen-Estruch et al. 2023).",
    )

    @property
    def uses_dose_candidates(self) -> bool:
        """Whether continuous policies recommend only candidate doses (quantiles or bin medians)."""
        return self.dose_candidates > 0 or self.dose_candidate_rule == "bin_medians"


class TrainConfig(StrictConfig):
    """Everything that decides a trained policy, besides the data itself."""

    kind: Literal["train"] = Field(default="train", description="Config kind.")
    seed: int = Field(default=0, ge=0, description="Seed of networks, sampler and clustering.")
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N.")
    n_steps: int = Field(default=20000, ge=1, description="Gradient steps.")
    batch_size: int = Field(default=256, ge=1, description="Transitions per gradient step.")
    threads: int | None = Field(
        default=None, ge=1, le=256,
        description="CPU threads torch may use, at most 256 (None: torch's default, one per core); 1 is "
        "faster when other jobs share the cores, as idle OpenMP threads spin.",
    )
    log_every: int = Field(default=1000, ge=1, description="Steps between logged (averaged) metrics.")
    split: Literal["train", "validation", "test"] = Field(
        default="train", description="Split the policy is fitted on (scaling is fitted on it too)."
    )
    features: list[str] | None = Field(
        default=None, description="State columns to use, in order; None uses every state column."
    )
    sampler: Literal["vectorised", "d3rlpy"] = Field(
        default="vectorised",
        description="`vectorised`: whole batches by tensor indexing on the model's device, fed to the "
        "update directly; `d3rlpy`: d3rlpy's own per-transition `fit()` sampler (slower; for comparison).",
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the gradient step (CPU) or CUDA graphs + compile (GPU); pays off "
        "after a few thousand steps.",
    )
    fuse_updates: bool = Field(
        default=True,
        description="Vectorised sampler only: DiscreteCQL's loss from one Q-network forward pass instead "
        "of d3rlpy's two, and torch's fused Adam kernel; the same loss and update up to float rounding.",
    )
    mask: MaskConfig = Field(default_factory=MaskConfig, description="Admissible-action masks.")
    algorithm: AlgorithmSettings = Field(
        default_factory=DiscreteCQLSettings, description="The algorithm and its settings."
    )

    @model_validator(mode="after")
    def _candidates_need_support(self) -> TrainConfig:
        supported = self.mask.source == "observed_support" and self.action_space == "continuous"
        if self.mask.dose_candidate_rule == "bin_medians" and self.mask.dose_candidates:
            raise ValueError(
                "`mask.dose_candidates` must be 0 with `mask.dose_candidate_rule = \"bin_medians\"` (one "
                f"candidate per action bin given in the cluster). Got {self.mask.dose_candidates}."
            )
        if self.mask.uses_dose_candidates and not supported:
            raise ValueError(
                "`mask.dose_candidates` and `mask.dose_candidate_rule = \"bin_medians\"` must be used with "
                "`mask.source = \"observed_support\"` and a continuous algorithm (cql, iql, td3_plus_bc). "
                f"Got source {self.mask.source!r}, algorithm {self.algorithm.name!r}."
            )
        return self

    @property
    def action_space(self) -> Literal["discrete", "continuous"]:
        """Discrete (action bins) or continuous (doses) for this run's algorithm."""
        return "continuous" if self.algorithm.name in ("cql", "iql", "td3_plus_bc") else "discrete"
