-- title: CTCAE grades per cycle: the highest grade recorded from the cycle's start to the next cycle (sources stage, OMOP input)
-- reference: CTCAE v5.0 grades (NCI 2017) as OMOP observation rows under the local source values of rules/omop_concepts.csv; no observation = grade 0
-- units: grade 0-5 per category; an observation on the day two cycles start belongs to the later cycle
-- requires:
-- depends: observation, cycle_schedule, rule_grade_map
-- params:
CREATE OR REPLACE TABLE graded_cycles AS
WITH og AS (
    SELECT o.person_id AS patient_id, o.observation_date, o.value_as_number, m.col, o._row
    FROM observation o JOIN rule_grade_map m ON o.observation_source_value = m.source
),
hit AS (
    SELECT any_value(og.col) AS col, any_value(og.value_as_number) AS value_as_number,
           arg_max(s._key, s.start_key) AS _key
    FROM og JOIN cycle_schedule s ON og.patient_id = s.patient_id AND s.cycle_start_date <= og.observation_date
    GROUP BY og._row
)
SELECT b._key,
       coalesce(max(g.value_as_number) FILTER (WHERE g.col = 'grade_neutropenia'), 0.0) AS "grade_neutropenia",
       coalesce(max(g.value_as_number) FILTER (WHERE g.col = 'grade_febrile_neutropenia'), 0.0)
           AS "grade_febrile_neutropenia",
       coalesce(max(g.value_as_number) FILTER (WHERE g.col = 'grade_thrombocytopenia'), 0.0)
           AS "grade_thrombocytopenia",
       coalesce(max(g.value_as_number) FILTER (WHERE g.col = 'grade_neuropathy'), 0.0) AS "grade_neuropathy",
       coalesce(max(g.value_as_number) FILTER (WHERE g.col = 'grade_diarrhoea'), 0.0) AS "grade_diarrhoea",
       coalesce(max(g.value_as_number) FILTER (WHERE g.col = 'grade_mucositis'), 0.0) AS "grade_mucositis",
       coalesce(max(g.value_as_number) FILTER (WHERE g.col = 'grade_fatigue'), 0.0) AS "grade_fatigue"
FROM cycle_schedule b LEFT JOIN hit g USING (_key)
GROUP BY b._key;
