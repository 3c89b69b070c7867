-- title: Systemic antibiotic prescriptions (MIMIC-IV)
-- reference: mimic-code mimic-iv/concepts/medication/antibiotic.sql (drug-name list in rules/antibiotics.csv; topical, ophthalmic and otic routes excluded)
-- units: antibiotic_time = prescription starttime
-- requires: prescriptions
-- depends:
CREATE OR REPLACE TABLE antibiotic AS
SELECT DISTINCT pr.subject_id, pr.hadm_id, pr.starttime AS antibiotic_time, pr.drug
FROM prescriptions pr
JOIN rule_antibiotics a ON contains(lower(pr.drug), a.pattern)
WHERE pr.starttime IS NOT NULL
  AND coalesce(upper(pr.route), '') NOT IN ('OU', 'OS', 'OD', 'AU', 'AS', 'AD', 'TP', 'TOP', 'EAR', 'EYE', 'IN', 'NU');
