"""`hosp/labevents` and `icu/outputevents` rows of a chunk.

Labs come in panels (one `specimen_id` per draw): routine chemistry + haematology every 12 h,
bilirubin and INR daily, blood gases with lactate (and a specimen-type row, 'ART.') every 4 h while
shocked or ventilated; plus an emergency-department panel before ICU admission and, for some
patients, an outpatient panel months earlier with no `hadm_id` (as in MIMIC-IV, where labs outside
admissions have a null `hadm_id`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from . import synthetic_icu_tables as t
from .synthetic_icu_charts import fio2_percent
from .synthetic_icu_physiology import SEPTIC, Cohort, Course
from .synthetic_icu_stays import DAY, HOUR, IdCounters, Timeline, labels, numbers_as_text, times

LabFormula = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def lab_formulas(c: Cohort, course: Course) -> dict[str, LabFormula]:
    """lab name -> f(stay index, hour, rng) giving values from the hourly course."""
    hourly, b = course.hourly, c.baseline
    x, lact = hourly["x"], hourly["lactate"]
    fio2 = fio2_percent(course)

    def gauss(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
        return scale * rng.standard_normal(size)

    return {
        "specimen": lambda s, h, r: np.zeros(s.size),  # a text row ("ART."); see labevents_table
        "lactate": lambda s, h, r: lact[s, h],
        "ph": lambda s, h, r: 7.40 - 0.03 * (lact[s, h] - 1.0) + gauss(r, s.size, 0.02),
        "pao2": lambda s, h, r: np.clip(hourly["pf"][s, h] * fio2[s, h] / 100.0
                                        + gauss(r, s.size, 5), 30, 600),
        "paco2": lambda s, h, r: np.clip(40 - 1.5 * (lact[s, h] - 1) + gauss(r, s.size, 3), 15, 90),
        "base_excess": lambda s, h, r: -1.5 * (lact[s, h] - 1) + gauss(r, s.size, 1),
        "creatinine": lambda s, h, r: hourly["creatinine"][s, h],
        "bun": lambda s, h, r: np.clip(14 * hourly["creatinine"][s, h] ** 0.9
                                       + gauss(r, s.size, 2), 2, 200),
        "sodium": lambda s, h, r: 139 + gauss(r, s.size, 3),
        "potassium": lambda s, h, r: np.clip(4.1 + gauss(r, s.size, 0.4), 2.5, 7),
        "chloride": lambda s, h, r: 104 + gauss(r, s.size, 3),
        "bicarbonate": lambda s, h, r: np.clip(25 - 1.2 * (lact[s, h] - 1) + gauss(r, s.size, 1.5),
                                               5, 40),
        "glucose": lambda s, h, r: np.clip(120 + 40 * x[s, h] + gauss(r, s.size, 20), 40, 600),
        "bilirubin": lambda s, h, r: hourly["bilirubin"][s, h],
        "platelets": lambda s, h, r: hourly["platelets"][s, h],
        "wbc": lambda s, h, r: np.clip(b["wbc"][s] + 10 * x[s, h] * b["wbc_sign"][s]
                                       + gauss(r, s.size, 1), 0.3, 80),
        "hemoglobin": lambda s, h, r: np.clip(11.5 - 1.0 * x[s, h] + gauss(r, s.size, 1.2), 5, 18),
        "inr": lambda s, h, r: 1.1 + 0.8 * x[s, h] + np.abs(gauss(r, s.size, 0.1)),
    }


def _panels(rng: np.random.Generator, c: Cohort, course: Course, tl: Timeline
            ) -> list[tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, bool, str]]:
    """(labs, stay index, hour read, charttime, has hadm_id, priority) for every panel draw."""
    n, hours = c.n, course.hours
    inside = course.in_stay()
    h = np.arange(hours)[None, :]
    hourly = course.hourly
    shocked = (hourly["vent"] > 0) | (hourly["x"] > 0.3) | (hourly["lactate"] > 2.0)
    septic = (c.case == SEPTIC)[:, None]
    draws: list[tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, bool, str]] = []
    for labs_, mask, priority in (
            (t.ROUTINE, inside & ((h % 12 == 5) | (h == 0)), "ROUTINE"),
            (t.DAILY, inside & ((h % 24 == 5) | (h == 0)), "ROUTINE"),
            (t.BLOOD_GAS, inside & (((h % 4 == 2) & shocked) | ((h % 12 == 2) & septic)), "STAT")):
        si, hi = np.nonzero(mask)
        at = tl.intime[si] + hi * HOUR + rng.integers(0, 60, si.size) * 60
        draws.append((labs_, si, hi, at, True, priority))
    everyone = np.arange(n)
    ed_time = tl.intime - (rng.uniform(0.5, 2.0, n) * HOUR).astype(np.int64) // 60 * 60
    ed_panel = (*t.ROUTINE, *t.DAILY, "lactate")
    draws.append((ed_panel, everyone, np.zeros(n, dtype=np.int64), ed_time, True, "STAT"))
    outpatient = np.flatnonzero(rng.random(n) < 0.15)
    before = tl.admittime[outpatient] - (rng.uniform(20, 200, outpatient.size) * DAY).astype(np.int64)
    draws.append((t.ROUTINE, outpatient, np.zeros(outpatient.size, dtype=np.int64),
                  before // 60 * 60, False, "ROUTINE"))
    return draws


def labevents_table(rng: np.random.Generator, c: Cohort, course: Course, tl: Timeline,
                    ids: IdCounters, providers: np.ndarray) -> pa.Table:
    """All labevents rows of a chunk, one specimen per panel draw, sorted by stay and time."""
    formulas = lab_formulas(c, course)
    stay, at, item, num, spec, has_hadm, stat, lab_code = [], [], [], [], [], [], [], []
    names = list(t.LABS)
    for labs_, si, hi, times_, in_admission, priority in _panels(rng, c, course, tl):
        specimen = ids.take("specimen_id", si.size)
        for name in labs_:
            itemid, *_rest, decimals = t.LABS[name]
            stay.append(si)
            at.append(times_)
            item.append(np.full(si.size, itemid, dtype=np.int64))
            num.append(np.round(formulas[name](si, hi, rng), decimals))
            spec.append(specimen)
            has_hadm.append(np.full(si.size, in_admission))
            stat.append(np.full(si.size, priority == "STAT"))
            lab_code.append(np.full(si.size, names.index(name), dtype=np.int32))
    s, a, i = np.concatenate(stay), np.concatenate(at), np.concatenate(item)
    order = np.lexsort((i, a, s))
    s, a, i = s[order], a[order], i[order]
    value = np.concatenate(num)[order]
    code = np.concatenate(lab_code)[order]
    low = np.array([t.LABS[k][5] for k in names])[code]
    high = np.array([t.LABS[k][6] for k in names])[code]
    hadm_ok = np.concatenate(has_hadm)[order]
    is_specimen = i == t.SPECIMEN_ITEMID  # the gas's specimen type: text only, like MIMIC-IV
    text = pa.compute.if_else(pa.array(is_specimen), t.SPECIMEN_VALUE, numbers_as_text(value))
    return pa.table({
        "labevent_id": ids.take("labevent_id", s.size), "subject_id": tl.subject_id[s],
        "hadm_id": pa.array(tl.hadm_id[s], mask=~hadm_ok), "specimen_id": np.concatenate(spec)[order],
        "itemid": i, "order_provider_id": pa.array(providers[(s * 31 + a // DAY) % providers.size]),
        "charttime": times(a), "storetime": times(a + rng.integers(20, 120, s.size) * 60),
        "value": text, "valuenum": pa.array(value, mask=is_specimen),
        "valueuom": labels([t.LABS[k][4] for k in names], code),
        "ref_range_lower": low, "ref_range_upper": high,
        "flag": labels([None, "abnormal"], ((value < low) | (value > high)).astype(int)),
        "priority": labels(["ROUTINE", "STAT"], np.concatenate(stat)[order].astype(int)),
        "comments": pa.nulls(s.size, pa.string()),
    }, schema=t.table_schema("labevents"))


def outputevents_table(rng: np.random.Generator, c: Cohort, course: Course, tl: Timeline,
                       caregivers: np.ndarray) -> pa.Table:
    """Urine output: hourly Foley volumes (226559), or 4-hourly voids (226560) without a catheter."""
    n, hours = c.n, course.hours
    inside = course.in_stay()
    h = np.arange(hours)[None, :]
    urine = course.hourly["urine_ml"]
    foley = c.foley[:, None]
    padded = np.concatenate([np.zeros((n, 3)), urine], axis=1)
    four_hours = padded[:, 0:hours] + padded[:, 1:hours + 1] + padded[:, 2:hours + 2] + urine
    si, hi = np.nonzero(inside & ((foley & (rng.random((n, hours)) > 0.05))
                                  | (~foley & (h % 4 == 3))))
    on_foley = c.foley[si]
    value = np.where(on_foley, urine[si, hi], four_hours[si, hi])
    room = np.maximum((course.los_h[si] - hi) * HOUR - 60, 0).astype(np.int64)
    at = tl.intime[si] + hi * HOUR + np.minimum(rng.integers(0, 60, si.size) * 60, room) // 60 * 60
    return pa.table({
        "subject_id": tl.subject_id[si], "hadm_id": tl.hadm_id[si], "stay_id": tl.stay_id[si],
        "caregiver_id": caregivers[(si * 11 + hi // 12) % caregivers.size],
        "charttime": times(at), "storetime": times(at + rng.integers(0, 31, si.size) * 60),
        "itemid": np.where(on_foley, t.URINE_FOLEY, t.URINE_VOID).astype(np.int64),
        "value": np.maximum(np.round(value / 5.0) * 5.0, 0.0),
        "valueuom": labels(["mL"], np.zeros(si.size, dtype=int)),
    }, schema=t.table_schema("outputevents"))
