-- title: Every IV fluid and vasopressor dose row of every stay in one table (stay_linkage stage)
-- reference: AI Clinician (Komorowski et al., Nat Med 2018) actions: IV fluid volume and norepinephrine-equivalent rate (mimic-code norepinephrine_equivalent_dose)
-- units: amount_ml and amount_tonicity_ml in mL (fluid rows); norepi_eq_mcg_kg_min in mcg/kg/min (vaso rows); unit = the charted unit; unit_known from rules/rate_units.csv or mL/L
-- requires:
-- depends: fluid_input, norepinephrine_equivalent_dose
-- params:
CREATE OR REPLACE TABLE all_doses AS
SELECT 'fluid' AS kind, stay_id, starttime, endtime, itemid, amountuom AS unit,
    amount_unit_known AS unit_known,
       amount_ml, amount_tonicity_ml, CAST(NULL AS DOUBLE) AS norepi_eq_mcg_kg_min, NULL AS
           weight_source
FROM fluid_input
UNION ALL
SELECT 'vaso', stay_id, starttime, endtime, itemid, rateuom, rate_unit_known, NULL, NULL,
       norepi_eq_mcg_kg_min, weight_source
FROM norepinephrine_equivalent_dose;
