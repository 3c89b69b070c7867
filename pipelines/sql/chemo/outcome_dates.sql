-- title: Each patient's progression and last follow-up dates (sources stage, OMOP input)
-- reference: observation rows under the local source values of rules/omop_concepts.csv (progression: RECIST 1.1, Eisenhauer et al. 2009 Eur J Cancer 45:228; the first recorded; last follow-up: the latest)
-- units: dates
-- requires:
-- depends: observation
-- params: progression_source, followup_source
CREATE OR REPLACE TABLE outcome_dates AS
SELECT person_id AS patient_id,
       min(observation_date) FILTER (WHERE observation_source_value = $progression_source) AS progression_date,
       max(observation_date) FILTER (WHERE observation_source_value = $followup_source) AS last_followup_date
FROM observation GROUP BY 1;
