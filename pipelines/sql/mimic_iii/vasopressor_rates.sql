-- title: Vasopressor infusion rates (MIMIC-III, CareVue and MetaVision)
-- reference: rules/vasopressor_equivalents.csv item ids; mimic-code mimic-iii/concepts/durations/norepinephrine_dose.sql and vasopressor_durations.sql (CareVue: a charted rate holds until the next chart of the same drug, and a row whose `stopped` is 'Stopped' or 'D/C...' ends the infusion; rows without a rate start nothing); MetaVision rows have their own start and end ('Rewritten' rows excluded); rows whose STOPPED or STATUSDESCRIPTION is not a documented value are set aside by event_flags.sql (quarantined)
-- units: rate in `rateuom` as charted; patientweight in kg (MetaVision only); stay_id = icustay_id. CareVue: starttime = charttime of a row with a rate that is not a stop; endtime = the next chart of the same item in the stay (with or without a rate, stop rows included); after the last chart of the item the rate holds etl_params.cv_rate_hold_hours (default 1 h: CareVue infusions are charted hourly; mimic-code gives the last chart no duration)
-- requires: inputevents_cv | inputevents_mv
-- depends:
CREATE OR REPLACE TABLE vasopressor_rates AS
WITH cv_charts AS (
    SELECT cv.subject_id, cv.hadm_id, cv.icustay_id AS stay_id, cv.charttime, cv.itemid,
           max(v.drug) AS drug, max(cv.rate) AS rate, max(cv.rateuom) AS rateuom,
           -- one row per stay, item and chart time; a stop charted at that time wins
           max(CASE WHEN cv.stopped = 'Stopped' OR cv.stopped LIKE 'D/C%' THEN 1 ELSE 0 END) AS is_stop
    FROM inputevents_cv cv
    JOIN rule_vasopressor_equivalents v ON v.itemid = cv.itemid AND v.versions IN ('both', 'iii')
    WHERE cv.charttime IS NOT NULL
      AND (cv.stopped IS NULL OR cv.stopped IN (SELECT value FROM rule_event_flags
                                    WHERE source_table = 'inputevents_cv' AND "column" = 'stopped' AND action = 'keep' AND versions IN ('both', 'iii')))
    GROUP BY cv.subject_id, cv.hadm_id, cv.icustay_id, cv.charttime, cv.itemid
),
cv AS (
    SELECT subject_id, hadm_id, stay_id, charttime AS starttime,
           coalesce(lead(charttime) OVER (PARTITION BY stay_id, itemid ORDER BY charttime),
                    charttime + to_hours(CAST((SELECT cv_rate_hold_hours FROM etl_params) AS BIGINT)))
               AS endtime,
           itemid, drug, rate, rateuom, is_stop
    FROM cv_charts
)
SELECT subject_id, hadm_id, stay_id, starttime, endtime, itemid, drug, rate, rateuom,
       CAST(NULL AS DOUBLE) AS patientweight
FROM cv
WHERE rate IS NOT NULL AND is_stop = 0
UNION ALL
SELECT
    mv.subject_id, mv.hadm_id, mv.icustay_id AS stay_id, mv.starttime, mv.endtime, mv.itemid, v.drug,
    mv.rate, mv.rateuom, mv.patientweight
FROM inputevents_mv mv
JOIN rule_vasopressor_equivalents v ON v.itemid = mv.itemid AND v.versions IN ('both', 'iii')
WHERE mv.rate IS NOT NULL
  AND (mv.statusdescription IS NULL OR mv.statusdescription IN (SELECT value FROM rule_event_flags
    WHERE source_table = 'inputevents_mv' AND "column" = 'statusdescription' AND action = 'keep' AND versions IN ('both', 'iii')));
