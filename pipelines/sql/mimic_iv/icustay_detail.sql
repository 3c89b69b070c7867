-- title: ICU stay detail (MIMIC-IV)
-- reference: mimic-code mimic-iv/concepts/demographics/icustay_detail.sql; age = anchor_age + (admission year - anchor_year)
-- units: age_years in years (MIMIC-IV caps anchor_age at 91 for older patients, so no age is shifted: age_shift_documented is false); times as TIMESTAMP
-- requires: icustays, patients, admissions
-- depends:
CREATE OR REPLACE TABLE icustay_detail AS
SELECT
    i.stay_id,
    i.subject_id,
    i.hadm_id,
    i.intime,
    i.outtime,
    'metavision' AS care_system,
    p.anchor_age + (year(a.admittime) - p.anchor_year) AS age_years,
    false AS age_shift_documented,
    p.gender,
    a.admittime,
    a.dischtime,
    a.deathtime,
    p.dod,
    CAST(a.hospital_expire_flag AS INTEGER) AS hospital_expire_flag,
    row_number() OVER (PARTITION BY i.subject_id ORDER BY i.intime, i.stay_id) AS stay_seq
FROM icustays i
LEFT JOIN patients p ON p.subject_id = i.subject_id
LEFT JOIN admissions a ON a.hadm_id = i.hadm_id;
