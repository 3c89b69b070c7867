-- title: Per stay x bin x variable aggregate of the kept events: sum for volumes, max for indicators, mean otherwise (binning stage)
-- reference: AI Clinician (Komorowski et al., Nat Med 2018) 4 h bins: volumes (urine output) summed, the ventilation indicator maxed, every other variable averaged
-- units: value in the variable's unit; aggregated in DECIMAL(18, 6) (exact: reruns give the same bits in any thread order); means, sums and maxima are separate aggregates (with avg and sum in one GROUP BY, DuckDB rewrites avg as sum / count, which differs in the last bit)
-- requires:
-- depends: kept_events
-- params:
CREATE OR REPLACE TABLE binned_measurements AS
SELECT stay_id, bin, CAST(variable AS VARCHAR) AS variable,
       CAST(sum(CAST(valuenum AS DECIMAL(18, 6))) AS DOUBLE) AS value
FROM kept_events WHERE variable IN ('urine_output_ml') GROUP BY stay_id, bin, variable
UNION ALL
SELECT stay_id, bin, CAST(variable AS VARCHAR) AS variable, max(valuenum) AS value
FROM kept_events WHERE variable IN ('mechvent') GROUP BY stay_id, bin, variable
UNION ALL
SELECT stay_id, bin, CAST(variable AS VARCHAR) AS variable,
       CAST(avg(CAST(valuenum AS DECIMAL(18, 6))) AS DOUBLE) AS value
FROM kept_events WHERE variable NOT IN ('urine_output_ml', 'mechvent') GROUP BY stay_id, bin, variable;
