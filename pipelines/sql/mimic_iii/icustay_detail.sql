-- title: ICU stay detail (MIMIC-III, CareVue and MetaVision)
-- reference: mimic-code mimic-iii/concepts/demographics/icustay_detail.sql; ages above 89 are shifted to ~300 in MIMIC-III and are set to 91.4 (the median of the shifted group)
-- units: age_years in years; times as TIMESTAMP; stay_id = ICUSTAYS.icustay_id
-- requires: icustays, patients, admissions
-- depends:
CREATE OR REPLACE TABLE icustay_detail AS
SELECT
    i.icustay_id AS stay_id,
    i.subject_id,
    i.hadm_id,
    i.intime,
    i.outtime,
    lower(i.dbsource) AS care_system,
    CASE WHEN date_diff('day', p.dob, i.intime) / 365.242 > 89 THEN 91.4
         ELSE date_diff('day', p.dob, i.intime) / 365.242 END AS age_years,
    p.gender,
    a.admittime,
    a.dischtime,
    a.deathtime,
    p.dod,
    CAST(a.hospital_expire_flag AS INTEGER) AS hospital_expire_flag,
    row_number() OVER (PARTITION BY i.subject_id ORDER BY i.intime, i.icustay_id) AS stay_seq
FROM icustays i
LEFT JOIN patients p ON p.subject_id = i.subject_id
LEFT JOIN admissions a ON a.hadm_id = i.hadm_id;
