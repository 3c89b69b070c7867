-- title: Glasgow Coma Scale per charting time, with the convention for intubated or sedated patients
-- reference: Teasdale and Jennett, Lancet 1974 (GCS); Vincent et al., Intensive Care Med 1996 (SOFA: for sedated patients the GCS before sedation is used); Le Gall et al., JAMA 1993 (SAPS II: GCS before sedation); mimic-code mimic-iii/concepts/pivot/pivoted_gcs.sql and mimic-iv/concepts/measurement/gcs.sql (components only: CareVue 184/454/723, MetaVision 220739/223901/223900; a missing component is carried from the previous chart within 6 h, else taken as normal: eye 4, verbal 5, motor 6; a verbal score that is not testable because of intubation is marked 0)
-- units: gcs_total in points (3-15); gcs_unable true when the verbal score was not testable (intubated or sedated); gcs_source: measured, pre_sedation (the last measured total of the stay before the current run of not-testable charts), normal_15 (none before: treated as normal, as mimic-code), verbal_scored_1 (only when etl_params.gcs_under_sedation = 'verbal_one': the charted eye + motor + 1, the alternative offered by config). Default etl_params.gcs_under_sedation = 'pre_sedation'; 'normal' always uses 15. Components outside rules/outlier_bounds.csv are dropped
-- requires:
-- depends: chart_measurements
CREATE OR REPLACE TABLE gcs AS
WITH components AS (
    SELECT c.stay_id, c.charttime, c.variable, c.valuenum
    FROM chart_measurements c
    JOIN rule_outlier_bounds b ON b.variable = c.variable
    WHERE c.variable IN ('gcs_eye', 'gcs_verbal', 'gcs_motor')
      AND (c.valuenum BETWEEN b.lower AND b.upper OR (c.variable = 'gcs_verbal' AND c.valuenum = 0))
),
base AS (
    SELECT stay_id, charttime,
           max(CASE WHEN variable = 'gcs_eye' THEN valuenum END) AS eye,
           -- a testable verbal score wins over a not-testable mark charted at the same time
           max(CASE WHEN variable = 'gcs_verbal' THEN valuenum END) AS verbal,
           max(CASE WHEN variable = 'gcs_motor' THEN valuenum END) AS motor
    FROM components
    GROUP BY stay_id, charttime
),
prev AS (
    SELECT b.*,
           lag(charttime) OVER w AS prev_time,
           lag(eye) OVER w AS prev_eye,
           lag(verbal) OVER w AS prev_verbal,
           lag(motor) OVER w AS prev_motor
    FROM base b
    WINDOW w AS (PARTITION BY stay_id ORDER BY charttime)
),
carried AS (
    SELECT stay_id, charttime, eye, verbal, motor,
           CASE WHEN prev_time > charttime - INTERVAL 6 HOUR THEN prev_eye END AS p_eye,
           CASE WHEN prev_time > charttime - INTERVAL 6 HOUR THEN prev_verbal END AS p_verbal,
           CASE WHEN prev_time > charttime - INTERVAL 6 HOUR THEN prev_motor END AS p_motor
    FROM prev
),
scored AS (
    SELECT stay_id, charttime,
           coalesce(eye, p_eye) AS gcs_eye,
           coalesce(verbal, p_verbal) AS gcs_verbal,
           coalesce(motor, p_motor) AS gcs_motor,
           coalesce(verbal = 0 OR (verbal IS NULL AND p_verbal = 0), false) AS gcs_unable,
           -- after extubation the not-testable previous verbal is not carried (mimic-code)
           CASE WHEN p_verbal = 0 THEN coalesce(motor, 6) + coalesce(verbal, 5) + coalesce(eye, 4)
                ELSE coalesce(motor, p_motor, 6) + coalesce(verbal, p_verbal, 5) + coalesce(eye, p_eye, 4)
           END AS measured_total,
           coalesce(motor, p_motor, 6) + 1 + coalesce(eye, p_eye, 4) AS verbal_one_total
    FROM carried
),
with_pre AS (
    SELECT s.*,
           last_value(CASE WHEN NOT s.gcs_unable THEN s.measured_total END IGNORE NULLS) OVER (
               PARTITION BY s.stay_id ORDER BY s.charttime ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS pre_sedation_total
    FROM scored s
)
SELECT w.stay_id, w.charttime,
       CASE WHEN NOT w.gcs_unable THEN w.measured_total
            WHEN p.gcs_under_sedation = 'verbal_one' THEN w.verbal_one_total
            WHEN p.gcs_under_sedation = 'pre_sedation' AND w.pre_sedation_total IS NOT NULL
                THEN w.pre_sedation_total
            ELSE 15 END AS gcs_total,
       w.gcs_eye, w.gcs_verbal, w.gcs_motor, w.gcs_unable,
       CASE WHEN NOT w.gcs_unable THEN 'measured'
            WHEN p.gcs_under_sedation = 'verbal_one' THEN 'verbal_scored_1'
            WHEN p.gcs_under_sedation = 'pre_sedation' AND w.pre_sedation_total IS NOT NULL THEN 'pre_sedation'
            ELSE 'normal_15' END AS gcs_source
FROM with_pre w
CROSS JOIN etl_params p;
