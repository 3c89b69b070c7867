-- title: Charted measurements mapped to state variables (MIMIC-III, CareVue and MetaVision items)
-- reference: item ids from rules/item_map.csv (mimic-code vitalsign.sql, gcs.sql, ventilation_classification.sql, weight_durations.sql); rows with error = 1 are excluded as in mimic-code
-- units: variable is the state_variable ENUM of rules/item_map.csv names; valuenum in the unit named by `variable`; mechvent = 1 when a ventilator setting is charted; stay_id = icustay_id
-- requires: chartevents
-- depends:
CREATE OR REPLACE TABLE chart_measurements AS
SELECT
    ce.subject_id,
    ce.hadm_id,
    ce.icustay_id AS stay_id,
    ce.charttime,
    ce.itemid,
    CAST(m.variable AS state_variable) AS variable,
    CASE
        WHEN m.variable = 'mechvent' THEN CASE WHEN ce.value IS NOT NULL OR ce.valuenum IS NOT NULL THEN 1.0 END
        WHEN u.applies_above IS NULL OR ce.valuenum > u.applies_above THEN ce.valuenum * u.multiply + u.add
        ELSE ce.valuenum
    END AS valuenum
FROM chartevents ce
JOIN rule_item_map m
  ON m.itemid = ce.itemid AND m.source_table = 'chartevents' AND m.versions IN ('both', 'iii')
JOIN rule_unit_conversions u ON u.conversion = m.conversion
WHERE ce.error IS DISTINCT FROM 1;
