-- title: Vasopressor infusion rates (MIMIC-IV)
-- reference: rules/vasopressor_equivalents.csv item ids (mimic-code norepinephrine.sql, epinephrine.sql, phenylephrine.sql, dopamine.sql, vasopressin.sql); 'Rewritten' rows and rows whose status is not a documented value are set aside by event_flags.sql (quarantined)
-- units: rate in `rateuom` as charted; patientweight in kg
-- requires: inputevents
-- depends:
CREATE OR REPLACE TABLE vasopressor_rates AS
SELECT
    ie.subject_id, ie.hadm_id, ie.stay_id, ie.starttime, ie.endtime, ie.itemid, v.drug,
    ie.rate, ie.rateuom, ie.patientweight
FROM inputevents ie
JOIN rule_vasopressor_equivalents v ON v.itemid = ie.itemid AND v.versions IN ('both', 'iv')
WHERE ie.rate IS NOT NULL
  AND (ie.statusdescription IS NULL OR ie.statusdescription IN (SELECT value FROM rule_event_flags
    WHERE source_table = 'inputevents' AND "column" = 'statusdescription' AND action = 'keep' AND versions IN ('both', 'iv')));
