"""The end-to-end demo: every stage Dosewise has, on embedded defaults, in one call.

It needs nothing outside the repository: synthetic MIMIC-IV-shaped records and the ICU-Sepsis
MDP stand in for real data, DuckDB runs the ETL, and MLflow writes to a sqlite store inside the
output folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dosewise import pipelines


@dataclass
class DemoContext:
    """Paths and results shared by the demo's steps."""

    out: Path
    quiet: bool
    results: dict[str, Any] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)


def step_icu_sepsis_episodes(ctx: DemoContext) -> str:
    """Simulate clinician-logged episodes of the ICU-Sepsis MDP (exact values known)."""
    folder = ctx.out / "icu_sepsis"
    manifest = pipelines.write_icu_sepsis_episodes(folder, 2000, behaviour="clinician", seed=0)
    ctx.results["icu_sepsis_dir"] = folder
    value = manifest.extra["exact_behaviour_value"]
    return f"{folder}: 2,000 episodes, exact clinicians' survival {value:.3f}"


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("ICU-Sepsis ground-truth episodes", step_icu_sepsis_episodes),
]


def run_demo(out: Path, quiet: bool = False) -> DemoContext:
    """Run every demo step in order, printing one line per step; returns what each produced."""
    ctx = DemoContext(out=Path(out), quiet=quiet)
    ctx.out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=quiet)
    for number, (title, step) in enumerate(STEPS, start=1):
        console.print(f"[bold]{number}/{len(STEPS)}[/] {title} ...", highlight=False)
        start = time.perf_counter()
        detail = step(ctx)
        ctx.rows.append((title, f"{time.perf_counter() - start:.1f}", detail))
    return ctx
