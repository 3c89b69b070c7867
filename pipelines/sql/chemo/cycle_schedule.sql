-- title: Each cycle's start and scheduled start, and its as-of key (sources stage, OMOP input)
-- reference: scheduled start = previous cycle start + the regimen's planned interval (rules/chemo_regimens.csv; the first cycle: its own date), the day the dose-modification rules of rules/chemo_dose_modifications.csv are applied at
-- units: dates; planned_interval_days in days; start_key = days since 1970-01-01 x 1e10 + cycle key, so ordering by it orders by (date, cycle)
-- requires:
-- depends: cyc
-- params:
CREATE OR REPLACE TABLE cycle_schedule AS
SELECT *, (CAST(date_diff('day', DATE '1970-01-01', cycle_start_date) AS BIGINT) * 10000000000 + _key)
           AS start_key
FROM (
    SELECT _key, patient_id, cycle_start_date, planned_interval_days,
           coalesce(lag(cycle_start_date) OVER w + CAST(planned_interval_days AS INTEGER), cycle_start_date)
               AS scheduled
    FROM cyc WINDOW w AS (PARTITION BY patient_id ORDER BY _key)
);
