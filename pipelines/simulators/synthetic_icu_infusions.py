"""`icu/inputevents` (fluids, vasopressors) and `icu/procedureevents` (ventilation, arterial lines).

Vasopressor infusions are written MetaVision-style: one row per constant-rate segment, chained by
`linkorderid`, with rates in mcg/kg/min, mcg/min (weight not entered into the pump) or units/hour
(vasopressin) and amounts in mg or units. Fluid boluses are single rows (mL, some in L);
maintenance fluids are 8-hour bags.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import synthetic_icu_tables as t
from .synthetic_icu_physiology import (
    PRESSOR_DOPAMINE,
    PRESSOR_EPI,
    PRESSOR_PHENYL,
    Cohort,
    Course,
)
from .synthetic_icu_stays import HOUR, IdCounters, Timeline, labels, times

AMOUNT_UOMS = ["mL", "L", "mg", "units", None]
RATE_UOMS = [None, "mL/hour", "mcg/kg/min", "mcg/min", "units/hour"]
CATEGORIES = [  # ordercategoryname, secondaryordercategoryname, componenttype, categorydescription
    ("01-Drips", "02-Fluids (Crystalloids)", "Main order parameter", "Continuous Med"),
    ("02-Fluids (Crystalloids)", None, "Main order parameter", "Continuous IV"),
    ("03-IV Fluid Bolus", None, "Main order parameter", "Bolus"),
    ("04-Fluids (Colloids)", None, "Main order parameter", "Bolus"),
]
STATUS = ["FinishedRunning", "ChangeDose/Rate"]


def runs(values: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, ...]:
    """Constant, non-zero stretches of an (n, T) hourly array: (stay, start h, end h, value)."""
    r = np.where(inside, values, 0.0)
    pad = np.zeros((r.shape[0], 1))
    padded = np.concatenate([pad, r, pad], axis=1)
    si, pos = np.nonzero(padded[:, 1:] != padded[:, :-1])
    k = np.flatnonzero(si[:-1] == si[1:])
    stay, start, end = si[k], pos[k], pos[k + 1]
    value = r[stay, start]
    keep = value > 0
    return stay[keep], start[keep], end[keep], value[keep]


def _chained(stay: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(continues into the next row, index of the chain's first row) for rows sorted by stay."""
    continues = np.zeros(stay.size, dtype=bool)
    continues[:-1] = (stay[1:] == stay[:-1]) & (start[1:] == end[:-1])
    new_chain = np.ones(stay.size, dtype=bool)
    new_chain[1:] = ~continues[:-1]
    first = np.maximum.accumulate(np.where(new_chain, np.arange(stay.size), 0))
    return continues, first


class InputRows:
    """Accumulates inputevents blocks as numpy columns (string columns as vocabulary codes)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "stay", "start", "end", "itemid", "amount", "amount_uom", "rate", "rate_uom", "cat",
            "total", "status", "orderid", "linkorderid")}

    def add(self, ids: IdCounters, **block: np.ndarray | float) -> None:
        """Add rows; `continues`/`first` (optional) chain segments of one infusion."""
        size = np.asarray(block["stay"]).size
        orderid = ids.take("orderid", size)
        first = np.asarray(block.pop("first", np.arange(size)))
        continues = np.asarray(block.pop("continues", np.zeros(size, dtype=bool)))
        block.update(orderid=orderid, linkorderid=orderid[first], status=continues.astype(np.int64))
        for key, value in block.items():
            self.cols[key].append(np.broadcast_to(np.asarray(value), (size,)).copy())

    def columns(self) -> dict[str, np.ndarray]:
        """Concatenated columns sorted by stay, start time and item."""
        cols = {k: np.concatenate(v) for k, v in self.cols.items()}
        order = np.lexsort((cols["itemid"], cols["start"], cols["stay"]))
        return {k: v[order] for k, v in cols.items()}


def _pressor_rates(c: Cohort, course: Course) -> dict[int, np.ndarray]:
    """Hourly rate of each vasopressor (mcg/kg/min; vasopressin units/hour) from the titrated
    norepinephrine-equivalent dose and the stay's pressor of choice."""
    ne_eq, kind = course.hourly["ne_eq"], c.pressor_kind[:, None]
    dopamine = np.where(kind == PRESSOR_DOPAMINE, np.minimum(np.round(ne_eq * 200) / 2, 20.0), 0.0)
    return {
        t.NOREPI: np.where((kind == PRESSOR_PHENYL) | (kind == PRESSOR_EPI), 0.0,
                           np.round(np.maximum(ne_eq - dopamine / 100.0, 0.0), 2)),
        t.PHENYLEPHRINE: np.where(kind == PRESSOR_PHENYL, np.round(ne_eq * 10, 1), 0.0),
        t.EPI: np.where(kind == PRESSOR_EPI, ne_eq, 0.0),
        t.DOPAMINE: dopamine,
        t.VASOPRESSIN: course.hourly["vaso"],
    }


