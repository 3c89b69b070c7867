-- title: Raw event rows set aside by their flags: charted in error, rewritten, or a flag outside its documented values (MIMIC-III)
-- reference: rules/event_flags.csv (documented values of CHARTEVENTS.ERROR, OUTPUTEVENTS.ISERROR, INPUTEVENTS_MV.STATUSDESCRIPTION and INPUTEVENTS_CV.STOPPED, MIMIC-III table documentation); error = 1 rows are excluded as in mimic-code mimic-iii/concepts/pivot/pivoted_vital.sql (ce.error IS DISTINCT FROM 1), 'Rewritten' rows as in mimic-code crystalloid_bolus.sql (statusdescription != 'Rewritten'); a value the documentation does not list is never read as a default: the row is quarantined. Only rows of items the ETL reads (rules/item_map.csv, fluid_items.csv, vasopressor_equivalents.csv) are listed; chart_measurements, urine_output, fluid_input and vasopressor_rates keep exactly the rows not listed here
-- units: one row per set-aside raw row: src (chart, urine, fluid, vaso), stay_id = icustay_id, charttime (starttime for MetaVision inputs), itemid, source_table, flag_column, flag_value as text, rule (the action of rules/event_flags.csv, or <flag_column>_code for an undocumented value)
-- requires: chartevents, outputevents, inputevents_cv | inputevents_mv
-- depends:
CREATE OR REPLACE TABLE event_flags AS
WITH codes AS (
    SELECT source_table, "column", value, action FROM rule_event_flags WHERE versions IN ('both', 'iii')
),
inputs AS (
    SELECT itemid, 'fluid' AS src FROM rule_fluid_items WHERE versions IN ('both', 'iii')
    UNION ALL
    SELECT itemid, 'vaso' AS src FROM rule_vasopressor_equivalents WHERE versions IN ('both', 'iii')
),
flagged AS (
    SELECT 'chart' AS src, 'chartevents' AS source_table, 'error' AS flag_column, ce.icustay_id AS stay_id,
           ce.charttime, ce.itemid, CAST(ce.error AS VARCHAR) AS flag_value, ce.error AS flag_num
    FROM chartevents ce
    WHERE ce.error IS NOT NULL
      AND ce.itemid IN (SELECT itemid FROM rule_item_map
                        WHERE source_table = 'chartevents' AND versions IN ('both', 'iii'))
    UNION ALL
    SELECT 'urine', 'outputevents', 'iserror', o.icustay_id, o.charttime, o.itemid,
           CAST(o.iserror AS VARCHAR), o.iserror
    FROM outputevents o
    WHERE o.iserror IS NOT NULL
      AND o.itemid IN (SELECT itemid FROM rule_item_map
                       WHERE source_table = 'outputevents' AND versions IN ('both', 'iii'))
    UNION ALL
    SELECT i.src, 'inputevents_mv', 'statusdescription', mv.icustay_id, mv.starttime, mv.itemid,
           mv.statusdescription, CAST(NULL AS DOUBLE)
    FROM inputevents_mv mv JOIN inputs i ON i.itemid = mv.itemid
    WHERE mv.statusdescription IS NOT NULL
    UNION ALL
    SELECT i.src, 'inputevents_cv', 'stopped', cv.icustay_id, cv.charttime, cv.itemid, cv.stopped,
           CAST(NULL AS DOUBLE)
    FROM inputevents_cv cv JOIN inputs i ON i.itemid = cv.itemid
    WHERE cv.stopped IS NOT NULL
)
SELECT f.src, f.stay_id, f.charttime, f.itemid, f.source_table, f.flag_column, f.flag_value,
       coalesce(c.action, f.flag_column || '_code') AS rule
FROM flagged f
LEFT JOIN codes c
    ON c.source_table = f.source_table AND c."column" = f.flag_column
   AND (CASE WHEN f.flag_num IS NULL THEN c.value = f.flag_value
             ELSE TRY_CAST(c.value AS DOUBLE) = f.flag_num END)
WHERE c.action IS NULL OR c.action <> 'keep';
