"""The shape of a raw MIMIC table the sepsis ETL reads: shared by the MIMIC-IV and MIMIC-III specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MimicVersion = Literal["mimic_iv", "mimic_iii"]

ID = "BIGINT"
TS = "TIMESTAMP"
NUM = "DOUBLE"
TXT = "VARCHAR"


@dataclass(frozen=True)
class RawTable:
    """One raw table: its view name, file stem, module folder, typed columns and purpose."""

    name: str
    stem: str
    module: str
    columns: dict[str, str]
    purpose: str
    required: bool = True
    alternatives: tuple[str, ...] = field(default_factory=tuple)