def _add_pressors(rows: InputRows, c: Cohort, course: Course, tl: Timeline, ids: IdCounters) -> None:
    inside = course.in_stay()
    for itemid, hourly_rate in _pressor_rates(c, course).items():
        si, h0, h1, rate = runs(hourly_rate, inside)
        start = tl.intime[si] + h0 * HOUR
        end = np.minimum(tl.intime[si] + h1 * HOUR, tl.outtime[si])
        minutes = (end - start) / 60.0
        weight = c.weight_kg[si]
        rate_uom: np.ndarray | int
        per_minute = c.mcg_min[si] & (itemid in (t.NOREPI, t.PHENYLEPHRINE))
        if itemid == t.VASOPRESSIN:
            amount, rate_out, amount_uom, rate_uom = rate * minutes / 60.0, rate, 3, 4
        else:
            rate_out = np.where(per_minute, np.round(rate * weight, 1), rate)
            amount, amount_uom = rate * weight * minutes / 1000.0, 2
            rate_uom = np.where(per_minute, 3, 2)
        continues, first = _chained(si, start, end)
        rows.add(ids, stay=si, start=start, end=end, itemid=itemid, amount=np.round(amount, 4),
                 amount_uom=amount_uom, rate=rate_out, rate_uom=rate_uom, cat=0, total=250.0,
                 continues=continues, first=first)


def _add_fluids(rows: InputRows, rng: np.random.Generator, c: Cohort, course: Course,
                tl: Timeline, ids: IdCounters, litre_fraction: float) -> None:
    si, hi = np.nonzero(course.in_stay() & (course.hourly["bolus_ml"] > 0))
    volume = course.hourly["bolus_ml"][si, hi]
    u = rng.random(si.size)
    itemid = np.select([u < 0.05, u < 0.07, u < 0.42], [t.ALBUMIN_5, t.ALBUMIN_25, t.LR], t.NACL_09)
    volume = np.select([itemid == t.ALBUMIN_5, itemid == t.ALBUMIN_25],
                       [np.minimum(volume, 500.0), 100.0], volume)
    minutes = np.where(volume >= 1000, 60, 30)
    room = np.maximum((course.los_h[si] - hi) * HOUR - minutes * 60, 0).astype(np.int64)
    start = tl.intime[si] + hi * HOUR + np.minimum(rng.integers(0, 50, si.size) * 60, room) // 60 * 60
    in_litres = rng.random(si.size) < litre_fraction
    colloid = (itemid == t.ALBUMIN_5) | (itemid == t.ALBUMIN_25)
    rows.add(ids, stay=si, start=start, end=start + minutes * 60, itemid=itemid,
             amount=np.where(in_litres, volume / 1000.0, volume), amount_uom=in_litres.astype(int),
             rate=np.round(volume / minutes * 60.0, 4), rate_uom=1, cat=np.where(colloid, 3, 2), total=volume)
    b = c.baseline
    limit = np.minimum(b["maint_hours"], course.los_h)
    bags = np.where(b["maint_ml_h"] > 0, np.ceil(limit / 8.0), 0).astype(np.int64)
    si = np.repeat(np.arange(c.n), bags)
    k = np.arange(si.size) - np.repeat(np.cumsum(bags) - bags, bags)
    hours = np.minimum(8.0, limit[si] - 8.0 * k)
    start = tl.intime[si] + k * 8 * HOUR
    rate = b["maint_ml_h"][si]
    itemid = np.where((rng.random(c.n) < 0.4)[si], t.D5W, t.NACL_09)
    rows.add(ids, stay=si, start=start, end=start + (hours * HOUR).astype(np.int64), itemid=itemid,
             amount=np.round(rate * hours, 1), amount_uom=0, rate=rate, rate_uom=1, cat=1,
             total=1000.0)


