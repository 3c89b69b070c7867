"""Realistic dirt planted into a chunk's tables so an ETL's quarantine paths get exercised.

Each kind is counted and the counts go into the manifest, so tests can reconcile what an ETL
quarantined with what was planted: implausible values (fat-finger x10, 0, -1, 9999), exact
duplicate rows, chart events weeks after the stay ended or of a stay id no `icustays` row has
(orphans), vasopressor rows in a rate unit no conversion table knows (`mL/hour` with no
concentration), absurd vasopressor rates (x1000) and negative volumes.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import synthetic_icu_tables as t
from .synthetic_icu_stays import DAY

UNKNOWN_RATE_UNIT = "mL/hour"
ORPHAN_STAY_ID = 39_000_000  # stay ids from here on exist in no icustays row
PRESSORS = (t.NOREPI, t.EPI, t.DOPAMINE, t.PHENYLEPHRINE)
FLUIDS = (t.NACL_09, t.D5W, t.LR, t.ALBUMIN_25, t.ALBUMIN_5)


def _choose(rng: np.random.Generator, candidates: np.ndarray, rate: float) -> np.ndarray:
    """A sorted random subset of `candidates`, each kept with probability `rate`."""
    k = int(rng.binomial(candidates.size, rate)) if candidates.size else 0
    return np.sort(rng.choice(candidates, size=k, replace=False)) if k else np.empty(0, np.int64)


def _set(table: pa.Table, name: str, rows: np.ndarray, values: pa.Array | np.ndarray) -> pa.Table:
    """Replace `name` at `rows` with `values`."""
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    column = pc.replace_with_mask(table[name].combine_chunks(), pa.array(mask),
                                  pa.array(values, type=table.schema.field(name).type))
    return table.set_column(table.schema.get_field_index(name), name, column)


def _duplicate(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Append exact copies of `rows` (re-sent interface messages land later in the extract)."""
    if rows.size == 0:
        return table
    return pa.concat_tables([table, table.take(rows)])


def dirty_chartevents(rng: np.random.Generator, table: pa.Table, rate: float,
                      counts: Counter[str]) -> pa.Table:
    """Outliers, events after the stay, events of a stay that does not exist, duplicates."""
    valuenum = table["valuenum"].to_numpy(zero_copy_only=False)
    numeric = np.flatnonzero(np.isfinite(valuenum))
    rows = _choose(rng, numeric, rate)
    bad = np.where(rng.random(rows.size) < 0.5, valuenum[rows] * 10.0,
                   rng.choice([-1.0, 0.0, 9999.0], rows.size))
    table = _set(table, "valuenum", rows, bad)
    table = _set(table, "value", rows, pc.cast(pa.array(bad), pa.string()))
    counts["chartevents_outlier_values"] += rows.size
    rows = _choose(rng, np.arange(table.num_rows), rate / 2)
    shift = (rng.uniform(21, 40, rows.size) * DAY).astype(np.int64) // 60 * 60
    for name in ("charttime", "storetime"):
        seconds = table[name].cast(pa.int64()).to_numpy()[rows] + shift
        table = _set(table, name, rows, pa.array(seconds).cast(t.TIME))
    counts["chartevents_outside_stay"] += rows.size
    rows = _choose(rng, np.arange(table.num_rows), rate / 4)
    orphan = ORPHAN_STAY_ID + rng.integers(0, 1_000_000, rows.size)
    table = _set(table, "stay_id", rows, orphan)
    counts["chartevents_unknown_stay_id"] += rows.size
    rows = _choose(rng, np.arange(table.num_rows), rate / 2)
    counts["chartevents_duplicate_rows"] += rows.size
    return _duplicate(table, rows)


def dirty_inputevents(rng: np.random.Generator, table: pa.Table, rate: float,
                      counts: Counter[str]) -> pa.Table:
    """Unknown rate units and absurd rates on vasopressors, negative fluid volumes, duplicates."""
    item = table["itemid"].to_numpy()
    pressor = np.flatnonzero(np.isin(item, PRESSORS))
    rows = _choose(rng, pressor, rate * 5)
    table = _set(table, "rateuom", rows, pa.array([UNKNOWN_RATE_UNIT] * rows.size))
    counts["inputevents_unknown_rate_unit"] += rows.size
    rows = _choose(rng, np.setdiff1d(pressor, rows), rate * 5)
    table = _set(table, "rate", rows, table["rate"].to_numpy(zero_copy_only=False)[rows] * 1000.0)
    counts["inputevents_absurd_rate"] += rows.size
    fluid = np.flatnonzero(np.isin(item, FLUIDS))
    rows = _choose(rng, fluid, rate * 5)
    table = _set(table, "amount", rows, -table["amount"].to_numpy(zero_copy_only=False)[rows])
    counts["inputevents_negative_amount"] += rows.size
    rows = _choose(rng, np.arange(table.num_rows), rate * 2)
    counts["inputevents_duplicate_rows"] += rows.size
    return _duplicate(table, rows)
