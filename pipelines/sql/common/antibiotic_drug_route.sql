-- title: Systemic antibiotic drug-route pairs of the prescriptions table
-- reference: mimic-code mimic-iv/concepts/medication/antibiotic.sql (drug-name patterns, excluded drug forms and routes, classified once per distinct drug and route); every pattern is a row of rules/antibiotics.csv, matched case-insensitively with SQL LIKE (e.g. route '%eye%' drops BOTH EYES / RIGHT EYE, '%ear%' drops LEFT EAR)
-- units: one row per distinct (drug, route) that counts as a systemic antibiotic; route may be NULL
-- requires: prescriptions
-- depends:
CREATE OR REPLACE TABLE antibiotic_drug_route AS
WITH pairs AS (
    SELECT DISTINCT drug, route FROM prescriptions WHERE drug IS NOT NULL
)
SELECT p.drug, p.route
FROM pairs p
WHERE EXISTS (SELECT 1 FROM rule_antibiotics r
              WHERE r.field = 'drug' AND r.action = 'include' AND lower(p.drug) LIKE lower(r.pattern))
  AND NOT EXISTS (SELECT 1 FROM rule_antibiotics r
                  WHERE r.field = 'drug' AND r.action = 'exclude' AND lower(p.drug) LIKE lower(r.pattern))
  AND NOT EXISTS (SELECT 1 FROM rule_antibiotics r
                  WHERE r.field = 'route' AND r.action = 'exclude'
                    AND lower(coalesce(p.route, '')) LIKE lower(r.pattern));
