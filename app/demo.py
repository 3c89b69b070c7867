"""The end-to-end demo: `dosewise demo` is `dosewise run --config pipeline_demo`.

It needs nothing outside the repository: synthetic MIMIC-IV-shaped records and the ICU-Sepsis
MDP stand in for real data, DuckDB runs the ETL, and MLflow writes to a sqlite store inside the
output folder. The ICU-Sepsis leg shows the off-policy estimates beside the exact values. What
each stage runs is in `pipeline/stages.py`; the sizes are in `configs/pipeline_demo.toml`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from .pipeline import PipelineOutcome, load_pipeline_config, run_pipeline

DEMO_CONFIG = "pipeline_demo"
MODEL_NAME = "sepsis-dosing"

# The demo at smoke size (tests): every stage, a few seconds each.
SMOKE: tuple[str, ...] = (
    "source.stays=300", "train.settings.n_steps=200", "ground_truth.episodes=600",
    "evaluate.settings.n_bootstrap=200", "evaluate.settings.fqe.n_steps=200",
    "evaluate.settings.fqe.bootstrap_refits=2", "evaluate.settings.fqe.tabular_refits=20",
    "chemo_leg.patients=200", "chemo_leg.truth_patients=300",
    "chemo_leg.train_steps=200", "chemo_leg.n_bootstrap=200", "chemo_leg.fqe_steps=200",
)


def run_demo(out: Path, quiet: bool = False, overrides: Sequence[str] = ()) -> PipelineOutcome:
    """Run `pipeline_demo` into `out` (its own MLflow store there), one progress line per stage."""
    config = load_pipeline_config(DEMO_CONFIG, list(overrides))
    config = config.model_copy(update={"out": str(Path(out).resolve())})
    console = Console(stderr=True, quiet=quiet)

    def announce(number: int, total: int, title: str) -> None:
        console.print(f"[bold]{number}/{total}[/] {title} ...", highlight=False)

    return run_pipeline(config, quiet=quiet, on_stage=announce)
