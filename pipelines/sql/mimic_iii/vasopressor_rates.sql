-- title: Vasopressor infusion rates (MIMIC-III, CareVue and MetaVision)
-- reference: rules/vasopressor_equivalents.csv item ids (mimic-code mimic-iii norepinephrine_dose.sql etc.); a CareVue rate holds until the next charted rate of the same drug, at most etl_params.cv_rate_hold_hours (mimic-code vasopressor durations)
-- units: rate in `rateuom` as charted; patientweight in kg (MetaVision only); stay_id = icustay_id
-- requires: inputevents_cv | inputevents_mv
-- depends:
CREATE OR REPLACE TABLE vasopressor_rates AS
WITH cv AS (
    SELECT
        cv.subject_id, cv.hadm_id, cv.icustay_id AS stay_id, cv.charttime AS starttime,
        least(
            coalesce(lead(cv.charttime) OVER (PARTITION BY cv.icustay_id, cv.itemid ORDER BY cv.charttime),
                     cv.charttime + to_hours(CAST((SELECT cv_rate_hold_hours FROM etl_params) AS BIGINT))),
            cv.charttime + to_hours(CAST((SELECT cv_rate_hold_hours FROM etl_params) AS BIGINT))
        ) AS endtime,
        cv.itemid, v.drug, cv.rate, cv.rateuom, CAST(NULL AS DOUBLE) AS patientweight
    FROM inputevents_cv cv
    JOIN rule_vasopressor_equivalents v ON v.itemid = cv.itemid AND v.versions IN ('both', 'iii')
    WHERE cv.rate IS NOT NULL
)
SELECT * FROM cv
UNION ALL
SELECT
    mv.subject_id, mv.hadm_id, mv.icustay_id AS stay_id, mv.starttime, mv.endtime, mv.itemid, v.drug,
    mv.rate, mv.rateuom, mv.patientweight
FROM inputevents_mv mv
JOIN rule_vasopressor_equivalents v ON v.itemid = mv.itemid AND v.versions IN ('both', 'iii')
WHERE mv.rate IS NOT NULL AND mv.statusdescription IS DISTINCT FROM 'Rewritten';
