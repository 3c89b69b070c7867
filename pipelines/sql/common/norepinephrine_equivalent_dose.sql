-- title: Vasopressor rates as norepinephrine-equivalent dose
-- reference: Goradia et al., J Crit Care 2021 (vasopressor dose equivalence); mimic-code mimic-iv/concepts/medication/norepinephrine_equivalent_dose.sql; factors in rules/vasopressor_equivalents.csv, rate units in rules/rate_units.csv; plausible weights from rules/outlier_bounds.csv (weight_kg)
-- units: norepi_eq_mcg_kg_min in mcg/kg/min norepinephrine equivalent; per-kg and units/min rates need no weight; weight-free rates (mcg/min) are divided by the infusion's own weight (MIMIC-IV and MetaVision patientweight), else the stay weight, else the named fallback weight (weight_source says which); rate_unit_known is false when rateuom is not in rules/rate_units.csv. `weight` is optional: without chartevents it is an empty table, so rows that carry their own weight are still computed and the others use the fixed fallback
-- requires:
-- depends: vasopressor_rates
-- optional: weight
CREATE OR REPLACE TABLE norepinephrine_equivalent_dose AS
WITH fallback AS (
    SELECT CASE WHEN p.weight_fallback = 'population_median' AND (SELECT count(*) FROM weight WHERE weight_kg IS NOT NULL) > 0
                THEN (SELECT median(weight_kg) FROM weight)
                ELSE p.weight_fallback_kg END AS kg,
           CASE WHEN p.weight_fallback = 'population_median' AND (SELECT count(*) FROM weight WHERE weight_kg IS NOT NULL) > 0
                THEN 'fallback_population_median' ELSE 'fallback_fixed' END AS label
    FROM etl_params p
),
bounds AS (
    SELECT lower, upper FROM rule_outlier_bounds WHERE variable = 'weight_kg'
),
rates AS (
    SELECT r.*, u.rateuom IS NOT NULL AS rate_unit_known,
           coalesce(u.per_kg OR u.canonical_unit = 'units/min', false) AS weight_free,
           r.patientweight BETWEEN (SELECT lower FROM bounds) AND (SELECT upper FROM bounds) AS own_weight_ok,
           u.quantity_factor * u.per_minute_factor * v.factor AS factor
    FROM vasopressor_rates r
    JOIN rule_vasopressor_equivalents v ON v.itemid = r.itemid AND v.versions IN ('both', (SELECT version_tag FROM etl_params))
    LEFT JOIN rule_rate_units u ON u.rateuom = r.rateuom
)
SELECT
    r.subject_id, r.hadm_id, r.stay_id, r.starttime, r.endtime, r.itemid, r.drug, r.rate, r.rateuom,
    r.rate_unit_known,
    CASE WHEN r.weight_free THEN 'not_needed'
         WHEN r.own_weight_ok THEN 'infusion_weight'
         WHEN w.weight_kg IS NOT NULL THEN 'stay_weight'
         ELSE (SELECT label FROM fallback) END AS weight_source,
    r.rate * r.factor
      / CASE WHEN r.weight_free THEN 1.0
             WHEN r.own_weight_ok THEN r.patientweight
             ELSE coalesce(w.weight_kg, (SELECT kg FROM fallback)) END AS norepi_eq_mcg_kg_min
FROM rates r
LEFT JOIN weight w ON w.stay_id = r.stay_id;
