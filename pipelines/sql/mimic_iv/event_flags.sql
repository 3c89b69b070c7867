-- title: Raw event rows set aside by their flags: rewritten, or a flag outside its documented values (MIMIC-IV)
-- reference: rules/event_flags.csv (documented values of chartevents.warning and inputevents.statusdescription, MIMIC-IV documentation mimic.mit.edu/docs/iv/modules/icu); 'Rewritten' rows (superseded) are excluded as in mimic-code crystalloid_bolus.sql; chartevents.warning = 1 (a warning the care provider documented) is kept, as mimic-code's MIMIC-IV concepts keep it; a value the documentation does not list is never read as a default: the row is quarantined. MIMIC-IV has no error column in chartevents or outputevents. Only rows of items the ETL reads are listed; chart_measurements, fluid_input and vasopressor_rates keep exactly the rows not listed here
-- units: one row per set-aside raw row: src (chart, fluid, vaso), stay_id, charttime (starttime for inputs), itemid, source_table, flag_column, flag_value as text, rule (the action of rules/event_flags.csv, or <flag_column>_code for an undocumented value)
-- requires: chartevents, inputevents
-- depends:
CREATE OR REPLACE TABLE event_flags AS
WITH codes AS (
    SELECT source_table, "column", value, action FROM rule_event_flags WHERE versions IN ('both', 'iv')
),
inputs AS (
    SELECT itemid, 'fluid' AS src FROM rule_fluid_items WHERE versions IN ('both', 'iv')
    UNION ALL
    SELECT itemid, 'vaso' AS src FROM rule_vasopressor_equivalents WHERE versions IN ('both', 'iv')
),
flagged AS (
    SELECT 'chart' AS src, 'chartevents' AS source_table, 'warning' AS flag_column, ce.stay_id,
           ce.charttime, ce.itemid, CAST(ce.warning AS VARCHAR) AS flag_value, ce.warning AS flag_num
    FROM chartevents ce
    WHERE ce.warning IS NOT NULL
      AND ce.itemid IN (SELECT itemid FROM rule_item_map
                        WHERE source_table = 'chartevents' AND versions IN ('both', 'iv'))
    UNION ALL
    SELECT i.src, 'inputevents', 'statusdescription', ie.stay_id, ie.starttime, ie.itemid,
           ie.statusdescription, CAST(NULL AS DOUBLE)
    FROM inputevents ie JOIN inputs i ON i.itemid = ie.itemid
    WHERE ie.statusdescription IS NOT NULL
)
SELECT f.src, f.stay_id, f.charttime, f.itemid, f.source_table, f.flag_column, f.flag_value,
       coalesce(c.action, f.flag_column || '_code') AS rule
FROM flagged f
LEFT JOIN codes c
    ON c.source_table = f.source_table AND c."column" = f.flag_column
   AND (CASE WHEN f.flag_num IS NULL THEN c.value = f.flag_value
             ELSE TRY_CAST(c.value AS DOUBLE) = f.flag_num END)
WHERE c.action IS NULL OR c.action <> 'keep';
