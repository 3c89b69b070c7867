-- title: The dose rows kept for binning (doses stage)
-- reference: Dosewise data contract: every window dose row is kept here or quarantined in q_doses
-- units: as window_doses
-- requires:
-- depends: classified_doses
-- params:
CREATE OR REPLACE TABLE kept_doses AS SELECT * FROM classified_doses WHERE rule IS NULL;
