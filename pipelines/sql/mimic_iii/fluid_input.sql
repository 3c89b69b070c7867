-- title: Intravenous fluid volumes, crystalloids and colloids (MIMIC-III, CareVue and MetaVision)
-- reference: rules/fluid_items.csv (mimic-code crystalloid_bolus.sql / colloid_bolus.sql items; AI Clinician tonicity factors); CareVue rows are charted amounts at charttime (start = end); MetaVision 'Rewritten' rows (mimic-code crystalloid_bolus.sql) and rows whose status is not a documented value are set aside by event_flags.sql (quarantined)
-- units: amount_ml and amount_tonicity_ml in millilitres; stay_id = icustay_id
-- requires: inputevents_cv | inputevents_mv
-- depends:
CREATE OR REPLACE TABLE fluid_input AS
SELECT
    cv.subject_id, cv.hadm_id, cv.icustay_id AS stay_id, cv.charttime AS starttime,
    cv.charttime AS endtime, cv.itemid, f.fluid_class, f.tonicity_factor, cv.amountuom,
    CASE lower(cv.amountuom) WHEN 'ml' THEN cv.amount WHEN 'l' THEN cv.amount * 1000 END AS amount_ml,
    CASE lower(cv.amountuom) WHEN 'ml' THEN cv.amount WHEN 'l' THEN cv.amount * 1000 END
        * f.tonicity_factor AS amount_tonicity_ml,
    lower(cv.amountuom) IN ('ml', 'l') AS amount_unit_known
FROM inputevents_cv cv
JOIN rule_fluid_items f ON f.itemid = cv.itemid AND f.versions IN ('both', 'iii')
WHERE cv.amount IS NOT NULL
  AND (cv.stopped IS NULL OR cv.stopped IN (SELECT value FROM rule_event_flags
                                WHERE source_table = 'inputevents_cv' AND "column" = 'stopped' AND action = 'keep' AND versions IN ('both', 'iii')))
UNION ALL
SELECT
    mv.subject_id, mv.hadm_id, mv.icustay_id AS stay_id, mv.starttime, mv.endtime, mv.itemid,
    f.fluid_class, f.tonicity_factor, mv.amountuom,
    CASE lower(mv.amountuom) WHEN 'ml' THEN mv.amount WHEN 'l' THEN mv.amount * 1000 END AS amount_ml,
    CASE lower(mv.amountuom) WHEN 'ml' THEN mv.amount WHEN 'l' THEN mv.amount * 1000 END
        * f.tonicity_factor AS amount_tonicity_ml,
    lower(mv.amountuom) IN ('ml', 'l') AS amount_unit_known
FROM inputevents_mv mv
JOIN rule_fluid_items f ON f.itemid = mv.itemid AND f.versions IN ('both', 'iii')
WHERE mv.statusdescription IS NULL OR mv.statusdescription IN (SELECT value FROM rule_event_flags
    WHERE source_table = 'inputevents_mv' AND "column" = 'statusdescription' AND action = 'keep' AND versions IN ('both', 'iii'));
