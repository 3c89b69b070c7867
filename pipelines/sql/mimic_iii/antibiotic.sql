-- title: Systemic antibiotic prescriptions (MIMIC-III)
-- reference: mimic-code mimic-iii/concepts/sepsis/suspicion_of_infection.sql (abx from PRESCRIPTIONS by drug name, rules/antibiotics.csv; topical, ophthalmic and otic routes excluded); MIMIC-III has only a start date, taken at midnight
-- units: antibiotic_time = startdate (00:00)
-- requires: prescriptions
-- depends:
CREATE OR REPLACE TABLE antibiotic AS
SELECT DISTINCT pr.subject_id, pr.hadm_id, pr.startdate AS antibiotic_time, pr.drug
FROM prescriptions pr
JOIN rule_antibiotics a ON contains(lower(pr.drug), a.pattern)
WHERE pr.startdate IS NOT NULL
  AND coalesce(upper(pr.route), '') NOT IN ('OU', 'OS', 'OD', 'AU', 'AS', 'AD', 'TP', 'TOP', 'EAR', 'EYE', 'IN', 'NU');
