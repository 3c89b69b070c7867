-- title: Suspicion of infection per ICU stay
-- reference: Seymour et al., JAMA 2016 (Sepsis-3 suspected infection); mimic-code suspicion_of_infection.sql: an antibiotic followed by a culture within 24 h (time = antibiotic), or a culture followed by an antibiotic within 72 h (time = culture)
-- units: times as TIMESTAMP; the first suspicion from 48 h before ICU admission to ICU discharge belongs to the stay
-- requires: microbiologyevents
-- depends: antibiotic, icustay_detail
CREATE OR REPLACE TABLE suspicion_of_infection AS
WITH cultures AS (
    SELECT subject_id, hadm_id, coalesce(charttime, chartdate) AS culture_time
    FROM microbiologyevents
    WHERE coalesce(charttime, chartdate) IS NOT NULL
),
pairs AS (
    SELECT a.subject_id, a.hadm_id, a.antibiotic_time, c.culture_time,
           CASE WHEN c.culture_time <= a.antibiotic_time THEN c.culture_time ELSE a.antibiotic_time END
               AS suspected_infection_time
    FROM antibiotic a
    JOIN cultures c
      ON c.subject_id = a.subject_id
     AND c.culture_time BETWEEN a.antibiotic_time - INTERVAL 72 HOUR AND a.antibiotic_time + INTERVAL 24 HOUR
)
SELECT
    s.stay_id, s.subject_id, s.hadm_id,
    first(p.antibiotic_time ORDER BY p.suspected_infection_time, p.antibiotic_time, p.culture_time) AS antibiotic_time,
    first(p.culture_time ORDER BY p.suspected_infection_time, p.antibiotic_time, p.culture_time) AS culture_time,
    min(p.suspected_infection_time) AS suspected_infection_time
FROM pairs p
JOIN icustay_detail s
  ON s.subject_id = p.subject_id
 AND p.suspected_infection_time BETWEEN s.intime - INTERVAL 48 HOUR AND s.outtime
GROUP BY s.stay_id, s.subject_id, s.hadm_id;
