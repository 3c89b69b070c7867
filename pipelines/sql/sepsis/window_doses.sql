-- title: Cohort dose rows overlapping each stay's window, with their bounds, admission and copy number (doses stage)
-- reference: AI Clinician (Komorowski et al., Nat Med 2018): the fluid action counts tonicity-adjusted volumes (free water 0, half-normal saline 0.5; rules/fluid_items.csv) unless config doses.tonicity_adjusted = false; bounds from rules/outlier_bounds.csv
-- units: quantity = fluid mL (tonicity-adjusted or raw, by tonicity_adjusted) or norepinephrine-equivalent mcg/kg/min; quantity_raw = raw fluid mL; copy_no numbers copies (same kind, stay, times, item and dose) from 1, ordered by the remaining columns so both engines keep the same one
-- requires:
-- depends: all_doses, cohort_windows, icustay_detail, rule_outlier_bounds
-- params: tonicity_adjusted
CREATE OR REPLACE TABLE window_doses AS
SELECT d.kind, d.stay_id, d.starttime, d.endtime, d.itemid, d.unit, d.unit_known, d.weight_source,
       CASE WHEN d.kind = 'fluid'
            THEN CASE WHEN $tonicity_adjusted THEN d.amount_tonicity_ml ELSE d.amount_ml END
            ELSE d.norepi_eq_mcg_kg_min END AS quantity,
       CASE WHEN d.kind = 'fluid' THEN d.amount_ml END AS quantity_raw,
       b.upper, s.admittime, s.dischtime,
       row_number() OVER (PARTITION BY d.kind, d.stay_id, d.starttime, d.endtime, d.itemid,
                          d.amount_ml, d.norepi_eq_mcg_kg_min
                          ORDER BY d.unit NULLS LAST, d.unit_known NULLS LAST, d.amount_tonicity_ml NULLS LAST,
                                   d.weight_source NULLS LAST) AS copy_no
FROM all_doses d
JOIN cohort_windows w USING (stay_id)
JOIN icustay_detail s USING (stay_id)
LEFT JOIN rule_outlier_bounds b
  ON b.variable = CASE WHEN d.kind = 'fluid' THEN 'fluid_ml' ELSE 'norepi_eq_mcg_kg_min' END
WHERE (d.starttime < w.window_end AND d.endtime > w.window_start)
   OR (d.starttime = d.endtime AND d.starttime >= w.window_start AND d.starttime < w.window_end);
