-- title: OMOP measurements found by the concept map, flagged as repeated, outside the patient's life or in an unknown unit, with the unit factor (sources stage, OMOP input)
-- reference: concept map rules/omop_concepts.csv (OHDSI standard concept ids where checked, else the LOINC or local code in measurement_source_value); unit factors rules/chemo_units.csv (cited there); birth from year, month and day of birth (OMOP CDM v5.4 person; January / the 1st where missing)
-- units: value_as_number in the recorded unit; factor converts it to the variable's canonical unit (ecog: 1); dup = same person, date, variable, value and unit as an earlier file row
-- requires:
-- depends: measurement, person, death, rule_measurement_concepts, rule_measurement_sources, rule_canonical_units, rule_unit_factors
-- params:
CREATE OR REPLACE TABLE mapped_measurements AS
WITH life AS (
    SELECT p.person_id,
           TRY_CAST(CAST(CAST(year_of_birth AS BIGINT) AS VARCHAR)
                    || '-' || lpad(CAST(CAST(coalesce(month_of_birth, 1) AS BIGINT) AS VARCHAR), 2, '0')
                    || '-' || lpad(CAST(CAST(coalesce(day_of_birth, 1) AS BIGINT) AS VARCHAR), 2, '0')
                    AS DATE) AS birth,
           d.death
    FROM person p
    LEFT JOIN (SELECT person_id, min(death_date) AS death FROM death GROUP BY person_id) d USING (person_id)
),
m AS (
    SELECT m.*, coalesce(i.variable, s.variable) AS variable
    FROM measurement m
    LEFT JOIN rule_measurement_concepts i ON m.measurement_concept_id = i.concept_id
    LEFT JOIN rule_measurement_sources s ON m.measurement_source_value = s.source
)
SELECT m.person_id, m.measurement_id, m.measurement_date, m.variable, m.value_as_number,
       m.unit_source_value, m._row,
       m.variable IS NOT NULL AND f._row IS NULL AS dup,
       coalesce(m.measurement_date < l.birth OR m.measurement_date > l.death, false) AS outside,
       CASE WHEN m.variable = 'ecog' THEN 1.0 ELSE u.multiply END AS factor
FROM m LEFT JOIN life l USING (person_id)
LEFT JOIN (
    SELECT min(_row) AS _row FROM m WHERE variable IS NOT NULL  -- the first of equal rows
    GROUP BY person_id, measurement_date, variable, value_as_number, unit_source_value
) f ON m._row = f._row
LEFT JOIN rule_canonical_units c ON m.variable = c.variable
LEFT JOIN rule_unit_factors u ON c.canon = u.canon AND coalesce(m.unit_source_value, '') = u.unit;
