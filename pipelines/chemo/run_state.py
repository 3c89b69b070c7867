"""What the chemotherapy cycle stages hand each other, on either engine: the run (`ChemoRun`: the
source, per-stage totals, the run-wide frames made between the passes) and its trajectory contract.

The DuckDB batch runner (`stage_runs.py`) and the Spark stages (`spark_stages.py`) fill the same
`ChemoRun`, so the manifest, outputs and notes are made once for both (`run_outputs.py`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import TrajectoryDatasetInfo, empty_quarantine
from dosewise.data_schemas import columns as c

from ..privacy import RunIds
from ..runner import StageRunner
from .config import ChemoPipelineConfig
from .rewards import CensoringCurves, reward_description
from .sources import ChemoSource
from .stages import STAGE_NAMES
from .states import LAB_COLUMNS, STATE_COLUMNS

STAGES = STAGE_NAMES
QUARANTINED_BY = ("sources", "cycles", "units")  # the stages that write quarantine/<stage>.parquet


@dataclass
class StageTotals:
    """A stage's counts and seconds summed over the batches."""

    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    quarantine: list[pd.DataFrame] = field(default_factory=list)

    def quarantined(self) -> pd.DataFrame:
        """The batches' quarantine records in batch order (the writer sorts them by rule and key)."""
        parts = [q for q in self.quarantine if not q.empty]
        return pd.concat(parts, ignore_index=True) if parts else empty_quarantine(["patient_id"])


@dataclass
class ChemoRun:
    """What the stages hand each other: the source, per-stage totals and the run-wide frames."""

    config: ChemoPipelineConfig
    source_dir: Path
    out_dir: Path
    ids: RunIds
    runner: StageRunner
    src: ChemoSource | None = None
    totals: dict[str, StageTotals] = field(default_factory=lambda: {s: StageTotals() for s in STAGES})
    notes: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    #: per batch written: (batch, file of its canonical cycles with labs held, its patients)
    parts: list[tuple[int, Path, pd.DataFrame]] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LAB_COLUMNS, 0))
    unknown_regimens: dict[str, int] = field(default_factory=dict)
    first_cycle: tuple[str, float] | None = None  # (patient, planned interval) of the first row overall
    covered: bool = True
    patients: pd.DataFrame | None = None
    episode_ids: dict[str, str] | None = None
    splits: pd.DataFrame | None = None
    has_prob: bool = False
    first_actions: list[pd.Series] = field(default_factory=list)  # per batch, for the censoring strata
    censoring: CensoringCurves | None = None

    @contextmanager
    def clock(self, stage: str) -> Iterator[StageTotals]:
        """Add the block's seconds to `stage`."""
        start = time.perf_counter()
        yield self.totals[stage]
        self.totals[stage].seconds += time.perf_counter() - start

    def add_cycle_notes(self, notes: dict[str, int]) -> None:
        """A batch's (or a Spark group's) cycle-rule notes: unknown regimens counted apart."""
        for key, n in notes.items():
            if key.startswith("unknown_regimen:"):
                name = key.removeprefix("unknown_regimen:")
                self.unknown_regimens[name] = self.unknown_regimens.get(name, 0) + n
            else:
                self.notes[key] = self.notes.get(key, 0) + n

    def note_first_cycle(self, patient: str, interval_days: float) -> None:
        """Keep (patient, planned interval) of the first patient in id order over all batches."""
        if self.first_cycle is None or patient < self.first_cycle[0]:
            self.first_cycle = (patient, float(interval_days))

    def need(self, name: str) -> Any:
        """A value an earlier stage made (the stage order guarantees it)."""
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"chemo stage order broken: `{name}` was not made before it is read")
        return value


def dataset_info(config: ChemoPipelineConfig, has_prob: bool) -> TrajectoryDatasetInfo:
    """The trajectory contract of a chemotherapy cycle run."""
    n = len(config.actions.rdi_edges) + 1
    return TrajectoryDatasetInfo(
        state_columns=list(STATE_COLUMNS),
        n_actions=n,
        continuous_action_columns=[c.RDI_FRACTION],
        action_bin_edges={c.RDI_FRACTION: list(config.actions.rdi_edges)},
        action_grid=[n],
        bin_hours=None,
        has_behaviour_prob=has_prob,
        ids_pseudonymised=config.output.pseudonymize_ids,
        reward_description=reward_description(config.reward, config.episode),
    )



__all__ = ["QUARANTINED_BY", "STAGES", "ChemoRun", "StageTotals", "dataset_info"]
