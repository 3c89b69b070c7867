-- title: SOFA score per ICU hour, worst value over the preceding 24 hours
-- reference: Vincent et al., Intensive Care Med 1996 (SOFA); mimic-code mimic-iv/concepts/score/sofa.sql (hourly grid from 24 h before ICU admission, rolling 24 h worst); cardiovascular points use the norepinephrine-equivalent rate (> 0.1 mcg/kg/min = 4, > 0 = 3, MAP < 70 mmHg = 1), a simplification recorded here; respiration uses arterial blood gases only (blood_gas_specimen; mimic-code sofa.sql reads bg with specimen ART) with FiO2 = the last charted FiO2 from 4 h before to the time of the gas (mimic-code bg.sql); with no FiO2 charted in that window, room air (0.21) when not ventilated and no ratio when ventilated (ventilated = a ventilator setting charted in the last 8 h)
-- units: component scores and sofa_24h in points (0-24); hr = hours since ICU admission; every plausibility bound comes from rules/outlier_bounds.csv (none is written here); stays limited to sofa_stay_filter when etl_params.sofa_scope = 'filtered' (the pipeline scores only stays with a suspected infection)
-- requires:
-- depends: icustay_detail, chart_measurements, gcs, lab_measurements, blood_gas_specimen, ventilation, urine_output, norepinephrine_equivalent_dose
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
           min(c.valuenum) AS map_min
    FROM chart_measurements c JOIN scope s USING (stay_id)
    JOIN rule_outlier_bounds b ON b.variable = c.variable
    WHERE c.variable = 'map_mmhg' AND c.valuenum BETWEEN b.lower AND b.upper
    GROUP BY ALL
),
hourly_gcs AS (
    SELECT g.stay_id, CAST(floor(date_diff('second', s.intime, g.charttime) / 3600.0) AS BIGINT) AS hr,
           min(g.gcs_total) AS gcs_min
    FROM gcs g JOIN scope s USING (stay_id)
    JOIN rule_outlier_bounds b ON b.variable = 'gcs_total'
    WHERE g.gcs_total BETWEEN b.lower AND b.upper
    GROUP BY ALL
),
hourly_lab AS (
    SELECT l.stay_id, CAST(floor(date_diff('second', s.intime, l.charttime) / 3600.0) AS BIGINT) AS hr,
           min(CASE WHEN l.variable = 'platelets_k_ul' THEN l.valuenum END) AS platelets_min,
           max(CASE WHEN l.variable = 'bilirubin_total_mg_dl' THEN l.valuenum END) AS bilirubin_max,
           max(CASE WHEN l.variable = 'creatinine_mg_dl' THEN l.valuenum END) AS creatinine_max
    FROM lab_measurements l JOIN scope s USING (stay_id)
    JOIN rule_outlier_bounds b ON b.variable = l.variable
    WHERE l.variable IN ('platelets_k_ul', 'bilirubin_total_mg_dl', 'creatinine_mg_dl')
      AND l.valuenum BETWEEN b.lower AND b.upper
    GROUP BY ALL
),
hourly_vent AS (
    SELECT v.stay_id, CAST(floor(date_diff('second', s.intime, v.charttime) / 3600.0) AS BIGINT) AS hr,
           max(v.mechvent) AS mechvent
    FROM ventilation v JOIN scope s USING (stay_id)
    GROUP BY ALL
),
grid_vent AS (
    SELECT g.stay_id, g.hr, max(v.mechvent) OVER w8 AS vent_recent
    FROM grid g LEFT JOIN hourly_vent v USING (stay_id, hr)
    WINDOW w8 AS (PARTITION BY g.stay_id ORDER BY g.hr ROWS BETWEEN 7 PRECEDING AND CURRENT ROW)
),
arterial_pao2 AS (
    SELECT l.stay_id, l.charttime, l.valuenum AS pao2,
           CAST(floor(date_diff('second', s.intime, l.charttime) / 3600.0) AS BIGINT) AS hr
    FROM lab_measurements l JOIN scope s USING (stay_id)
    JOIN rule_outlier_bounds b ON b.variable = l.variable
    JOIN blood_gas_specimen sp ON sp.subject_id = l.subject_id AND sp.charttime = l.charttime AND sp.arterial
    WHERE l.variable = 'pao2_mmhg' AND l.valuenum BETWEEN b.lower AND b.upper
),
pao2_fio2 AS (
    SELECT a.stay_id, a.hr, a.charttime, a.pao2, v.fio2_frac,
           row_number() OVER (PARTITION BY a.stay_id, a.charttime, a.pao2 ORDER BY v.charttime DESC) AS fio2_rank
    FROM arterial_pao2 a
    LEFT JOIN ventilation v
      ON v.stay_id = a.stay_id AND v.fio2_frac IS NOT NULL
     AND v.charttime >= a.charttime - INTERVAL 4 HOUR AND v.charttime <= a.charttime
),
hourly_pf AS (
    SELECT f.stay_id, f.hr,
           min(CASE WHEN f.fio2_frac IS NOT NULL THEN f.pao2 / f.fio2_frac
                    WHEN coalesce(gv.vent_recent, 0) = 0 THEN f.pao2 / 0.21 END) AS pf_min
    FROM pao2_fio2 f JOIN grid_vent gv USING (stay_id, hr)
    WHERE f.fio2_rank = 1
    GROUP BY f.stay_id, f.hr
),
hourly_uo AS (
    SELECT u.stay_id, CAST(floor(date_diff('second', s.intime, u.charttime) / 3600.0) AS BIGINT) AS hr,
           sum(u.urine_output_ml) AS uo_ml
    FROM urine_output u JOIN scope s USING (stay_id)
    JOIN rule_outlier_bounds b ON b.variable = 'urine_output_ml'
    WHERE u.urine_output_ml BETWEEN b.lower AND b.upper
    GROUP BY ALL
),
hourly_vaso AS (
    SELECT stay_id, hr, max(rate) AS ne_max FROM (
        SELECT n.stay_id, n.norepi_eq_mcg_kg_min AS rate,
               unnest(range(CAST(floor(date_diff('second', s.intime, n.starttime) / 3600.0) AS BIGINT),
                            CAST(floor(date_diff('second', s.intime, greatest(n.endtime, n.starttime)) / 3600.0) AS BIGINT) + 1)) AS hr
        FROM norepinephrine_equivalent_dose n JOIN scope s USING (stay_id)
        JOIN rule_outlier_bounds b ON b.variable = 'norepi_eq_mcg_kg_min'
        WHERE n.rate_unit_known AND n.norepi_eq_mcg_kg_min BETWEEN b.lower AND b.upper
    ) GROUP BY ALL
),
joined AS (
    SELECT g.stay_id, g.hr, g.intime + to_hours(g.hr) AS starttime, g.intime + to_hours(g.hr + 1) AS endtime,
           c.map_min, gc.gcs_min, l.platelets_min, l.bilirubin_max, l.creatinine_max, pf.pf_min,
           gv.vent_recent,
           sum(coalesce(u.uo_ml, 0)) OVER w24 AS uo_24h_ml,
           count(u.uo_ml) OVER w24 AS uo_rows_24h,
           vs.ne_max
    FROM grid g
    LEFT JOIN hourly_chart c USING (stay_id, hr)
    LEFT JOIN hourly_gcs gc USING (stay_id, hr)
    LEFT JOIN hourly_lab l USING (stay_id, hr)
    LEFT JOIN grid_vent gv USING (stay_id, hr)
    LEFT JOIN hourly_pf pf USING (stay_id, hr)
    LEFT JOIN hourly_uo u USING (stay_id, hr)
    LEFT JOIN hourly_vaso vs USING (stay_id, hr)
    WINDOW w24 AS (PARTITION BY g.stay_id ORDER BY g.hr ROWS BETWEEN 23 PRECEDING AND CURRENT ROW)
),
scored AS (
    SELECT *,
        CASE WHEN pf_min < 100 AND vent_recent = 1 THEN 4
             WHEN pf_min < 200 AND vent_recent = 1 THEN 3
             WHEN pf_min < 300 THEN 2
             WHEN pf_min < 400 THEN 1
             WHEN pf_min IS NOT NULL THEN 0 END AS respiration,
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
