-- title: Quarantine of missing, out-of-range and duplicate measurement events, one row per removed copy (measurements stage)
-- reference: Dosewise data contract (rows in = rows out + quarantined); bounds from rules/outlier_bounds.csv; clipped values (outliers.clip) are listed as <variable>_clipped and kept
-- units: one row per quarantined (or clipped) event copy; failure_case = the value as text
-- requires:
-- depends: window_events
-- params: clip
CREATE OR REPLACE TABLE q_measurements AS
WITH q AS (
    SELECT *, CASE WHEN ($clip AND rule LIKE '%\_range' ESCAPE '\') THEN replace(rule, '_range', '_clipped')
                   ELSE rule END AS qrule,
           CASE WHEN ($clip AND rule LIKE '%\_range' ESCAPE '\') THEN 1 ELSE copies END AS n
    FROM window_events WHERE rule IS NOT NULL
    UNION ALL
    SELECT *, 'duplicate_event' AS qrule, copies - 1 AS n
    FROM window_events WHERE (rule IS NULL OR ($clip AND rule LIKE '%\_range' ESCAPE '\')) AND copies > 1
),
expanded AS (SELECT *, unnest(range(n)) AS copy_no FROM q)
SELECT stay_id, 'measurements' AS stage, qrule AS rule, variable AS "column",
       CAST(valuenum AS VARCHAR) AS failure_case,
       'src=' || src || '|charttime=' || CAST(charttime AS VARCHAR)
           || '|itemid=' || coalesce(CAST(itemid AS VARCHAR), '') AS row_key,
       CASE WHEN qrule = 'valuenum_missing' THEN 'no numeric value for ' || variable
            WHEN qrule = 'duplicate_event' THEN 'exact duplicate of an earlier row (first copy kept)'
            WHEN qrule LIKE '%\_clipped' ESCAPE '\'
                THEN 'outside [' || lower || ', ' || upper || ']; clipped and kept'
            ELSE 'outside [' || lower || ', ' || upper || '] (rules/outlier_bounds.csv)' END AS reason
FROM expanded;
