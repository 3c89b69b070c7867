-- title: Quarantine of the dose rows classified_doses flags, with the column, value and reason (doses stage)
-- reference: Dosewise data contract (rows in = rows out + quarantined); the rules as in classified_doses.sql
-- units: one row per quarantined dose row; failure_case = the unit, the times or the dose as text
-- requires:
-- depends: classified_doses
-- params:
CREATE OR REPLACE TABLE q_doses AS
SELECT stay_id, 'doses' AS stage, rule,
       CASE WHEN rule LIKE '%unit%' THEN 'unit' WHEN rule = 'dose_outside_admission' THEN 'starttime'
            WHEN kind = 'fluid' THEN 'fluid_ml' ELSE 'norepi_eq_mcg_kg_min' END AS "column",
       CASE WHEN rule LIKE '%unit%' THEN coalesce(unit, 'NULL')
            WHEN rule = 'dose_outside_admission' THEN CAST(starttime AS VARCHAR) || ' to '
                || CAST(endtime AS VARCHAR)
            ELSE CAST(quantity AS VARCHAR) END AS failure_case,
       'src=' || kind || '|starttime=' || coalesce(CAST(starttime AS VARCHAR), 'NULL')
           || '|itemid=' || CAST(itemid AS VARCHAR) AS row_key,
       CASE rule
           WHEN 'amount_unit_unknown'
               THEN 'amount unit ' || coalesce('`' || unit || '`', 'missing') || ' is not mL or L'
           WHEN 'rate_unit_unknown' THEN 'rate unit ' || coalesce('`' || unit || '`', 'missing')
               || ' is not in rules/rate_units.csv'
           WHEN 'dose_times_invalid' THEN 'end time before start time, or a time is missing'
           WHEN 'dose_outside_admission' THEN 'runs more than 24 h outside the hospital admission of '
               || 'its stay (wrong year or stay?); spread over the window it would be a tiny dose'
           WHEN 'dose_missing' THEN 'no dose value'
           WHEN 'dose_negative' THEN 'negative dose'
           WHEN 'duplicate_dose' THEN 'exact duplicate of an earlier row (first copy kept)'
           ELSE 'above ' || upper || ' (rules/outlier_bounds.csv)' END AS reason
FROM classified_doses WHERE rule IS NOT NULL;
