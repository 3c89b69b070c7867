-- title: SOFA score per ICU hour, worst value over the preceding 24 hours
-- reference: Vincent et al., Intensive Care Med 1996 (SOFA); mimic-code sofa.sql (hourly grid from 24 h before ICU admission, rolling 24 h worst); cardiovascular points use the norepinephrine-equivalent rate (> 0.1 mcg/kg/min = 4, > 0 = 3, MAP < 70 mmHg = 1), a simplification recorded here
-- units: component scores and sofa_24h in points (0-24); hr = hours since ICU admission; stays limited to sofa_stay_filter when etl_params.sofa_scope = 'filtered' (the pipeline scores only stays with a suspected infection)
-- requires:
-- depends: icustay_detail, chart_measurements, gcs, lab_measurements, ventilation, urine_output, norepinephrine_equivalent_dose
CREATE OR REPLACE TABLE sofa AS
WITH scope AS (
    SELECT stay_id, intime, outtime FROM icustay_detail
    WHERE outtime > intime
      AND ((SELECT sofa_scope FROM etl_params) = 'all' OR stay_id IN (SELECT stay_id FROM sofa_stay_filter))
),
grid AS (
    SELECT stay_id, intime,
           unnest(range(-24, CAST(ceil(date_diff('second', intime, outtime) / 3600.0) AS BIGINT))) AS hr
    FROM scope
),
hourly_chart AS (
    SELECT c.stay_id, CAST(floor(date_diff('second', s.intime, c.charttime) / 3600.0) AS BIGINT) AS hr,
           min(c.valuenum) FILTER (WHERE c.variable = 'map_mmhg' AND c.valuenum BETWEEN 1 AND 250) AS map_min
    FROM chart_measurements c JOIN scope s USING (stay_id)
    WHERE c.variable = 'map_mmhg'
    GROUP BY ALL
),
hourly_gcs AS (
    SELECT g.stay_id, CAST(floor(date_diff('second', s.intime, g.charttime) / 3600.0) AS BIGINT) AS hr,
           min(g.gcs_total) FILTER (WHERE g.gcs_total BETWEEN 3 AND 15) AS gcs_min
    FROM gcs g JOIN scope s USING (stay_id)
    GROUP BY ALL
),
hourly_lab AS (
    SELECT l.stay_id, CAST(floor(date_diff('second', s.intime, l.charttime) / 3600.0) AS BIGINT) AS hr,
           min(l.valuenum) FILTER (WHERE l.variable = 'platelets_k_ul' AND l.valuenum BETWEEN 0 AND 2000) AS platelets_min,
           max(l.valuenum) FILTER (WHERE l.variable = 'bilirubin_total_mg_dl' AND l.valuenum BETWEEN 0 AND 60) AS bilirubin_max,
           max(l.valuenum) FILTER (WHERE l.variable = 'creatinine_mg_dl' AND l.valuenum BETWEEN 0 AND 150) AS creatinine_max,
           min(l.valuenum) FILTER (WHERE l.variable = 'pao2_mmhg' AND l.valuenum BETWEEN 1 AND 700) AS pao2_min
    FROM lab_measurements l JOIN scope s USING (stay_id)
    WHERE l.variable IN ('platelets_k_ul', 'bilirubin_total_mg_dl', 'creatinine_mg_dl', 'pao2_mmhg')
    GROUP BY ALL
),
hourly_vent AS (
    SELECT v.stay_id, CAST(floor(date_diff('second', s.intime, v.charttime) / 3600.0) AS BIGINT) AS hr,
           max(v.mechvent) AS mechvent, max(v.fio2_frac) AS fio2_frac
    FROM ventilation v JOIN scope s USING (stay_id)
    GROUP BY ALL
),
hourly_uo AS (
    SELECT u.stay_id, CAST(floor(date_diff('second', s.intime, u.charttime) / 3600.0) AS BIGINT) AS hr,
           sum(u.urine_output_ml) FILTER (WHERE u.urine_output_ml BETWEEN 0 AND 10000) AS uo_ml
    FROM urine_output u JOIN scope s USING (stay_id)
    GROUP BY ALL
),
hourly_vaso AS (
    SELECT stay_id, hr, max(rate) AS ne_max FROM (
        SELECT n.stay_id, n.norepi_eq_mcg_kg_min AS rate,
               unnest(range(CAST(floor(date_diff('second', s.intime, n.starttime) / 3600.0) AS BIGINT),
                            CAST(floor(date_diff('second', s.intime, greatest(n.endtime, n.starttime)) / 3600.0) AS BIGINT) + 1)) AS hr
        FROM norepinephrine_equivalent_dose n JOIN scope s USING (stay_id)
        WHERE n.rate_unit_known AND n.norepi_eq_mcg_kg_min BETWEEN 0 AND 10
    ) GROUP BY ALL
),
joined AS (
    SELECT g.stay_id, g.hr, g.intime + to_hours(g.hr) AS starttime, g.intime + to_hours(g.hr + 1) AS endtime,
           c.map_min, gc.gcs_min, l.platelets_min, l.bilirubin_max, l.creatinine_max, l.pao2_min,
           max(v.mechvent) OVER w8 AS vent_recent,
           coalesce(last_value(v.fio2_frac IGNORE NULLS) OVER w12, 0.21) AS fio2_recent,
           sum(coalesce(u.uo_ml, 0)) OVER w24 AS uo_24h_ml,
           count(u.uo_ml) OVER w24 AS uo_rows_24h,
           vs.ne_max
    FROM grid g
    LEFT JOIN hourly_chart c USING (stay_id, hr)
    LEFT JOIN hourly_gcs gc USING (stay_id, hr)
    LEFT JOIN hourly_lab l USING (stay_id, hr)
    LEFT JOIN hourly_vent v USING (stay_id, hr)
    LEFT JOIN hourly_uo u USING (stay_id, hr)
    LEFT JOIN hourly_vaso vs USING (stay_id, hr)
    WINDOW w8 AS (PARTITION BY g.stay_id ORDER BY g.hr ROWS BETWEEN 7 PRECEDING AND CURRENT ROW),
           w12 AS (PARTITION BY g.stay_id ORDER BY g.hr ROWS BETWEEN 11 PRECEDING AND CURRENT ROW),
           w24 AS (PARTITION BY g.stay_id ORDER BY g.hr ROWS BETWEEN 23 PRECEDING AND CURRENT ROW)
),
scored AS (
    SELECT *,
        CASE WHEN pao2_min / fio2_recent < 100 AND vent_recent = 1 THEN 4
             WHEN pao2_min / fio2_recent < 200 AND vent_recent = 1 THEN 3
             WHEN pao2_min / fio2_recent < 300 THEN 2
             WHEN pao2_min / fio2_recent < 400 THEN 1
             WHEN pao2_min IS NOT NULL THEN 0 END AS respiration,
        CASE WHEN platelets_min < 20 THEN 4 WHEN platelets_min < 50 THEN 3 WHEN platelets_min < 100 THEN 2
             WHEN platelets_min < 150 THEN 1 WHEN platelets_min IS NOT NULL THEN 0 END AS coagulation,
        CASE WHEN bilirubin_max >= 12 THEN 4 WHEN bilirubin_max >= 6 THEN 3 WHEN bilirubin_max >= 2 THEN 2
             WHEN bilirubin_max >= 1.2 THEN 1 WHEN bilirubin_max IS NOT NULL THEN 0 END AS liver,
        CASE WHEN ne_max > 0.1 THEN 4 WHEN ne_max > 0 THEN 3 WHEN map_min < 70 THEN 1
             WHEN map_min IS NOT NULL OR ne_max IS NOT NULL THEN 0 END AS cardiovascular,
        CASE WHEN gcs_min < 6 THEN 4 WHEN gcs_min < 10 THEN 3 WHEN gcs_min < 13 THEN 2 WHEN gcs_min < 15 THEN 1
             WHEN gcs_min IS NOT NULL THEN 0 END AS cns,
        greatest(
            CASE WHEN creatinine_max >= 5 THEN 4 WHEN creatinine_max >= 3.5 THEN 3 WHEN creatinine_max >= 2 THEN 2
                 WHEN creatinine_max >= 1.2 THEN 1 WHEN creatinine_max IS NOT NULL THEN 0 END,
            CASE WHEN hr >= 23 AND uo_rows_24h > 0 AND uo_24h_ml < 200 THEN 4
                 WHEN hr >= 23 AND uo_rows_24h > 0 AND uo_24h_ml < 500 THEN 3 END
        ) AS renal
    FROM joined
),
rolled AS (
    SELECT stay_id, hr, starttime, endtime,
        coalesce(max(respiration) OVER w, 0) AS respiration_24h,
        coalesce(max(coagulation) OVER w, 0) AS coagulation_24h,
        coalesce(max(liver) OVER w, 0) AS liver_24h,
        coalesce(max(cardiovascular) OVER w, 0) AS cardiovascular_24h,
        coalesce(max(cns) OVER w, 0) AS cns_24h,
        coalesce(max(renal) OVER w, 0) AS renal_24h
    FROM scored
    WINDOW w AS (PARTITION BY stay_id ORDER BY hr ROWS BETWEEN 23 PRECEDING AND CURRENT ROW)
)
SELECT *, respiration_24h + coagulation_24h + liver_24h + cardiovascular_24h + cns_24h + renal_24h AS sofa_24h
FROM rolled;
