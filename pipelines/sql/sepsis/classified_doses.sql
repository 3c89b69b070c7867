-- title: Each window dose row with the first quarantine rule it breaks, or NULL (doses stage)
-- reference: Dosewise data contract; units from rules/rate_units.csv (mimic-code vasopressor units); upper bounds from rules/outlier_bounds.csv; a dose more than 24 h outside its admission is a linkage error (per-patient date shifting, Johnson et al., Sci Data 2023)
-- units: rule = amount_unit_unknown, rate_unit_unknown, dose_times_invalid, dose_outside_admission, dose_missing, dose_negative, duplicate_dose, fluid_ml_range, norepi_eq_mcg_kg_min_range or NULL (kept)
-- requires:
-- depends: window_doses
-- params:
CREATE OR REPLACE TABLE classified_doses AS
SELECT *, CASE
    WHEN NOT coalesce(unit_known, false)
        THEN CASE WHEN kind = 'fluid' THEN 'amount_unit_unknown' ELSE 'rate_unit_unknown' END
    WHEN starttime IS NULL OR endtime IS NULL OR endtime < starttime THEN 'dose_times_invalid'
    WHEN starttime < admittime - INTERVAL 24 HOUR OR endtime > dischtime + INTERVAL 24 HOUR
        THEN 'dose_outside_admission'
    WHEN quantity IS NULL THEN 'dose_missing'
    WHEN quantity < 0 THEN 'dose_negative'
    WHEN copy_no > 1 THEN 'duplicate_dose'
    WHEN quantity > upper
        THEN CASE WHEN kind = 'fluid' THEN 'fluid_ml_range' ELSE 'norepi_eq_mcg_kg_min_range' END
END AS rule
FROM window_doses;
