-- title: Laboratory measurements assigned to ICU stays
-- reference: lab item ids from rules/item_map.csv (mimic-code chemistry.sql, bg.sql, complete_blood_count.sql, coagulation.sql, enzyme.sql); a lab belongs to a stay when drawn from 24 h before ICU admission to ICU discharge (AI Clinician, Komorowski 2018)
-- units: variable is the state_variable ENUM of rules/item_map.csv names; valuenum in the unit named by `variable` (e.g. lactate_mmol_l in mmol/L)
-- requires: labevents
-- depends: icustay_detail
CREATE OR REPLACE TABLE lab_measurements AS
SELECT
    le.subject_id,
    s.hadm_id,
    s.stay_id,
    le.charttime,
    le.itemid,
    CAST(m.variable AS state_variable) AS variable,
    CASE WHEN u.applies_above IS NULL OR le.valuenum > u.applies_above
         THEN le.valuenum * u.multiply + u.add ELSE le.valuenum END AS valuenum
FROM labevents le
JOIN rule_item_map m
  ON m.itemid = le.itemid AND m.source_table = 'labevents'
 AND m.versions IN ('both', (SELECT version_tag FROM etl_params))
JOIN rule_unit_conversions u ON u.conversion = m.conversion
JOIN icustay_detail s
  ON s.subject_id = le.subject_id
 AND le.charttime >= s.intime - INTERVAL 24 HOUR
 AND le.charttime <= s.outtime;
