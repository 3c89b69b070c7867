"""`hosp/microbiologyevents` and `hosp/prescriptions` rows: the infection-suspicion evidence.

Planted infections get an antibiotic and a culture whose timing meets the Sepsis-3 suspicion rule
(Seymour et al., JAMA 2016; mimic-code `suspicion_of_infection.sql`): antibiotic then culture
within 24 h, or culture then antibiotic within 72 h. Distractors do not: surgical prophylaxis
(antibiotic, no culture), a culture with no antibiotic, and a culture and antibiotic > 72 h apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import synthetic_icu_tables as t
from .synthetic_icu_physiology import NONE, SEPTIC, Cohort
from .synthetic_icu_stays import DAY, HOUR, IdCounters, Timeline, labels, times

ORGANISMS = [(80002, "ESCHERICHIA COLI"), (80023, "STAPH AUREUS COAG +"),
             (80026, "KLEBSIELLA PNEUMONIAE"), (80053, "ENTEROCOCCUS SP.")]
SUSCEPTIBILITY = [(90015, "VANCOMYCIN"), (90012, "GENTAMICIN"), (90025, "CEFTRIAXONE")]
SPECIMENS = [(70012, "BLOOD CULTURE", 90201, "Blood Culture, Routine"),
             (70079, "URINE", 90039, "URINE CULTURE")]


@dataclass
class InfectionCare:
    """Per-stay hours (from ICU intime) of culture, treating antibiotic and prophylaxis (nan: none)."""

    culture_h: np.ndarray
    antibiotic_h: np.ndarray
    prophylaxis_h: np.ndarray


def infection_care(rng: np.random.Generator, c: Cohort) -> InfectionCare:
    """Planted care plus the non-septic distractors that must not meet the suspicion rule."""
    u = rng.random(c.n)
    plain = c.case == NONE
    culture_only = plain & (u >= 0.15) & (u < 0.23)
    far_apart = plain & (u >= 0.23) & (u < 0.27)
    early = rng.uniform(0, 12, c.n)
    culture = np.where(culture_only | far_apart, early, c.culture_h)
    antibiotic = np.where(far_apart, early + rng.uniform(80, 120, c.n), c.antibiotic_h)
    prophylaxis = np.where(plain & (u < 0.15), rng.uniform(-2, 4, c.n), np.nan)
    return InfectionCare(culture, antibiotic, prophylaxis)


def microbiologyevents_table(rng: np.random.Generator, c: Cohort, care: InfectionCare,
                             tl: Timeline, ids: IdCounters, providers: np.ndarray) -> pa.Table:
    """Culture rows: no growth (one row) or an organism with its susceptibility rows."""
    cultured = np.flatnonzero(np.isfinite(care.culture_h))
    urine_too = cultured[rng.random(cultured.size) < 0.4]
    stay = np.concatenate([cultured, urine_too])
    spec = np.concatenate([np.zeros(cultured.size, int), np.ones(urine_too.size, int)])
    at = (tl.intime[stay] + (care.culture_h[stay] * HOUR).astype(np.int64) + spec * 600) // 60 * 60
    p_pos = np.select([c.case[stay] == SEPTIC, c.case[stay] == NONE], [0.5, 0.05], 0.3)
    positive = rng.random(stay.size) < p_pos
    tested = 2  # susceptibility rows under a positive culture's organism row
    per_specimen = np.where(positive, 1 + tested, 1)
    specimen_id = ids.take("micro_specimen_id", stay.size)
    r = np.repeat(np.arange(stay.size), per_specimen)
    k = np.arange(r.size) - np.repeat(np.cumsum(per_specimen) - per_specimen, per_specimen)
    organism = rng.integers(0, len(ORGANISMS), stay.size)[r]
    has_org = positive[r]
    ab = np.where(has_org & (k >= 1), k, 0)
    has_ab = ab > 0
    no_time = (rng.random(stay.size) < 0.05)[r]
    s = stay[r]
    chart = at[r]
    store = chart + rng.integers(2 * DAY, 4 * DAY, r.size) // 60 * 60
    sp = spec[r]
    return pa.table({
        "microevent_id": ids.take("microevent_id", r.size), "subject_id": tl.subject_id[s],
        "hadm_id": tl.hadm_id[s], "micro_specimen_id": specimen_id[r],
        "order_provider_id": pa.array(providers[(s * 3) % providers.size]),
        "chartdate": times(chart // DAY * DAY), "charttime": times(chart, ~no_time),
        "spec_itemid": np.array([x[0] for x in SPECIMENS])[sp],
        "spec_type_desc": labels([x[1] for x in SPECIMENS], sp),
        "test_seq": np.ones(r.size, dtype=np.int64),
        "storedate": times(store // DAY * DAY), "storetime": times(store),
        "test_itemid": np.array([x[2] for x in SPECIMENS])[sp],
        "test_name": labels([x[3] for x in SPECIMENS], sp),
        "org_itemid": pa.array(np.array([o[0] for o in ORGANISMS])[organism], mask=~has_org),
        "org_name": pa.array(np.array([o[1] for o in ORGANISMS], dtype=object)[organism],
                             type=pa.string(), mask=~has_org),
        "isolate_num": pa.array(np.ones(r.size, dtype=np.int64), mask=~has_org),
        "quantity": pa.nulls(r.size, pa.string()),
        "ab_itemid": pa.array(np.array([0] + [a[0] for a in SUSCEPTIBILITY])[ab], mask=~has_ab),
        "ab_name": labels([None] + [a[1] for a in SUSCEPTIBILITY], ab),
        "dilution_text": labels([None, "<=1"], has_ab.astype(int)),
        "dilution_comparison": labels([None, "<="], has_ab.astype(int)),
        "dilution_value": pa.array(np.ones(r.size), mask=~has_ab),
        "interpretation": labels([None, "S", "R"], np.where(has_ab, 1 + (k == 2), 0)),
        "comments": labels([None, "No growth."], (~has_org & (k == 0)).astype(int)),
    }, schema=t.table_schema("microbiologyevents"))


DRUG_DETAILS = {  # drug -> formulary code, strength, dose, unit, form, doses/24 h, route
    "Vancomycin": ("VANC1F", "1g Vial", "1000", "mg", "VIAL", 2.0, "IV"),
    "Piperacillin-Tazobactam": ("PIPT4F", "4.5 g Vial", "4.5", "g", "VIAL", 3.0, "IV"),
    "CefePIME": ("CEFE2F", "2g Vial", "2", "g", "VIAL", 2.0, "IV"),
    "Meropenem": ("MERO1F", "1g Vial", "1", "g", "VIAL", 3.0, "IV"),
    "CeftriaXONE": ("CEFT1F", "1g Vial", "1", "g", "VIAL", 1.0, "IV"),
    "Levofloxacin": ("LEVO750F", "750mg Premix Bag", "750", "mg", "BAG", 1.0, "IV"),
    "MetroNIDAZOLE (FLagyl)": ("METR500F", "500mg Premix Bag", "500", "mg", "BAG", 3.0, "IV"),
    "Azithromycin": ("AZIT500F", "500 mg Vial", "500", "mg", "VIAL", 1.0, "IV"),
    "CeFAZolin": ("CEFA2F", "2g Vial", "2", "g", "VIAL", 3.0, "IV"),
    "Heparin": ("HEPA5I", "5000 Units / mL- 1mL Vial", "5000", "UNIT", "mL", 3.0, "SC"),
    "Acetaminophen": ("ACET325", "325mg Tablet", "650", "mg", "TAB", 4.0, "PO/NG"),
    "Pantoprazole": ("PANT40", "40mg Tablet", "40", "mg", "TAB", 1.0, "PO"),
    "Insulin": ("INSULIN", "100 Units / mL - 10 mL Vial", "0", "UNIT", "VIAL", 4.0, "SC"),
    "Furosemide": ("FURO20I", "20mg/2mL Vial", "20", "mg", "VIAL", 2.0, "IV"),
}


def prescriptions_table(rng: np.random.Generator, c: Cohort, care: InfectionCare,
                        tl: Timeline, ids: IdCounters, providers: np.ndarray) -> pa.Table:
    """Antibiotic courses (treatment and prophylaxis) and everyday non-antibiotic orders."""
    n = c.n
    drugs = list(DRUG_DETAILS)
    treated = np.flatnonzero(np.isfinite(care.antibiotic_h))
    second = treated[rng.random(treated.size) < 0.6]
    prophylaxis = np.flatnonzero(np.isfinite(care.prophylaxis_h))
    everyone = np.arange(n)
    antibiotic_codes = np.array([drugs.index(d) for d in t.ANTIBIOTICS])
    other_codes = np.array([drugs.index(d) for d in t.OTHER_DRUGS[1:]])
    abx = rng.integers(0, len(t.ANTIBIOTICS), n)
    blocks = [  # (stay, start hour, drug index, course days)
        (treated, care.antibiotic_h[treated], antibiotic_codes[abx[treated]],
         rng.uniform(3, 10, treated.size)),
        (second, care.antibiotic_h[second] + rng.uniform(0, 1.5, second.size),
         antibiotic_codes[(abx[second] + 1 + rng.integers(0, 3, second.size)) % len(t.ANTIBIOTICS)],
         rng.uniform(2, 7, second.size)),
        (prophylaxis, care.prophylaxis_h[prophylaxis],
         np.full(prophylaxis.size, drugs.index(t.PROPHYLAXIS_ANTIBIOTIC)), np.ones(prophylaxis.size)),
        (everyone, rng.uniform(0, 6, n), np.full(n, drugs.index(t.OTHER_DRUGS[0])),
         rng.uniform(1, 8, n)),
        (everyone, rng.uniform(0, 12, n), other_codes[rng.integers(0, other_codes.size, n)],
         rng.uniform(1, 8, n)),
    ]
    stay = np.concatenate([b[0] for b in blocks])
    hour = np.concatenate([b[1] for b in blocks])
    drug = np.concatenate([b[2] for b in blocks]).astype(np.int64)
    days = np.concatenate([b[3] for b in blocks])
    start = (tl.intime[stay] + (hour * HOUR).astype(np.int64)) // 60 * 60
    order = np.lexsort((drug, start, stay))
    stay, drug, start, days = stay[order], drug[order], start[order], days[order]
    stop = (start + (days * DAY).astype(np.int64)) // HOUR * HOUR
    seq = np.arange(stay.size) + 1
    poe = [f"{subj}-{k}" for subj, k in zip(tl.subject_id[stay].tolist(), seq.tolist(), strict=True)]
    detail = [list(col) for col in zip(*DRUG_DETAILS.values(), strict=True)]
    return pa.table({
        "subject_id": tl.subject_id[stay], "hadm_id": tl.hadm_id[stay],
        "pharmacy_id": ids.take("pharmacy_id", stay.size), "poe_id": pa.array(poe, pa.string()),
        "poe_seq": seq, "order_provider_id": pa.array(providers[(stay * 5) % providers.size]),
        "starttime": times(start), "stoptime": times(stop),
        "drug_type": labels(["MAIN"], np.zeros(stay.size, dtype=int)), "drug": labels(drugs, drug),
        "formulary_drug_cd": labels(detail[0], drug), "gsn": pa.nulls(stay.size, pa.string()),
        "ndc": labels(["0"], np.zeros(stay.size, dtype=int)),
        "prod_strength": labels(detail[1], drug), "form_rx": pa.nulls(stay.size, pa.string()),
        "dose_val_rx": labels(detail[2], drug), "dose_unit_rx": labels(detail[3], drug),
        "form_val_disp": labels(["1"], np.zeros(stay.size, dtype=int)),
        "form_unit_disp": labels(detail[4], drug),
        "doses_per_24_hrs": np.array(detail[5], dtype=np.float64)[drug],
        "route": labels(detail[6], drug),
    }, schema=t.table_schema("prescriptions"))
