-- title: Mechanical ventilation settings and FiO2 per charting time
-- reference: mimic-code ventilation_classification.sql / ventilation.sql (any charted ventilator setting marks ventilation); FiO2 as a fraction (mimic-code bg.sql); FiO2 plausibility bounds from rules/outlier_bounds.csv
-- units: mechvent 0/1; fio2_frac as a fraction of 1 (NULL when outside the fio2_frac bounds)
-- requires:
-- depends: chart_measurements
CREATE OR REPLACE TABLE ventilation AS
SELECT
    c.stay_id,
    c.charttime,
    max(CASE WHEN c.variable = 'mechvent' THEN 1 ELSE 0 END) AS mechvent,
    max(CASE WHEN c.variable = 'fio2_frac' AND c.valuenum BETWEEN b.lower AND b.upper THEN c.valuenum END)
        AS fio2_frac
FROM chart_measurements c
LEFT JOIN rule_outlier_bounds b ON b.variable = c.variable
WHERE c.variable IN ('mechvent', 'fio2_frac')
GROUP BY c.stay_id, c.charttime;
