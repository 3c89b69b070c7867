-- title: Urine output per charting time, net of bladder irrigation (MIMIC-III, CareVue and MetaVision items)
-- reference: mimic-code mimic-iii/concepts/fluid_balance/urine_output.sql and mimic-code mimic-iv/concepts/measurement/urine_output.sql (item ids in rules/item_map.csv; GU irrigant volume in, 227488, counts negative and GU irrigant/urine volume out, 227489, positive, so irrigation nets out; volumes summed per stay and chart time); rows with iserror = 1 (charted in error) or an undocumented iserror are set aside by event_flags.sql (quarantined)
-- units: urine_output_ml in millilitres, the net of every urine item charted at that time (negative when irrigant in was charted apart from its volume out; kept, so irrigation nets out over any sum of hours, as in mimic-code); itemid is the item when one was charted, else NULL; stay_id = icustay_id
-- requires: outputevents
-- depends:
CREATE OR REPLACE TABLE urine_output AS
WITH m AS (
    SELECT m.itemid, u.multiply
    FROM rule_item_map m
    JOIN rule_unit_conversions u ON u.conversion = m.conversion
    WHERE m.source_table = 'outputevents' AND m.versions IN ('both', 'iii')
)
SELECT max(o.subject_id) AS subject_id, max(o.hadm_id) AS hadm_id, o.icustay_id AS stay_id, o.charttime,
       CASE WHEN count(DISTINCT o.itemid) = 1 THEN min(o.itemid) END AS itemid,
       sum(o.value * m.multiply) AS urine_output_ml
FROM outputevents o
JOIN m ON m.itemid = o.itemid
WHERE o.iserror IS NULL OR o.iserror IN (SELECT TRY_CAST(value AS DOUBLE) FROM rule_event_flags
                                WHERE source_table = 'outputevents' AND "column" = 'iserror' AND action = 'keep' AND versions IN ('both', 'iii'))
GROUP BY o.icustay_id, o.charttime;
