-- title: Charted measurements mapped to state variables (MIMIC-IV)
-- reference: item ids from rules/item_map.csv (mimic-code vitalsign.sql, gcs.sql, ventilation.sql, weight_durations.sql); unit conversions from rules/unit_conversions.csv; rows whose `warning` is not a documented value are quarantined (event_flags.sql; warning = 1 is kept, as in mimic-code)
-- units: variable is the state_variable ENUM of rules/item_map.csv names; valuenum in the unit named by `variable` (e.g. temp_c in degrees Celsius); mechvent = 1 when a ventilator setting is charted; gcs_verbal = 0 when charted as not testable because intubated (CareVue '1.0 ET/Trach', MetaVision 'No Response-ETT'; mimic-code gcs.sql)
-- requires: chartevents
-- depends:
CREATE OR REPLACE TABLE chart_measurements AS
-- the rule join is resolved once per item id (ENUM cast, mechvent flag, conversion), not once per row
WITH m AS (
    SELECT m.itemid, CAST(m.variable AS state_variable) AS variable, m.variable = 'mechvent' AS is_mechvent,
           u.applies_above, u.multiply, u.add
    FROM rule_item_map m
    JOIN rule_unit_conversions u ON u.conversion = m.conversion
    WHERE m.source_table = 'chartevents' AND m.versions IN ('both', 'iv')
)
SELECT
    ce.subject_id,
    ce.hadm_id,
    ce.stay_id,
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
-- flags as in event_flags.sql: warning NULL, 0 or 1 (documented); any other value is set aside there
WHERE ce.warning IS NULL OR ce.warning IN (SELECT TRY_CAST(value AS DOUBLE) FROM rule_event_flags
                                  WHERE source_table = 'chartevents' AND "column" = 'warning' AND action = 'keep' AND versions IN ('both', 'iv'));
