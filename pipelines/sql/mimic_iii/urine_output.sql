-- title: Urine output per charting time (MIMIC-III, CareVue and MetaVision items)
-- reference: mimic-code mimic-iii/concepts/fluid_balance/urine_output.sql item ids (rules/item_map.csv); rows with iserror = 1 excluded
-- units: urine_output_ml in millilitres; stay_id = icustay_id
-- requires: outputevents
-- depends:
CREATE OR REPLACE TABLE urine_output AS
SELECT o.subject_id, o.hadm_id, o.icustay_id AS stay_id, o.charttime, o.itemid, o.value AS urine_output_ml
FROM outputevents o
JOIN rule_item_map m
  ON m.itemid = o.itemid AND m.source_table = 'outputevents' AND m.versions IN ('both', 'iii')
WHERE o.iserror IS DISTINCT FROM 1;
