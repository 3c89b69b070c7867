-- title: Vital signs per charting time (long format)
-- reference: mimic-code vitalsign.sql item ids (rules/item_map.csv)
-- units: heart_rate_bpm, sbp_mmhg, dbp_mmhg, map_mmhg, resp_rate_bpm, spo2_pct, temp_c (degrees Celsius after the F->C conversion)
-- requires:
-- depends: chart_measurements
CREATE OR REPLACE TABLE vitals AS
SELECT subject_id, hadm_id, stay_id, charttime, variable, valuenum
FROM chart_measurements
WHERE variable IN ('heart_rate_bpm', 'sbp_mmhg', 'dbp_mmhg', 'map_mmhg', 'resp_rate_bpm', 'spo2_pct', 'temp_c');
