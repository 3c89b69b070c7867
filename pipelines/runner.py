"""Stage runner: order, timing, a progress bar and a `StageRecord` per stage for the manifest."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from dosewise.data_schemas import StageRecord


@dataclass
class StageLog:
    """Counts a stage reports: rows in, rows out, quarantined rows by rule and a note."""

    rows_in: int = 0
    rows_out: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    rows_quarantined: int | None = None
    note: str = ""

    def set(
        self,
        rows_in: int,
        rows_out: int,
        by_rule: dict[str, int] | None = None,
        note: str = "",
        rows_quarantined: int | None = None,
    ) -> None:
        """Record the stage's counts."""
        self.rows_in, self.rows_out = int(rows_in), int(rows_out)
        self.quarantined_by_rule = dict(by_rule or {})
        self.rows_quarantined = rows_quarantined
        self.note = note


class StageRunner:
    """Runs named stages in order, shows one progress bar across them, and collects their records."""

    def __init__(self, names: Sequence[str], show_progress: bool = True) -> None:
        self.names = list(names)
        self.show_progress = show_progress
        self.records: list[StageRecord] = []
        self._bar = tqdm(
            total=len(self.names),
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
            disable=not show_progress,
            unit="stage",
        )

    @contextmanager
    def stage(self, name: str) -> Iterator[StageLog]:
        """Time one stage; its `StageLog` becomes a `StageRecord` when the block ends."""
        self._bar.set_description(f"etl: {name}")
        log = StageLog()
        start = time.perf_counter()
        yield log
        self.add(name, log, time.perf_counter() - start)

    def add(self, name: str, log: StageLog, seconds: float) -> None:
        """Record a stage that ran in pieces (say, one per patient batch): its counts and total seconds."""
        quarantined = (
            log.rows_quarantined
            if log.rows_quarantined is not None
            else sum(log.quarantined_by_rule.values())
        )
        self.records.append(
            StageRecord(
                name=name,
                rows_in=log.rows_in,
                rows_out=log.rows_out,
                rows_quarantined=quarantined,
                quarantined_by_rule=log.quarantined_by_rule,
                seconds=round(seconds, 4),
                note=log.note,
            )
        )
        self._bar.update(1)

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()
