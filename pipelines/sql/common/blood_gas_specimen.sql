-- title: Blood-gas specimen type per draw (arterial or not)
-- reference: mimic-code mimic-iii/concepts/pivot/pivoted_bg.sql (SPECIMEN item 50800, grouped by admission and chart time; draws with more than one specimen listed are not used) and mimic-iv/concepts/measurement/bg.sql (Specimen Type item 52033); item ids and values in rules/blood_gas_specimens.csv
-- units: arterial is true when every specimen charted for the draw (subject_id, charttime) is arterial and there is exactly one distinct specimen value; draws whose specimen is not recorded are absent (respiratory SOFA then has no PaO2 from them)
-- requires: labevents
-- depends:
CREATE OR REPLACE TABLE blood_gas_specimen AS
SELECT le.subject_id, le.charttime,
       min(le.value) AS specimen,
       count(DISTINCT le.value) = 1 AND min(CASE WHEN r.arterial THEN 1 ELSE 0 END) = 1 AS arterial
FROM labevents le
JOIN rule_blood_gas_specimens r
  ON r.itemid = le.itemid AND upper(trim(le.value)) = r.value
 AND r.versions IN ('both', (SELECT version_tag FROM etl_params))
WHERE le.charttime IS NOT NULL
GROUP BY le.subject_id, le.charttime;
