-- title: Sepsis-3 onset per ICU stay
-- reference: Singer et al., JAMA 2016 (Sepsis-3: suspected infection with an acute SOFA increase >= 2, baseline assumed 0); mimic-code sepsis3.sql (SOFA from 48 h before to 24 h after the suspicion); onset = the suspected-infection time (AI Clinician presumed onset, Komorowski 2018)
-- units: times as TIMESTAMP; sofa_score in points
-- requires:
-- depends: suspicion_of_infection, sofa
CREATE OR REPLACE TABLE sepsis3 AS
SELECT
    si.stay_id, si.subject_id, si.hadm_id, si.antibiotic_time, si.culture_time, si.suspected_infection_time,
    max(so.sofa_24h) AS sofa_score,
    min(so.endtime) FILTER (WHERE so.sofa_24h >= 2) AS sofa_time,
    coalesce(max(so.sofa_24h), 0) >= 2 AS sepsis3,
    si.suspected_infection_time AS onset_time
FROM suspicion_of_infection si
LEFT JOIN sofa so
  ON so.stay_id = si.stay_id
 AND so.endtime BETWEEN si.suspected_infection_time - INTERVAL 48 HOUR AND si.suspected_infection_time + INTERVAL 24 HOUR
GROUP BY ALL;
