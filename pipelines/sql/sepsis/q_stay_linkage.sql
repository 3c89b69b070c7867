-- title: Quarantine of events that belong to no ICU stay or fall outside their stay's admission, and of raw rows set aside by their flags (stay_linkage stage)
-- reference: Dosewise data contract (rows in = rows out + quarantined); MIMIC-IV/III date shifting is per patient, so a chart time more than 24 h outside its admission is a linkage error (Johnson et al., Sci Data 2023); flagged rows: event_flags.sql and rules/event_flags.csv (charted in error and Rewritten rows excluded as in mimic-code, undocumented flag values quarantined)
-- units: one row per quarantined event; failure_case and row_key as text; times as charted
-- requires:
-- depends: all_events, all_doses, icustay_detail, event_flags
-- params:
CREATE OR REPLACE TABLE q_stay_linkage AS
SELECT e.stay_id, 'stay_linkage' AS stage, 'event_outside_stay' AS rule, 'stay_id' AS "column",
       CASE WHEN e.stay_id IS NULL THEN 'missing' ELSE 'not in icustays' END AS failure_case,
       'src=' || e.src || '|charttime=' || coalesce(CAST(e.charttime AS VARCHAR), 'NULL')
           || '|itemid=' || coalesce(CAST(e.itemid AS VARCHAR), '') AS row_key,
       'stay_id is missing or not in the ICU stays table' AS reason
FROM all_events e ANTI JOIN icustay_detail s USING (stay_id)
UNION ALL
SELECT d.stay_id, 'stay_linkage', 'event_outside_stay', 'stay_id',
       CASE WHEN d.stay_id IS NULL THEN 'missing' ELSE 'not in icustays' END,
       'src=' || d.kind || '|starttime='
           || coalesce(CAST(d.starttime AS VARCHAR), 'NULL')
           || '|itemid=' || CAST(d.itemid AS VARCHAR),
       'stay_id is missing or not in the ICU stays table'
FROM all_doses d ANTI JOIN icustay_detail s USING (stay_id)
UNION ALL
SELECT e.stay_id, 'stay_linkage', 'event_outside_admission', 'charttime',
       CAST(e.charttime AS VARCHAR),
       'src=' || e.src || '|charttime=' || CAST(e.charttime AS VARCHAR)
           || '|itemid=' || coalesce(CAST(e.itemid AS VARCHAR), ''),
       'charted more than 24 h outside the hospital admission of its stay (wrong year or stay?)'
FROM all_events e JOIN icustay_detail s USING (stay_id)
WHERE e.charttime < s.admittime - INTERVAL 24 HOUR OR e.charttime > s.dischtime + INTERVAL 24 HOUR
UNION ALL
SELECT f.stay_id, 'stay_linkage', f.rule, f.flag_column, f.flag_value,
       'src=' || f.src || '|charttime=' || coalesce(CAST(f.charttime AS VARCHAR), 'NULL')
           || '|itemid=' || CAST(f.itemid AS VARCHAR),
       CASE f.rule
           WHEN 'charted_in_error' THEN 'charted in error (' || f.source_table || '.' || f.flag_column
               || ' = 1); excluded, as in mimic-code'
           WHEN 'rewritten' THEN 'rewritten: superseded by a later row (statusdescription Rewritten); '
               || 'excluded, as in mimic-code'
           ELSE f.source_table || '.' || f.flag_column
               || ' is not one of its documented values (rules/event_flags.csv)' END
FROM event_flags f;