def inputevents_table(rng: np.random.Generator, c: Cohort, course: Course, tl: Timeline,
                      ids: IdCounters, caregivers: np.ndarray, litre_fraction: float) -> pa.Table:
    """Fluids and vasopressors of a chunk as `icu/inputevents` rows."""
    rows = InputRows()
    _add_pressors(rows, c, course, tl, ids)
    _add_fluids(rows, rng, c, course, tl, ids, litre_fraction)
    col = rows.columns()
    s, cat = col["stay"], col["cat"]
    rate_null = RATE_UOMS.index(None)
    return pa.table({
        "subject_id": tl.subject_id[s], "hadm_id": tl.hadm_id[s], "stay_id": tl.stay_id[s],
        "caregiver_id": caregivers[(s * 13 + col["start"] // (12 * HOUR)) % caregivers.size],
        "starttime": times(col["start"]), "endtime": times(col["end"]),
        "storetime": times(col["start"] + rng.integers(0, 61, s.size) * 60),
        "itemid": col["itemid"], "amount": col["amount"],
        "amountuom": labels(AMOUNT_UOMS, col["amount_uom"]),
        "rate": pa.array(col["rate"], mask=col["rate_uom"] == rate_null),
        "rateuom": labels(RATE_UOMS, col["rate_uom"]),
        "orderid": col["orderid"], "linkorderid": col["linkorderid"],
        "ordercategoryname": labels([k[0] for k in CATEGORIES], cat),
        "secondaryordercategoryname": labels([k[1] for k in CATEGORIES], cat),
        "ordercomponenttypedescription": labels([k[2] for k in CATEGORIES], cat),
        "ordercategorydescription": labels([k[3] for k in CATEGORIES], cat),
        "patientweight": c.weight_kg[s], "totalamount": col["total"],
        "totalamountuom": labels(["mL"], np.zeros(s.size, dtype=int)),
        "isopenbag": np.zeros(s.size, dtype=np.int64),
        "continueinnextdept": np.zeros(s.size, dtype=np.int64),
        "statusdescription": labels(STATUS, col["status"]),
        "originalamount": col["amount"], "originalrate": col["rate"],
    }, schema=t.table_schema("inputevents"))


def procedureevents_table(rng: np.random.Generator, c: Cohort, course: Course, tl: Timeline,
                          ids: IdCounters, caregivers: np.ndarray) -> pa.Table:
    """Invasive ventilation episodes (225792) and arterial lines (225752)."""
    si, h0, h1, _ = runs(course.hourly["vent"].astype(float), course.in_stay())
    vent_start = tl.intime[si] + h0 * HOUR
    vent_end = np.minimum(tl.intime[si] + h1 * HOUR, tl.outtime[si])
    art = np.flatnonzero(c.arterial)
    art_start = tl.intime[art] + rng.integers(0, 31, art.size) * 60
    art_end = np.maximum(tl.outtime[art] - rng.integers(0, 31, art.size) * 60, art_start + 60)
    stay = np.concatenate([si, art])
    start, end = np.concatenate([vent_start, art_start]), np.concatenate([vent_end, art_end])
    is_art = np.concatenate([np.zeros(si.size, dtype=int), np.ones(art.size, dtype=int)])
    order = np.lexsort((is_art, start, stay))
    stay, start, end, is_art = stay[order], start[order], end[order], is_art[order]
    minutes = (end - start) / 60.0
    orderid = ids.take("orderid", stay.size)
    side = np.where(is_art == 1, 1 + (stay % 2), 0)
    return pa.table({
        "subject_id": tl.subject_id[stay], "hadm_id": tl.hadm_id[stay], "stay_id": tl.stay_id[stay],
        "caregiver_id": caregivers[(stay * 17) % caregivers.size],
        "starttime": times(start), "endtime": times(end),
        "storetime": times(end + rng.integers(0, 31, stay.size) * 60),
        "itemid": np.where(is_art == 1, t.ARTERIAL_LINE, t.INVASIVE_VENT).astype(np.int64),
        "value": minutes, "valueuom": labels(["min"], np.zeros(stay.size, dtype=int)),
        "location": labels([None, "Right Radial", "Left Radial"], side),
        "locationcategory": labels([None, "Invasive Arterial"], is_art),
        "orderid": orderid, "linkorderid": orderid,
        "ordercategoryname": labels(["Ventilation", "Invasive Lines"], is_art),
        "ordercategorydescription": labels(["ContinuousProcess"], np.zeros(stay.size, dtype=int)),
        "patientweight": c.weight_kg[stay], "isopenbag": np.zeros(stay.size, dtype=np.int64),
        "continueinnextdept": np.zeros(stay.size, dtype=np.int64),
        "statusdescription": labels(["FinishedRunning"], np.zeros(stay.size, dtype=int)),
        "originalamount": minutes, "originalrate": np.zeros(stay.size),
    }, schema=t.table_schema("procedureevents"))
