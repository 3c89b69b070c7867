-- title: Cohort events inside each stay's window, exact copies grouped, each tested against its plausibility bounds (measurements stage)
-- reference: AI Clinician (Komorowski et al., Nat Med 2018) window of 24 h before to 48 h after onset, 4 h bins; bounds from rules/outlier_bounds.csv (AI Clinician / mimic-code ranges, cited there)
-- units: bin = floor(seconds since window_start / bin_seconds); copies = identical rows grouped; lower/upper in the variable's unit; rule = valuenum_missing, <variable>_range or NULL
-- requires:
-- depends: all_events, cohort_windows, rule_outlier_bounds
-- params: bin_seconds
CREATE OR REPLACE TABLE window_events AS
WITH g AS (
    SELECT e.src, e.stay_id, e.charttime, e.itemid, e.variable, e.valuenum,
           CAST(floor(date_diff('second', w.window_start, e.charttime) / $bin_seconds)
                AS BIGINT)
               AS bin,
           count(*) AS copies
    FROM all_events e JOIN cohort_windows w USING (stay_id)
    WHERE e.charttime >= w.window_start AND e.charttime < w.window_end
    GROUP BY ALL
)
SELECT g.*, b.lower, b.upper,
       CASE WHEN g.valuenum IS NULL THEN 'valuenum_missing'
            WHEN g.valuenum < b.lower OR g.valuenum > b.upper THEN g.variable || '_range' END AS rule
FROM g LEFT JOIN rule_outlier_bounds b ON b.variable = g.variable;
