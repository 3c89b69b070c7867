-- title: Vasopressor rates as norepinephrine-equivalent dose
-- reference: Goradia et al., J Crit Care 2021 (vasopressor dose equivalence); mimic-code norepinephrine_equivalent_dose.sql; factors in rules/vasopressor_equivalents.csv, rate units in rules/rate_units.csv
-- units: norepi_eq_mcg_kg_min in mcg/kg/min norepinephrine equivalent; weight-free rates (mcg/min) are divided by the infusion weight, else the stay weight, else the named fallback weight (weight_source says which); rate_unit_known is false when rateuom is not in rules/rate_units.csv
-- requires:
-- depends: vasopressor_rates, weight
CREATE OR REPLACE TABLE norepinephrine_equivalent_dose AS
WITH fallback AS (
    SELECT CASE p.weight_fallback
               WHEN 'population_median' THEN coalesce((SELECT median(weight_kg) FROM weight), p.weight_fallback_kg)
               ELSE p.weight_fallback_kg END AS kg,
           'fallback_' || p.weight_fallback AS label
    FROM etl_params p
)
SELECT
    r.subject_id, r.hadm_id, r.stay_id, r.starttime, r.endtime, r.itemid, r.drug, r.rate, r.rateuom,
    u.rateuom IS NOT NULL AS rate_unit_known,
    CASE WHEN u.per_kg OR u.canonical_unit = 'units/min' THEN 'not_needed'
         WHEN r.patientweight BETWEEN 20 AND 300 THEN 'infusion_weight'
         WHEN w.weight_kg IS NOT NULL THEN 'stay_weight'
         ELSE (SELECT label FROM fallback) END AS weight_source,
    r.rate * u.quantity_factor * u.per_minute_factor * v.factor
      / CASE WHEN u.per_kg OR u.canonical_unit = 'units/min' THEN 1.0
             WHEN r.patientweight BETWEEN 20 AND 300 THEN r.patientweight
             ELSE coalesce(w.weight_kg, (SELECT kg FROM fallback)) END AS norepi_eq_mcg_kg_min
FROM vasopressor_rates r
JOIN rule_vasopressor_equivalents v ON v.itemid = r.itemid AND v.versions IN ('both', (SELECT version_tag FROM etl_params))
LEFT JOIN rule_rate_units u ON u.rateuom = r.rateuom
LEFT JOIN weight w ON w.stay_id = r.stay_id;
