-- title: ICU stay detail (MIMIC-III, CareVue and MetaVision)
-- reference: mimic-code mimic-iii/concepts/demographics/icustay_detail.sql (age = intime - dob). MIMIC-III shifts the date of birth of every patient older than 89 to 300 years before their first admission (HIPAA; MIMIC-III PATIENTS documentation, mimic.mit.edu/docs/iii/tables/patients), and the documentation gives 91.4 years as the median age of that group. Rationale: such an age is a documented de-identification artefact, not a bad record, so it is left as computed here, with age_shift_documented = true (this source documents the shift), and the cohort stage (pipelines/sepsis/cohort.py: 299 to 312 years, the 300-year shift plus at most the 2001-2012 span of the data) applies `inclusion.shifted_age` (default: the documented median 91.4, recorded in the manifest with the number of stays; or quarantine). Any other age above 120 is not a documented artefact and is quarantined there (age_plausible)
-- units: age_years in years (unmapped: ~300 for a shifted age); age_shift_documented: true (MIMIC-III documents the >89 shift); times as TIMESTAMP; stay_id = ICUSTAYS.icustay_id
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
    date_diff('day', p.dob, i.intime) / 365.242 AS age_years,
    true AS age_shift_documented,
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
