-- title: Glasgow Coma Scale total per charting time
-- reference: mimic-code gcs.sql (CareVue total item 198; MetaVision eye + verbal + motor); Teasdale and Jennett, Lancet 1974
-- units: gcs_total in points (3-15)
-- requires:
-- depends: chart_measurements
CREATE OR REPLACE TABLE gcs AS
SELECT
    stay_id,
    charttime,
    coalesce(
        max(valuenum) FILTER (WHERE variable = 'gcs_total'),
        max(valuenum) FILTER (WHERE variable = 'gcs_eye')
          + max(valuenum) FILTER (WHERE variable = 'gcs_verbal')
          + max(valuenum) FILTER (WHERE variable = 'gcs_motor')
    ) AS gcs_total
FROM chart_measurements
WHERE variable IN ('gcs_total', 'gcs_eye', 'gcs_verbal', 'gcs_motor')
GROUP BY stay_id, charttime
HAVING gcs_total IS NOT NULL;
