-- title: Systemic antibiotic prescriptions (MIMIC-III)
-- reference: antibiotic_drug_route (mimic-code mimic-iv/concepts/medication/antibiotic.sql patterns, rules/antibiotics.csv); mimic-code mimic-iii/concepts/treatment/suspicion_of_infection.sql (PRESCRIPTIONS.startdate as the antibiotic time)
-- units: antibiotic_time = PRESCRIPTIONS.startdate, a date without a clock time (read as 00:00), so antibiotic_date_only is true for every row; suspicion_of_infection never lets such a midnight win over a timed culture
-- requires: prescriptions
-- depends: antibiotic_drug_route
CREATE OR REPLACE TABLE antibiotic AS
SELECT DISTINCT pr.subject_id, pr.hadm_id, pr.startdate AS antibiotic_time, TRUE AS antibiotic_date_only,
       pr.drug, pr.route
FROM prescriptions pr
JOIN antibiotic_drug_route s ON s.drug = pr.drug AND s.route IS NOT DISTINCT FROM pr.route
WHERE pr.startdate IS NOT NULL;
