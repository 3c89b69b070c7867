-- title: Systemic antibiotic prescriptions (MIMIC-IV)
-- reference: antibiotic_drug_route (mimic-code mimic-iv/concepts/medication/antibiotic.sql patterns, rules/antibiotics.csv)
-- units: antibiotic_time = prescriptions.starttime (date and clock time), antibiotic_date_only false
-- requires: prescriptions
-- depends: antibiotic_drug_route
CREATE OR REPLACE TABLE antibiotic AS
SELECT DISTINCT pr.subject_id, pr.hadm_id, pr.starttime AS antibiotic_time, FALSE AS antibiotic_date_only,
       pr.drug, pr.route
FROM prescriptions pr
JOIN antibiotic_drug_route s ON s.drug = pr.drug AND s.route IS NOT DISTINCT FROM pr.route
WHERE pr.starttime IS NOT NULL;
