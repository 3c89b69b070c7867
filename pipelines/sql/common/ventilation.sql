-- title: Mechanical ventilation settings and FiO2 per charting time
-- reference: mimic-code ventilation_classification.sql / ventilation.sql (any charted ventilator setting marks ventilation); FiO2 as a fraction (mimic-code bg.sql)
-- units: mechvent 0/1; fio2_frac as a fraction of 1
-- requires:
-- depends: chart_measurements
CREATE OR REPLACE TABLE ventilation AS
SELECT
    stay_id,
    charttime,
    max(CASE WHEN variable = 'mechvent' THEN 1 ELSE 0 END) AS mechvent,
    max(valuenum) FILTER (WHERE variable = 'fio2_frac' AND valuenum BETWEEN 0.2 AND 1.0) AS fio2_frac
FROM chart_measurements
WHERE variable IN ('mechvent', 'fio2_frac')
GROUP BY stay_id, charttime;
