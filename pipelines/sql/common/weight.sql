-- title: Body weight per ICU stay, with its source
-- reference: mimic-code weight_durations.sql (admission weight first, then daily weights); lb/oz converted by rules/unit_conversions.csv; bounds from rules/outlier_bounds.csv
-- units: weight_kg in kilograms; NULL when the stay has no plausible weight (the pipeline then applies its named fallback)
-- requires:
-- depends: chart_measurements, icustay_detail
-- columns: stay_id BIGINT, weight_kg DOUBLE, weight_source VARCHAR
CREATE OR REPLACE TABLE weight AS
WITH w AS (
    SELECT c.stay_id, c.charttime, c.valuenum AS weight_kg
    FROM chart_measurements c
    JOIN rule_outlier_bounds b ON b.variable = 'weight_kg'
    WHERE c.variable = 'weight_kg' AND c.valuenum BETWEEN b.lower AND b.upper
)
SELECT
    s.stay_id,
    first(w.weight_kg ORDER BY w.charttime, w.weight_kg) AS weight_kg,
    CASE WHEN count(w.weight_kg) > 0 THEN 'charted_first' ELSE 'missing' END AS weight_source
FROM icustay_detail s
LEFT JOIN w ON w.stay_id = s.stay_id
GROUP BY s.stay_id;
