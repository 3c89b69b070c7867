-- title: Urine output per charting time (MIMIC-IV)
-- reference: mimic-code mimic-iv/concepts/measurement/urine_output.sql item ids (rules/item_map.csv)
-- units: urine_output_ml in millilitres
-- requires: outputevents
-- depends:
CREATE OR REPLACE TABLE urine_output AS
SELECT o.subject_id, o.hadm_id, o.stay_id, o.charttime, o.itemid, o.value AS urine_output_ml
FROM outputevents o
JOIN rule_item_map m
  ON m.itemid = o.itemid AND m.source_table = 'outputevents' AND m.versions IN ('both', 'iv');
