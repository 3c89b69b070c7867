-- title: Charted measurements mapped to state variables (MIMIC-III, CareVue and MetaVision items)
-- reference: item ids from rules/item_map.csv (mimic-code vitalsign.sql, gcs.sql, ventilation_classification.sql, weight_durations.sql); rows with error = 1 are excluded as in mimic-code pivoted_vital.sql, and rows whose error is not a documented value are quarantined (event_flags.sql)
-- units: variable is the state_variable ENUM of rules/item_map.csv names; valuenum in the unit named by `variable`; mechvent = 1 when a ventilator setting is charted; gcs_verbal = 0 when charted as not testable because intubated (CareVue '1.0 ET/Trach', MetaVision 'No Response-ETT'; mimic-code gcs.sql); stay_id = icustay_id
-- requires: chartevents
-- depends:
CREATE OR REPLACE TABLE chart_measurements AS
-- the rule join is resolved once per item id (ENUM cast, mechvent flag, conversion), not once per row
WITH m AS (
    SELECT m.itemid, CAST(m.variable AS state_variable) AS variable, m.variable = 'mechvent' AS is_mechvent,
           u.applies_above, u.multiply, u.add
    FROM rule_item_map m
    JOIN rule_unit_conversions u ON u.conversion = m.conversion
    WHERE m.source_table = 'chartevents' AND m.versions IN ('both', 'iii')
)
SELECT
    ce.subject_id,
    ce.hadm_id,
    ce.icustay_id AS stay_id,
    ce.charttime,
    ce.itemid,
    m.variable,
    CASE
        WHEN m.is_mechvent THEN CASE WHEN ce.value IS NOT NULL OR ce.valuenum IS NOT NULL THEN 1.0 END
        -- verbal GCS not testable (intubated): 0, as in mimic-code gcs.sql; gcs.sql scores it
        WHEN m.variable = 'gcs_verbal' AND ce.value IN ('1.0 ET/Trach', 'No Response-ETT') THEN 0.0
        WHEN m.applies_above IS NULL OR ce.valuenum > m.applies_above THEN ce.valuenum * m.multiply + m.add
        ELSE ce.valuenum
    END AS valuenum
FROM chartevents ce
JOIN m ON m.itemid = ce.itemid
-- flags as in event_flags.sql: error NULL or documented as not an error (0); error = 1 and undocumented values are set aside there
WHERE ce.error IS NULL OR ce.error IN (SELECT TRY_CAST(value AS DOUBLE) FROM rule_event_flags
                              WHERE source_table = 'chartevents' AND "column" = 'error' AND action = 'keep' AND versions IN ('both', 'iii'));
