-- title: Laboratory values per draw (long format, within bounds)
-- reference: rules/item_map.csv lab items; rules/outlier_bounds.csv (AI Clinician, Komorowski 2018)
-- units: in the unit named by `variable`
-- requires:
-- depends: lab_measurements
CREATE OR REPLACE TABLE labs AS
SELECT l.subject_id, l.hadm_id, l.stay_id, l.charttime, l.variable, l.valuenum
FROM lab_measurements l
JOIN rule_outlier_bounds b ON b.variable = l.variable
WHERE l.valuenum BETWEEN b.lower AND b.upper;
