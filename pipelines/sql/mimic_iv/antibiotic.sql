-- title: Systemic antibiotic prescriptions (MIMIC-IV)
-- reference: mimic-code mimic-iv/concepts/medication/antibiotic.sql (drug-name patterns, excluded drug forms and routes; all listed in rules/antibiotics.csv as case-insensitive LIKE patterns, e.g. route '%eye%' drops BOTH EYES / RIGHT EYE)
-- units: antibiotic_time = prescriptions.starttime (date and clock time), antibiotic_date_only false
-- requires: prescriptions
-- depends:
CREATE OR REPLACE TABLE antibiotic AS
-- classify each distinct (drug, route) once, then join back (the pattern list has ~170 rows)
WITH pairs AS (
    SELECT DISTINCT drug, route FROM prescriptions WHERE drug IS NOT NULL
),
systemic AS (
    SELECT p.drug, p.route
    FROM pairs p
    WHERE EXISTS (SELECT 1 FROM rule_antibiotics r
                  WHERE r.field = 'drug' AND r.action = 'include' AND lower(p.drug) LIKE lower(r.pattern))
      AND NOT EXISTS (SELECT 1 FROM rule_antibiotics r
                      WHERE r.field = 'drug' AND r.action = 'exclude' AND lower(p.drug) LIKE lower(r.pattern))
      AND NOT EXISTS (SELECT 1 FROM rule_antibiotics r
                      WHERE r.field = 'route' AND r.action = 'exclude'
                        AND lower(coalesce(p.route, '')) LIKE lower(r.pattern))
)
SELECT DISTINCT pr.subject_id, pr.hadm_id, pr.starttime AS antibiotic_time, FALSE AS antibiotic_date_only,
       pr.drug, pr.route
FROM prescriptions pr
JOIN systemic s ON s.drug = pr.drug AND s.route IS NOT DISTINCT FROM pr.route
WHERE pr.starttime IS NOT NULL;
