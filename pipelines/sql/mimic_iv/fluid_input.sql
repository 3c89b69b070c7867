-- title: Intravenous fluid volumes, crystalloids and colloids (MIMIC-IV)
-- reference: rules/fluid_items.csv (mimic-code crystalloid_bolus.sql / colloid_bolus.sql items; tonicity factors from the AI Clinician, Komorowski 2018); rows with statusdescription 'Rewritten' are superseded and excluded as in mimic-code; they and rows whose status is not a documented value are set aside by event_flags.sql (quarantined)
-- units: amount_ml and amount_tonicity_ml in millilitres (tonicity-adjusted = amount x tonicity_factor); amount_unit_known is false when amountuom is not mL or L
-- requires: inputevents
-- depends:
CREATE OR REPLACE TABLE fluid_input AS
SELECT
    ie.subject_id, ie.hadm_id, ie.stay_id, ie.starttime, ie.endtime, ie.itemid,
    f.fluid_class, f.tonicity_factor, ie.amountuom,
    CASE lower(ie.amountuom) WHEN 'ml' THEN ie.amount WHEN 'l' THEN ie.amount * 1000 END AS amount_ml,
    CASE lower(ie.amountuom) WHEN 'ml' THEN ie.amount WHEN 'l' THEN ie.amount * 1000 END
        * f.tonicity_factor AS amount_tonicity_ml,
    lower(ie.amountuom) IN ('ml', 'l') AS amount_unit_known
FROM inputevents ie
JOIN rule_fluid_items f ON f.itemid = ie.itemid AND f.versions IN ('both', 'iv')
WHERE ie.statusdescription IS NULL OR ie.statusdescription IN (SELECT value FROM rule_event_flags
    WHERE source_table = 'inputevents' AND "column" = 'statusdescription' AND action = 'keep' AND versions IN ('both', 'iv'));
