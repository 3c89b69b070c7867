"""Issue 13 conventions checked on the real MIMIC-III demo (CareVue and MetaVision), against raw rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dosewise.pipelines.sources.duckdb_catalog import MimicCatalog
from dosewise.pipelines.sources.mimic_layout import detect_layout

pytestmark = pytest.mark.slow

PARAMS = {"cv_rate_hold_hours": 1, "weight_fallback": "fixed", "weight_fallback_kg": 80.0}


@pytest.fixture(scope="module")
def demo(mimic3_demo_dir: Path) -> MimicCatalog:
    cat = MimicCatalog(detect_layout(mimic3_demo_dir), PARAMS, threads=2)
    cat.build(["sepsis3", "vasopressor_rates", "urine_output", "gcs", "antibiotic"])
    return cat


def _df(cat: MimicCatalog, sql: str) -> pd.DataFrame:
    return cat.con.execute(sql).df()


def test_suspicion_times_keep_the_culture_clock_time(demo: MimicCatalog) -> None:
    """MIMIC-III antibiotics have only a date: the suspicion takes the culture's clock time."""
    si = _df(demo, """
        SELECT si.*, EXISTS (SELECT 1 FROM microbiologyevents m WHERE m.subject_id = si.subject_id
                             AND m.charttime = si.culture_time) AS culture_timed
        FROM suspicion_of_infection si""")
    timed = si[si["culture_timed"]]
    assert (timed["suspected_infection_time"] == timed["culture_time"]).all()
    assert len(timed) > 100 and not timed["suspicion_date_only"].any()
    first = si[si["suspicion_seq"] == 1].set_index("stay_id")["suspected_infection_time"]
    assert (first.dt.hour + first.dt.minute > 0).mean() > 0.9  # midnight is rare once dates never win


def test_sepsis3_tests_every_suspicion(demo: MimicCatalog) -> None:
    s3 = _df(demo, "SELECT * FROM sepsis3")
    assert s3["stay_id"].is_unique and (s3["n_suspicions"] > 1).sum() > 10
    later = s3[s3["onset_suspicion_seq"] > 1]
    assert len(later) > 0 and later["sepsis3"].all()  # a later event qualified where the first did not


def test_gcs_maps_carevue_and_never_scores_an_intubated_verbal_as_one(demo: MimicCatalog) -> None:
    cv = _df(demo, """
        SELECT g.gcs_total, g.gcs_source, g.gcs_unable FROM gcs g
        JOIN icustay_detail s USING (stay_id) WHERE s.care_system = 'carevue'""")
    raw_cv = _df(demo, "SELECT count(DISTINCT (icustay_id, charttime)) AS n FROM chartevents "
                       "WHERE itemid IN (184, 454, 723) AND valuenum IS NOT NULL")["n"][0]
    assert len(cv) == raw_cv  # one GCS per CareVue component chart time (items 184, 454, 723)
    ett = _df(demo, """
        SELECT g.* FROM gcs g JOIN chartevents c ON c.icustay_id = g.stay_id AND c.charttime = g.charttime
        WHERE c.itemid IN (723, 223900) AND c.value IN ('1.0 ET/Trach', 'No Response-ETT')""")
    assert len(ett) > 500 and ett["gcs_unable"].all()
    assert set(ett["gcs_source"]) <= {"pre_sedation", "normal_15"}
    assert (ett.loc[ett["gcs_source"] == "normal_15", "gcs_total"] == 15).all()


def test_carevue_infusions_end_at_the_next_chart_or_a_stop(demo: MimicCatalog) -> None:
    checked = _df(demo, """
        WITH charts AS (
            SELECT DISTINCT icustay_id AS stay_id, itemid, charttime,
                   lead(charttime) OVER (PARTITION BY icustay_id, itemid ORDER BY charttime) AS next_chart
            FROM (SELECT DISTINCT icustay_id, itemid, charttime FROM inputevents_cv
                  WHERE itemid IN (SELECT itemid FROM rule_vasopressor_equivalents))
        )
        SELECT r.starttime, r.endtime, c.next_chart,
               EXISTS (SELECT 1 FROM inputevents_cv s WHERE s.icustay_id = r.stay_id AND s.itemid = r.itemid
                       AND s.charttime = r.starttime AND (s.stopped = 'Stopped' OR s.stopped LIKE 'D/C%'))
                   AS starts_at_stop
        FROM vasopressor_rates r
        JOIN charts c ON c.stay_id = r.stay_id AND c.itemid = r.itemid AND c.charttime = r.starttime
        WHERE r.patientweight IS NULL""")
    assert len(checked) > 2000
    nxt = checked.dropna(subset=["next_chart"])
    assert (nxt["endtime"] == nxt["next_chart"]).all()
    last = checked[checked["next_chart"].isna()]
    assert ((last["endtime"] - last["starttime"]) == pd.Timedelta(hours=1)).all()
    assert not checked["starts_at_stop"].any()


def test_antibiotics_match_tmp_smx_and_cefpodoxime_and_drop_eye_and_ear_routes(demo: MimicCatalog) -> None:
    abx = _df(demo, "SELECT drug, route FROM antibiotic")
    drugs = abx["drug"].str.lower()
    assert drugs.str.contains("sulfameth/trimethoprim").any() and drugs.str.contains("cefpodoxime").any()
    routes = abx["route"].fillna("").str.upper()
    assert not routes.str.contains("EYE|EAR").any()
    assert not routes.isin(["OU", "OS", "OD", "AU", "AS", "AD", "TP"]).any()


def test_bladder_irrigation_nets_out(demo: MimicCatalog) -> None:
    per_stay = _df(demo, """
        WITH irrigated AS (SELECT DISTINCT icustay_id FROM outputevents WHERE itemid IN (227488, 227489)),
        raw AS (
            SELECT o.icustay_id AS stay_id,
                   sum(CASE WHEN o.itemid = 227488 THEN -o.value ELSE o.value END) AS expected
            FROM outputevents o JOIN irrigated USING (icustay_id)
            WHERE o.iserror IS DISTINCT FROM 1 AND (o.itemid IN (227488, 227489) OR o.itemid IN
                  (SELECT itemid FROM rule_item_map WHERE source_table = 'outputevents'))
            GROUP BY 1)
        SELECT r.stay_id, r.expected, sum(u.urine_output_ml) AS got
        FROM raw r JOIN urine_output u USING (stay_id) GROUP BY ALL""")
    assert len(per_stay) == 3
    assert per_stay["got"].tolist() == pytest.approx(per_stay["expected"].tolist())
