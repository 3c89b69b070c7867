"""`icu/chartevents` rows of a chunk: vitals, temperature (°F and °C), GCS, FiO2, weight (kg, lb).

Hourly vitals share one charting time per hour, like bedside monitors validated by a nurse;
temperature and GCS every 4 hours; FiO2 hourly while ventilated. Values are read off the latent
hourly course, with measurement noise and the units real MIMIC-IV rows carry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import synthetic_icu_tables as t
from .synthetic_icu_config import SyntheticIcuConfig
from .synthetic_icu_physiology import Cohort, Course
from .synthetic_icu_stays import HOUR, Timeline, labels, numbers_as_text, times

Picker = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def fio2_percent(course: Course) -> np.ndarray:
    """Inspired O2 (%) per hour: titrated to PaO2 ~85 mmHg when ventilated, nasal cannula
    (28-36 %) when PaO2/FiO2 < 300, room air (21 %) otherwise."""
    pf, vent = course.hourly["pf"], course.hourly["vent"] > 0
    titrated = np.clip(np.round(8500.0 / np.maximum(pf, 40.0) / 5.0) * 5.0, 30.0, 100.0)
    cannula = 28.0 + 4.0 * (pf < 220) + 4.0 * (pf < 160)
    return np.where(vent, titrated, np.where(pf < 300, cannula, 21.0))


def chart_slots(rng: np.random.Generator, course: Course, tl: Timeline) -> np.ndarray:
    """(n, T) charting time (s) of each stay-hour: on the hour or a few minutes after, inside
    the stay."""
    n, hours = course.los_h.size, course.hours
    minutes = np.where(rng.random((n, hours)) < 0.6, 0, rng.integers(1, 60, (n, hours)))
    h = np.arange(hours)[None, :]
    room = np.maximum((course.los_h[:, None] - h) * HOUR - 60, 0)
    slots: np.ndarray = tl.intime[:, None] + h * HOUR + np.minimum(minutes * 60, room).astype(
        np.int64) // 60 * 60
    return slots


@dataclass
class EventRows:
    """Blocks of (stay index, time, item, value) rows, concatenated and sorted at the end."""

    stay: list[np.ndarray] = field(default_factory=list)
    time: list[np.ndarray] = field(default_factory=list)
    item: list[np.ndarray] = field(default_factory=list)
    num: list[np.ndarray] = field(default_factory=list)
    text: list[np.ndarray] = field(default_factory=list)
    vocabulary: list[str] = field(default_factory=list)
    uom: list[np.ndarray] = field(default_factory=list)
    uoms: list[str | None] = field(default_factory=list)

    def add(self, stay: np.ndarray, seconds: np.ndarray, itemid: int, valuenum: np.ndarray,
            uom: str | None, text: tuple[Sequence[str], np.ndarray] | None = None) -> None:
        """Append one block; `text` = (labels, codes) for text items, else the value is the
        number as MIMIC writes it."""
        if uom not in self.uoms:
            self.uoms.append(uom)
        self.stay.append(stay)
        self.time.append(np.asarray(seconds, dtype=np.int64))
        self.item.append(np.full(stay.size, itemid, dtype=np.int64))
        self.num.append(np.asarray(valuenum, dtype=np.float64))
        if text is None:
            self.text.append(np.full(stay.size, -1, dtype=np.int64))
        else:
            offset = len(self.vocabulary)
            self.vocabulary.extend(text[0])
            self.text.append(np.asarray(text[1], dtype=np.int64) + offset)
        self.uom.append(np.full(stay.size, self.uoms.index(uom), dtype=np.int32))

    def sorted_columns(self) -> tuple[np.ndarray, ...]:
        """(order-applied) stay, time, item, valuenum, value text, uom text."""
        stay, seconds, item = (np.concatenate(a) for a in (self.stay, self.time, self.item))
        order = np.lexsort((item, seconds, stay))
        num, code = np.concatenate(self.num)[order], np.concatenate(self.text)[order]
        is_text = code >= 0
        value = pc.replace_with_mask(numbers_as_text(num), pa.array(is_text),
                                     labels(self.vocabulary, code[is_text]))
        uom = labels(self.uoms, np.concatenate(self.uom)[order])
        return stay[order], seconds[order], item[order], num, value, uom


def chartevents_table(rng: np.random.Generator, c: Cohort, course: Course, tl: Timeline,
                      config: SyntheticIcuConfig, caregivers: np.ndarray) -> pa.Table:
    """All chartevents rows of a chunk, sorted by stay, time and item."""
    n, hours = c.n, course.hours
    inside = course.in_stay()
    h = np.arange(hours)[None, :]
    slot = chart_slots(rng, course, tl)
    x, b, hourly = course.hourly["x"], c.baseline, course.hourly
    vent = hourly["vent"] > 0
    rows = EventRows()

    def pick(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        si, hi = np.nonzero(mask)
        return si, hi, slot[si, hi]

    def noise(size: int, scale: float) -> np.ndarray:
        return scale * rng.standard_normal(size)

    si, hi, ts = pick(inside & (rng.random((n, hours)) > 0.03))
    pressor = np.minimum(hourly["ne_eq"][si, hi], 0.5)
    rows.add(si, ts, t.HR, np.clip(np.round(b["hr"][si] + 35 * x[si, hi] + 20 * pressor
                                            + noise(si.size, 4)), 30, 220), "bpm")
    arterial = c.arterial[:, None]
    for mask, (sys_id, dia_id, mean_id) in (
            (inside & arterial & (rng.random((n, hours)) > 0.05), (t.ABP_SYS, t.ABP_DIA, t.ABP_MEAN)),
            (inside & ((~arterial & (rng.random((n, hours)) > 0.08)) | (arterial & (h % 4 == 1))),
             (t.NBP_SYS, t.NBP_DIA, t.NBP_MEAN))):
        si, hi, ts = pick(mask)
        mean = hourly["map"][si, hi] + noise(si.size, 1.5)
        pulse = np.clip(40 + 0.3 * (c.age[si] - 60) + noise(si.size, 8), 20, 90)
        rows.add(si, ts, sys_id, np.round(mean + 2 * pulse / 3), "mmHg")
        rows.add(si, ts, dia_id, np.round(mean - pulse / 3), "mmHg")
        rows.add(si, ts, mean_id, np.round(mean), "mmHg")
    si, hi, ts = pick(inside & (rng.random((n, hours)) > 0.05))
    rows.add(si, ts, t.RR, np.clip(np.round(b["rr"][si] + 10 * x[si, hi] + noise(si.size, 1.5)),
                                   4, 60), "insp/min")
    si, hi, ts = pick(inside & (rng.random((n, hours)) > 0.03))
    rows.add(si, ts, t.SPO2, np.clip(np.round(b["spo2"][si] - 6 * x[si, hi] + 2 * vent[si, hi]
                                              + noise(si.size, 1)), 60, 100), "%")
    _temperature(rows, rng, pick(inside & ((h % 4 == 2) | (h == 0))), c, x, config)
    _gcs(rows, pick(inside & (h % 4 == 0)), hourly["gcs"], vent)
    _respiratory(rows, rng, pick, inside, vent, fio2_percent(course), config)
    _weight_height(rows, rng, pick, inside, c, slot)
    stay, seconds, item, num, text, uom = rows.sorted_columns()
    store = seconds + rng.integers(0, 46, stay.size) * 60
    return pa.table({
        "subject_id": tl.subject_id[stay], "hadm_id": tl.hadm_id[stay], "stay_id": tl.stay_id[stay],
        "caregiver_id": caregivers[(tl.stay_id[stay] * 7 + (seconds // (12 * HOUR)) * 13)
                                   % caregivers.size],
        "charttime": times(seconds), "storetime": times(store), "itemid": item, "value": text,
        "valuenum": pa.array(num, from_pandas=True), "valueuom": uom,
        "warning": np.zeros(stay.size, dtype=np.int64),
    }, schema=t.table_schema("chartevents"))


def _temperature(rows: EventRows, rng: np.random.Generator,
                 picked: tuple[np.ndarray, np.ndarray, np.ndarray], c: Cohort, x: np.ndarray,
                 config: SyntheticIcuConfig) -> None:
    si, hi, ts = picked
    celsius = (c.baseline["temp"][si] + c.baseline["fever_sign"][si] * 1.8
               * np.minimum(x[si, hi], 1.2) + 0.2 * rng.standard_normal(si.size))
    in_f = rng.random(si.size) < config.fahrenheit_fraction
    rows.add(si[in_f], ts[in_f], t.TEMP_F, np.round(celsius[in_f] * 9 / 5 + 32, 1), "°F")
    rows.add(si[~in_f], ts[~in_f], t.TEMP_C, np.round(celsius[~in_f], 1), "°C")


def _gcs(rows: EventRows, picked: tuple[np.ndarray, np.ndarray, np.ndarray],
         gcs: np.ndarray, vent: np.ndarray) -> None:
    """GCS as its three charted components; intubated patients chart verbal 'No Response-ETT'."""
    si, hi, ts = picked
    total = gcs[si, hi]
    deficit = 15 - total
    eye = np.clip(4 - np.round(0.3 * deficit), 1, 4)
    motor = np.clip(6 - np.round(0.35 * deficit), 1, 6)
    verbal = np.clip(total - eye - motor, 1, 5)
    ett = vent[si, hi]
    rows.add(si, ts, t.GCS_EYE, eye, None, (t.GCS_EYE_TEXT, eye.astype(int)))
    rows.add(si, ts, t.GCS_VERBAL, np.where(ett, 1, verbal), None,
             (t.GCS_VERBAL_TEXT, np.where(ett, 0, verbal).astype(int)))
    rows.add(si, ts, t.GCS_MOTOR, motor, None, (t.GCS_MOTOR_TEXT, motor.astype(int)))


def _respiratory(rows: EventRows, rng: np.random.Generator, pick: Picker,
                 inside: np.ndarray,
                 vent: np.ndarray, fio2: np.ndarray, config: SyntheticIcuConfig) -> None:
    n, hours = inside.shape
    h = np.arange(hours)[None, :]
    si, hi, ts = pick(inside & ((vent & (rng.random((n, hours)) > 0.2))
                                | (~vent & (fio2 > 21) & (h % 4 == 3))))
    value = fio2[si, hi]
    as_fraction = rng.random(si.size) < config.fio2_fraction_rows
    rows.add(si, ts, t.FIO2, np.where(as_fraction, value / 100.0, value), None)
    si, hi, ts = pick(inside & (h % 4 == 0))
    device = np.where(vent[si, hi], 0, np.where(fio2[si, hi] > 21, 1, 2))
    rows.add(si, ts, t.O2_DEVICE, np.full(si.size, np.nan), None,
             (["Endotracheal tube", "Nasal cannula", "None"], device))
    si, hi, ts = pick(inside & vent & (h % 4 == 0))
    rows.add(si, ts, t.VENT_MODE, np.full(si.size, np.nan), None,
             (["CMV/ASSIST/AutoFlow", "CPAP/PSV"], (rng.random(si.size) < 0.3).astype(int)))
    rows.add(si, ts, t.PEEP, rng.choice([5.0, 8.0, 10.0, 12.0], si.size), "cmH2O")


def _weight_height(rows: EventRows, rng: np.random.Generator, pick: Picker,
                 inside: np.ndarray,
                   c: Cohort, slot: np.ndarray) -> None:
    """Admission weight in kg (226512) or lb (226531), daily weight in kg, height in cm."""
    everyone = np.arange(c.n)
    first = slot[:, 0]
    lb = c.weight_lb
    rows.add(everyone[~lb], first[~lb], t.WEIGHT_ADMIT_KG, c.weight_kg[~lb], "kg")
    rows.add(everyone[lb], first[lb], t.WEIGHT_ADMIT_LB, np.round(c.weight_kg[lb] * 2.20462, 1),
             "lbs")
    si, _, ts = pick(inside & (np.arange(inside.shape[1])[None, :] % 24 == 12))
    rows.add(si, ts, t.WEIGHT_DAILY_KG, np.round(c.weight_kg[si] + rng.normal(0, 1.0, si.size), 1),
             "kg")
    tall = rng.random(c.n) < 0.7
    rows.add(everyone[tall], first[tall], t.HEIGHT_CM, c.height_cm[tall], "cm")
