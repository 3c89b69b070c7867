-- title: Kept IV fluid volume inside the cohort windows, computed without bins (doses stage; checks that binning conserves volume)
-- reference: Dosewise conservation check: the binned fluid_ml must add up to this (manifest extra fluid_ml_in_window_kept vs fluid_ml_binned)
-- units: fluid_ml in mL (one row)
-- requires:
-- depends: kept_doses, cohort_windows
-- params:
CREATE OR REPLACE TABLE fluid_in_windows AS
SELECT coalesce(sum(CASE WHEN d.endtime = d.starttime THEN d.quantity ELSE d.quantity *
    greatest(0, date_diff('millisecond', greatest(d.starttime, w.window_start), least(d.endtime,
        w.window_end)))
    / date_diff('millisecond', d.starttime, d.endtime) END), 0) AS fluid_ml
FROM kept_doses d JOIN cohort_windows w USING (stay_id) WHERE d.kind = 'fluid';
