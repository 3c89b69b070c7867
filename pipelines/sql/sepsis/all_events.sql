-- title: Every measurement event of every stay in one long view (stay_linkage stage)
-- reference: AI Clinician (Komorowski et al., Nat Med 2018) state variables; mimic-code concepts chart/lab/urine output; GCS enters as the derived total of gcs.sql (its parts are not state variables)
-- units: valuenum in the variable's unit (rules/item_map.csv); charttime TIMESTAMP; src = chart, gcs, lab or urine
-- requires:
-- depends: chart_measurements, gcs, lab_measurements, urine_output
-- params:
CREATE OR REPLACE VIEW all_events AS
SELECT 'chart' AS src, stay_id, charttime, itemid, variable, valuenum FROM chart_measurements
    WHERE variable NOT IN ('gcs_eye', 'gcs_verbal', 'gcs_motor', 'gcs_total')
UNION ALL SELECT 'gcs', stay_id, charttime, NULL, 'gcs_total', gcs_total FROM gcs
UNION ALL SELECT 'lab', stay_id, charttime, itemid, variable, valuenum FROM lab_measurements
UNION ALL SELECT 'urine', stay_id, charttime, itemid, 'urine_output_ml', urine_output_ml FROM
    urine_output;
