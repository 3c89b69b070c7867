-- title: Worst rolling-24 h SOFA among the ICU hours that start inside each bin (binning stage)
-- reference: Singer et al., JAMA 2016 (SOFA); mimic-code mimic-iv/concepts/score/sofa.sql (hourly rolling 24 h SOFA); AI Clinician keeps SOFA per 4 h bin for the reward and the state
-- units: sofa_24h in points (0-24); bin = floor(seconds since window_start / bin_seconds)
-- requires:
-- depends: sofa, cohort_windows
-- params: bin_seconds
CREATE OR REPLACE TABLE sofa_bins AS
SELECT s.stay_id, CAST(floor(date_diff('second', w.window_start, s.starttime) / $bin_seconds) AS BIGINT) AS bin,
       CAST(max(s.sofa_24h) AS DOUBLE) AS sofa_24h
FROM sofa s JOIN cohort_windows w USING (stay_id)
WHERE s.starttime >= w.window_start AND s.starttime < w.window_end
GROUP BY ALL;
