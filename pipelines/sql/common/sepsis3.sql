-- title: Sepsis-3 onset per ICU stay, testing every suspicion-of-infection event
-- reference: Singer et al., JAMA 2016 (Sepsis-3: suspected infection with an acute SOFA increase >= 2, baseline assumed 0); mimic-code mimic-iv/concepts/sepsis/sepsis3.sql (SOFA from 48 h before to 24 h after the suspicion); onset = the suspected-infection time (AI Clinician presumed onset, Komorowski 2018)
-- units: times as TIMESTAMP; sofa_score in points. Every suspicion event of the stay is tested; the onset is the first event (suspicion_seq order) whose window holds SOFA >= 2; a stay with no qualifying event keeps its first event with sepsis3 = false. n_suspicions = events tested; onset_suspicion_seq = the event chosen
-- requires:
-- depends: suspicion_of_infection, sofa
CREATE OR REPLACE TABLE sepsis3 AS
WITH tested AS (
    SELECT si.stay_id, si.subject_id, si.hadm_id, si.suspicion_seq, si.antibiotic_time, si.culture_time,
           si.suspected_infection_time, si.suspicion_date_only, si.time_source,
           max(so.sofa_24h) AS sofa_score,
           min(CASE WHEN so.sofa_24h >= 2 THEN so.endtime END) AS sofa_time
    FROM suspicion_of_infection si
    LEFT JOIN sofa so
      ON so.stay_id = si.stay_id
     AND so.endtime >= si.suspected_infection_time - INTERVAL 48 HOUR
     AND so.endtime <= si.suspected_infection_time + INTERVAL 24 HOUR
    GROUP BY si.stay_id, si.subject_id, si.hadm_id, si.suspicion_seq, si.antibiotic_time, si.culture_time,
             si.suspected_infection_time, si.suspicion_date_only, si.time_source
),
ranked AS (
    SELECT *,
           coalesce(sofa_score, 0) >= 2 AS qualifies,
           count(*) OVER (PARTITION BY stay_id) AS n_suspicions,
           row_number() OVER (
               PARTITION BY stay_id
               ORDER BY CASE WHEN coalesce(sofa_score, 0) >= 2 THEN 0 ELSE 1 END, suspicion_seq) AS pick
    FROM tested
)
SELECT stay_id, subject_id, hadm_id, antibiotic_time, culture_time, suspected_infection_time,
       suspicion_date_only, time_source, sofa_score, sofa_time, qualifies AS sepsis3,
       suspected_infection_time AS onset_time, n_suspicions, suspicion_seq AS onset_suspicion_seq
FROM ranked
WHERE pick = 1;
