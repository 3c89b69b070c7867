-- title: Measurements placed on cycles: the values at the scheduled start, height, the previous cycle's ANC nadir and ECOG (sources stage, OMOP input)
-- reference: counts and chemistry: the latest value within 3 days before (or on) the scheduled start, as clinicians check counts before dosing (rules/chemo_dose_modifications.csv); nadir: the lowest ANC after the dose and at least 3 days before the next scheduled start (the ANC nadir of the Friberg et al. 2002 J Clin Oncol 20:4713 myelosuppression model); height: the latest before the cycle; ECOG: the first recorded
-- units: values in the canonical units of rules/chemo_units.csv (anc and platelets 1e9/L, haemoglobin g/L, creatinine and bilirubin umol/L, weight kg, BSA m2, tumour size mm, height cm); ties in date: the later file row (k = days x 1e10 + _row)
-- requires:
-- depends: meas, cycle_schedule
-- params:
CREATE OR REPLACE TABLE placed_measurements AS
WITH m AS (
    SELECT patient_id, variable, measurement_date, value,
           (CAST(date_diff('day', DATE '1970-01-01', measurement_date) AS BIGINT) * 10000000000 + _row) AS k
    FROM meas
    WHERE variable IN ('anc', 'platelets', 'haemoglobin_g_per_l', 'creatinine_umol_per_l',
                       'bilirubin_umol_per_l', 'weight_kg', 'bsa_m2', 'tumour_size_mm', 'height_cm')
),
days AS (
    SELECT b._key, b.patient_id, b.scheduled - CAST(d AS INTEGER) AS day
    FROM cycle_schedule b CROSS JOIN (VALUES (0), (1), (2), (3)) r(d)
),
hits AS (
    SELECT d._key, m.variable, m.value, m.k FROM days d
    JOIN m ON d.patient_id = m.patient_id AND d.day = m.measurement_date AND m.variable <> 'height_cm'
    UNION ALL
    SELECT b._key, m.variable, m.value, m.k FROM cycle_schedule b
    JOIN m ON b.patient_id = m.patient_id AND m.measurement_date <= b.scheduled AND m.variable = 'height_cm'
),
latest AS (SELECT _key, variable, arg_max({'v': value}, k) AS hit FROM hits GROUP BY _key, variable),
wide AS (
    SELECT _key,
           max(hit.v) FILTER (WHERE variable = 'anc') AS "anc",
           max(hit.v) FILTER (WHERE variable = 'platelets') AS "platelets",
           max(hit.v) FILTER (WHERE variable = 'haemoglobin_g_per_l') AS "haemoglobin_g_per_l",
           max(hit.v) FILTER (WHERE variable = 'creatinine_umol_per_l') AS "creatinine_umol_per_l",
           max(hit.v) FILTER (WHERE variable = 'bilirubin_umol_per_l') AS "bilirubin_umol_per_l",
           max(hit.v) FILTER (WHERE variable = 'weight_kg') AS "weight_kg",
           max(hit.v) FILTER (WHERE variable = 'bsa_m2') AS "bsa_m2",
           max(hit.v) FILTER (WHERE variable = 'tumour_size_mm') AS "tumour_size_mm",
           max(hit.v) FILTER (WHERE variable = 'height_cm') AS "height_cm"
    FROM latest GROUP BY _key
),
anc AS (SELECT patient_id, measurement_date, value, _row FROM meas WHERE variable = 'anc'),
after_dose AS (
    SELECT a._row, any_value(a.value) AS value, any_value(a.measurement_date) AS measurement_date,
           arg_max(s._key, s.start_key) AS _key,
           arg_max(s.cycle_start_date + CAST(s.planned_interval_days - 3 AS INTEGER), s.start_key) AS last_day
    FROM anc a JOIN cycle_schedule s ON a.patient_id = s.patient_id AND s.cycle_start_date < a.measurement_date
    GROUP BY a._row
),
nadir AS (
    SELECT _key, min(value) AS anc_nadir FROM after_dose WHERE measurement_date <= last_day GROUP BY _key
),
ecog AS (
    SELECT patient_id, value AS ecog FROM meas WHERE variable = 'ecog' AND value IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY measurement_date, _row) = 1
)
SELECT b._key, wide.* EXCLUDE (_key), nadir.anc_nadir, ecog.ecog
FROM cycle_schedule b LEFT JOIN wide USING (_key) LEFT JOIN nadir USING (_key)
LEFT JOIN ecog USING (patient_id);
