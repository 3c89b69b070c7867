-- title: The measurement events kept for binning, one per exact copy group (measurements stage)
-- reference: AI Clinician (Komorowski et al., Nat Med 2018) outlier handling; with clip (config outliers.clip) out-of-range values are clipped to rules/outlier_bounds.csv and kept, as AI Clinician's winsorising; else they are quarantined
-- units: valuenum in the variable's unit; bin as window_events
-- requires:
-- depends: window_events
-- params: clip
CREATE OR REPLACE TABLE kept_events AS
SELECT stay_id, charttime, bin, variable,
       CASE WHEN ($clip AND rule LIKE '%\_range' ESCAPE '\') THEN least(greatest(valuenum, lower), upper)
            ELSE valuenum END AS valuenum
FROM window_events WHERE rule IS NULL OR ($clip AND rule LIKE '%\_range' ESCAPE '\');
