"""Identifiers and timelines of synthetic stays: `patients`, `admissions`, `icustays` rows.

Dates are shifted into 2110-2210 per patient and ages follow MIMIC-IV's anchor scheme
(age at admission = anchor_age + year(admittime) - anchor_year; ages over 89 appear as 91).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from . import synthetic_icu_tables as t
from .synthetic_icu_physiology import Cohort, Course

HOUR = 3600
DAY = 86400
EPOCH_2110 = int(np.datetime64("2110-01-01T00:00:00", "s").astype(np.int64))
SPAN_95_YEARS = 95 * 365 * DAY


@dataclass
class IdCounters:
    """Next free value of every running identifier; chunks draw ids in order (deterministic)."""

    next: dict[str, int] = field(default_factory=lambda: {
        "subject_id": 10_000_000, "hadm_id": 20_000_000, "stay_id": 30_000_000,
        "labevent_id": 1, "specimen_id": 1, "microevent_id": 1, "micro_specimen_id": 1,
        "pharmacy_id": 1, "orderid": 1})

    def take(self, name: str, count: int) -> np.ndarray:
        """`count` consecutive new ids of kind `name`."""
        start = self.next[name]
        self.next[name] = start + int(count)
        return np.arange(start, start + int(count), dtype=np.int64)


@dataclass
class Timeline:
    """Per-stay identifiers and absolute times (seconds since 1970, minute resolution)."""

    subject_id: np.ndarray
    hadm_id: np.ndarray
    stay_id: np.ndarray
    admittime: np.ndarray
    intime: np.ndarray
    outtime: np.ndarray
    dischtime: np.ndarray
    deathtime: np.ndarray       # -1: alive at discharge
    dod_day: np.ndarray         # days since 1970, -1: no recorded death
    from_ed: np.ndarray
    anchor_age: np.ndarray
    anchor_year: np.ndarray
    age_at_admission: np.ndarray
    died_in_hospital: np.ndarray
    died_after_discharge: np.ndarray


def times(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Seconds since 1970 -> arrow timestamp[s] (null where `valid` is False)."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(np.asarray(seconds, dtype=np.int64), type=pa.int64(), mask=mask).cast(t.TIME)


def labels(choices: Sequence[str | None], codes: np.ndarray) -> pa.Array:
    """Index a small list of strings by integer codes (nulls allowed), as an arrow string array."""
    dictionary = pa.array(list(choices), type=pa.string())
    indices = pa.array(np.asarray(codes, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode()


def numbers_as_text(values: np.ndarray) -> pa.Array:
    """Numeric values as MIMIC writes them in its text `value` columns ("80", "98.6")."""
    return pa.compute.cast(pa.array(np.asarray(values, dtype=np.float64)), pa.string())


def build_timeline(rng: np.random.Generator, c: Cohort, course: Course,
                   ids: IdCounters) -> Timeline:
    """Place each stay in (shifted) calendar time; readmissions follow their first stay."""
    n = c.n
    subject = ids.take("subject_id", int(c.subject_index.max()) + 1)[c.subject_index]
    hadm, stay = ids.take("hadm_id", n), ids.take("stay_id", n)
    from_ed = rng.random(n) < 0.7
    pre_icu = np.where(from_ed, rng.uniform(2, 12, n), rng.uniform(0.5, 48, n)) * HOUR
    los = course.los_h * HOUR
    x_end = course.hourly["x"][np.arange(n), np.minimum(course.los_h.astype(int), course.hours - 1)]
    died_later = ~course.died_icu & ~c.protected & (rng.random(n) < 0.02 + 0.3 * x_end)
    post = np.where(died_later, rng.uniform(6, 7 * 24, n), rng.uniform(12, 10 * 24, n)) * HOUR
    post = np.where(course.died_icu, 0.0, post)
    span = pre_icu + los + post
    admit = EPOCH_2110 + rng.integers(0, SPAN_95_YEARS, n).astype(np.float64)
    gap = rng.uniform(20, 400, n) * DAY
    prev = np.maximum(np.arange(n) - 1, 0)
    admit = np.where(c.is_second, admit[prev] + span[prev] + gap, admit)
    admit = (admit // 60) * 60
    intime = (admit + pre_icu) // 60 * 60
    outtime = intime + np.round(los / 60) * 60
    disch = np.where(course.died_icu, outtime, (outtime + post) // 60 * 60)
    died_hosp = course.died_icu | died_later
    death = np.where(died_hosp, disch, -1)
    after = ~died_hosp & ~c.protected & (
        rng.random(n) < 0.04 + 0.15 * c.severity + 0.002 * np.maximum(c.age - 60, 0))
    dod_sec = np.where(died_hosp, disch, disch + rng.uniform(2, 365, n) * DAY)
    dod_day = np.where(died_hosp | after, dod_sec // DAY, -1)

    year = (admit.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970)
    first = np.where(c.is_second, prev, np.arange(n))
    shift = np.where(c.age[first] < 18, 0, rng.integers(0, 3, n))[first]
    anchor_year = year[first] - shift
    anchor_age = np.floor(c.age[first]).astype(np.int64) - shift
    anchor_age = np.where(anchor_age > 89, 91, anchor_age)
    age_now = anchor_age + year - anchor_year
    return Timeline(
        subject_id=subject, hadm_id=hadm, stay_id=stay, admittime=admit.astype(np.int64),
        intime=intime.astype(np.int64), outtime=outtime.astype(np.int64),
        dischtime=disch.astype(np.int64), deathtime=death.astype(np.int64),
        dod_day=dod_day.astype(np.int64), from_ed=from_ed, anchor_age=anchor_age,
        anchor_year=anchor_year, age_at_admission=age_now, died_in_hospital=died_hosp,
        died_after_discharge=after)


def patients_table(rng: np.random.Generator, c: Cohort, tl: Timeline) -> pa.Table:
    """One `hosp/patients` row per patient (its last stay carries any date of death)."""
    last = np.flatnonzero(~c.protected)
    dod = tl.dod_day[last]
    return pa.table({
        "subject_id": tl.subject_id[last],
        "gender": labels(["M", "F"], c.female[last].astype(int)),
        "anchor_age": tl.anchor_age[last], "anchor_year": tl.anchor_year[last],
        "anchor_year_group": labels(t.ANCHOR_YEAR_GROUPS, rng.integers(0, 5, last.size)),
        "dod": pa.array(dod.astype(np.int32), type=pa.int32(), mask=dod < 0).cast(t.DATE),
    }, schema=t.table_schema("patients"))


def admissions_table(rng: np.random.Generator, tl: Timeline, providers: np.ndarray) -> pa.Table:
    """One `hosp/admissions` row per hospital admission."""
    n = tl.hadm_id.size
    ed = tl.from_ed
    other_type = rng.integers(1, 4, n)
    edreg = tl.admittime - (rng.uniform(1, 8, n) * HOUR // 60 * 60).astype(np.int64)
    alive_loc = rng.integers(1, 5, n)
    return pa.table({
        "subject_id": tl.subject_id, "hadm_id": tl.hadm_id,
        "admittime": times(tl.admittime), "dischtime": times(tl.dischtime),
        "deathtime": times(tl.deathtime, tl.deathtime >= 0),
        "admission_type": labels(["EW EMER.", "URGENT", "ELECTIVE", "SURGICAL SAME DAY ADMISSION"],
                                 np.where(ed, 0, other_type)),
        "admit_provider_id": pa.array(providers[rng.integers(0, providers.size, n)]),
        "admission_location": labels(["EMERGENCY ROOM", "TRANSFER FROM HOSPITAL",
                                      "PHYSICIAN REFERRAL"], np.where(ed, 0, rng.integers(1, 3, n))),
        "discharge_location": labels(["DIED", "HOME", "HOME HEALTH CARE", "SKILLED NURSING FACILITY",
                                      "REHAB"], np.where(tl.died_in_hospital, 0, alive_loc)),
        "insurance": labels(["Medicare", "Medicaid", "Other"], rng.integers(0, 3, n)),
        "language": labels(["ENGLISH", "?"], (rng.random(n) < 0.08).astype(int)),
        "marital_status": labels(["MARRIED", "SINGLE", "WIDOWED", "DIVORCED", None],
                                 rng.integers(0, 5, n)),
        "race": labels(["WHITE", "BLACK/AFRICAN AMERICAN", "HISPANIC/LATINO - PUERTO RICAN", "ASIAN",
                        "OTHER", "UNKNOWN"], rng.integers(0, 6, n)),
        "edregtime": times(edreg, ed), "edouttime": times(tl.admittime, ed),
        "hospital_expire_flag": tl.died_in_hospital.astype(np.int64),
    }, schema=t.table_schema("admissions"))


def icustays_table(rng: np.random.Generator, tl: Timeline) -> pa.Table:
    """One `icu/icustays` row per ICU stay; `los` in fractional days as MIMIC-IV has it."""
    n = tl.stay_id.size
    first = rng.integers(0, len(t.CAREUNITS), n)
    last = np.where(rng.random(n) < 0.9, first, rng.integers(0, len(t.CAREUNITS), n))
    return pa.table({
        "subject_id": tl.subject_id, "hadm_id": tl.hadm_id, "stay_id": tl.stay_id,
        "first_careunit": labels(t.CAREUNITS, first), "last_careunit": labels(t.CAREUNITS, last),
        "intime": times(tl.intime), "outtime": times(tl.outtime),
        "los": np.round((tl.outtime - tl.intime) / DAY, 6),
    }, schema=t.table_schema("icustays"))
