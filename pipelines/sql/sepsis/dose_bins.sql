-- title: Per stay x bin IV fluid volume (split by time overlap), raw fluid volume and time-weighted norepinephrine-equivalent rate (doses stage)
-- reference: AI Clinician (Komorowski et al., Nat Med 2018): fluid = total volume given in the 4 h bin, vasopressor = the bin's (time-weighted) rate; an infusion spanning bins is split by overlap so the window's volume is conserved (checked against fluid_in_windows)
-- units: fluid_ml and fluid_raw_ml in mL per bin; norepi_eq_mcg_kg_min in mcg/kg/min; sums in DECIMAL(18, 6) so reruns give the same bits in any thread order
-- requires:
-- depends: kept_doses, cohort_windows
-- params: bin_seconds
CREATE OR REPLACE TABLE dose_bins AS
WITH r AS (
    SELECT d.kind, d.stay_id, d.quantity, d.quantity_raw, w.n_bins,
           date_diff('millisecond', w.window_start, d.starttime) / 1000.0 AS ds,
           date_diff('millisecond', w.window_start, d.endtime) / 1000.0 AS de,
           date_diff('millisecond', w.window_start, w.window_end) / 1000.0 AS wl,
           $bin_seconds::DOUBLE AS bs
    FROM kept_doses d JOIN cohort_windows w USING (stay_id)
),
x AS (
    SELECT *, unnest(range(CAST(greatest(0, floor(ds / bs)) AS BIGINT),
                           CAST(least(n_bins - 1, floor(de / bs)) AS BIGINT) + 1)) AS bin
    FROM r
),
o AS (
    SELECT *, greatest(0.0, least(de, (bin + 1) * bs, wl) - greatest(ds, bin * bs)) AS overlap_s,
           least((bin + 1) * bs, wl) - bin * bs AS bin_len_s
    FROM x
)
SELECT stay_id, bin,
       CAST(coalesce(sum(CASE WHEN kind = 'fluid' THEN CAST(
                    CASE WHEN de = ds THEN quantity ELSE quantity * overlap_s / (de - ds) END
                    AS DECIMAL(18, 6)) END), 0) AS DOUBLE) AS fluid_ml,
       CAST(coalesce(sum(CASE WHEN kind = 'fluid' THEN CAST(
                    CASE WHEN de = ds THEN quantity_raw ELSE quantity_raw * overlap_s / (de - ds) END
                    AS DECIMAL(18, 6)) END), 0) AS DOUBLE) AS fluid_raw_ml,
       CAST(coalesce(sum(CASE WHEN kind = 'vaso' THEN CAST(quantity * overlap_s AS DECIMAL(18, 6)) END), 0)
            AS DOUBLE) / max(bin_len_s) AS norepi_eq_mcg_kg_min
FROM o
GROUP BY stay_id, bin;
