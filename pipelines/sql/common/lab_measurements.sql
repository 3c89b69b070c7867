-- title: Laboratory measurements assigned to ICU stays
-- reference: lab item ids from rules/item_map.csv (mimic-code chemistry.sql, bg.sql, complete_blood_count.sql, coagulation.sql, enzyme.sql); a lab belongs to a stay when drawn from 24 h before ICU admission to ICU discharge (AI Clinician, Komorowski 2018)
-- units: variable is the state_variable ENUM of rules/item_map.csv names; valuenum in the unit named by `variable` (e.g. lactate_mmol_l in mmol/L)
-- requires: labevents
-- depends: icustay_detail
CREATE OR REPLACE TABLE lab_measurements AS
-- the rule join is resolved once per item id (ENUM cast, conversion), not once per row
WITH m AS (
    SELECT m.itemid, CAST(m.variable AS state_variable) AS variable, u.applies_above, u.multiply, u.add
    FROM rule_item_map m
    JOIN rule_unit_conversions u ON u.conversion = m.conversion
    WHERE m.source_table = 'labevents' AND m.versions IN ('both', (SELECT version_tag FROM etl_params))
)
SELECT
    le.subject_id,
    s.hadm_id,
    s.stay_id,
    le.charttime,
    le.itemid,
    m.variable,
    CASE WHEN m.applies_above IS NULL OR le.valuenum > m.applies_above
         THEN le.valuenum * m.multiply + m.add ELSE le.valuenum END AS valuenum
FROM labevents le
JOIN m ON m.itemid = le.itemid
JOIN icustay_detail s
  ON s.subject_id = le.subject_id
 AND le.charttime >= s.intime - INTERVAL 24 HOUR
 AND le.charttime <= s.outtime;
