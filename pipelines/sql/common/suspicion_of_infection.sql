-- title: Suspicion-of-infection events per ICU stay (every event, not only the first)
-- reference: Seymour et al., JAMA 2016 and Singer et al., JAMA 2016 (Sepsis-3 suspected infection: an antibiotic followed by a culture within 24 h, or a culture followed by an antibiotic within 72 h); mimic-code mimic-iv/concepts/sepsis/suspicion_of_infection.sql (one event per antibiotic, paired with its earliest culture, culture-first preferred; a date-only side is matched by calendar day: culture day to 3 days after, or 1 day before to the culture day) and mimic-code mimic-iii/concepts/treatment/suspicion_of_infection.sql (MIMIC-III antibiotics carry only a date, so the suspicion time is the culture time)
-- units: times as TIMESTAMP. suspected_infection_time = the earlier of culture and antibiotic when both have a clock time; when one side has only a date (MIMIC-III prescriptions, cultures without charttime) the side with a clock time is used, so a date read as 00:00 never wins by looking earlier; when both are date-only the earlier date (00:00) is used and suspicion_date_only is true. Events are ordered by calendar day, then timed before date-only, then time (suspicion_seq = 1 is the first); an event belongs to a stay when its time lies from 48 h before ICU admission to ICU discharge
-- requires: microbiologyevents
-- depends: antibiotic, icustay_detail
CREATE OR REPLACE TABLE suspicion_of_infection AS
WITH cultures AS (
    SELECT DISTINCT subject_id,
           coalesce(charttime, chartdate) AS culture_time,
           charttime IS NULL AS culture_date_only,
           CAST(coalesce(charttime, chartdate) AS DATE) AS culture_date
    FROM microbiologyevents
    WHERE coalesce(charttime, chartdate) IS NOT NULL
),
abx AS (
    SELECT DISTINCT subject_id, antibiotic_time, antibiotic_date_only, CAST(antibiotic_time AS DATE) AS antibiotic_date
    FROM antibiotic
),
paired AS (
    SELECT a.*, c.culture_time, c.culture_date_only, c.culture_date,
           1 AS pairing -- culture, then the antibiotic within 72 h (3 calendar days when a side is date-only)
    FROM abx a
    JOIN cultures c
      ON c.subject_id = a.subject_id
     AND ((NOT a.antibiotic_date_only AND NOT c.culture_date_only
           AND a.antibiotic_time >= c.culture_time AND a.antibiotic_time <= c.culture_time + INTERVAL 72 HOUR)
       OR ((a.antibiotic_date_only OR c.culture_date_only)
           AND a.antibiotic_date >= c.culture_date AND a.antibiotic_date <= c.culture_date + INTERVAL 3 DAY))
    UNION ALL
    SELECT a.*, c.culture_time, c.culture_date_only, c.culture_date,
           2 AS pairing -- antibiotic, then a culture within 24 h (the day before to the culture day if date-only)
    FROM abx a
    JOIN cultures c
      ON c.subject_id = a.subject_id
     AND ((NOT a.antibiotic_date_only AND NOT c.culture_date_only
           AND a.antibiotic_time < c.culture_time AND a.antibiotic_time >= c.culture_time - INTERVAL 24 HOUR)
       OR ((a.antibiotic_date_only OR c.culture_date_only)
           AND a.antibiotic_date >= c.culture_date - INTERVAL 1 DAY AND a.antibiotic_date <= c.culture_date))
),
per_antibiotic AS (
    SELECT p.*,
           -- one culture per antibiotic: culture-first pairing, then the earliest (timed before date-only)
           row_number() OVER (
               PARTITION BY p.subject_id, p.antibiotic_time, p.antibiotic_date_only
               ORDER BY p.pairing, p.culture_date, p.culture_date_only, p.culture_time) AS culture_rank
    FROM paired p
),
events AS (
    SELECT subject_id, antibiotic_time, culture_time,
           CASE WHEN antibiotic_date_only AND NOT culture_date_only THEN culture_time
                WHEN culture_date_only AND NOT antibiotic_date_only THEN antibiotic_time
                WHEN culture_time <= antibiotic_time THEN culture_time
                ELSE antibiotic_time END AS suspected_infection_time,
           antibiotic_date_only AND culture_date_only AS suspicion_date_only,
           CASE WHEN antibiotic_date_only AND NOT culture_date_only THEN 'culture'
                WHEN culture_date_only AND NOT antibiotic_date_only THEN 'antibiotic'
                WHEN culture_time <= antibiotic_time THEN 'culture'
                ELSE 'antibiotic' END AS time_source
    FROM per_antibiotic
    WHERE culture_rank = 1
),
in_stay AS (
    SELECT s.stay_id, s.subject_id, s.hadm_id, e.antibiotic_time, e.culture_time, e.suspected_infection_time,
           e.suspicion_date_only, e.time_source,
           row_number() OVER (
               PARTITION BY s.stay_id, e.suspected_infection_time, e.suspicion_date_only
               ORDER BY e.antibiotic_time, e.culture_time) AS copy_no
    FROM events e
    JOIN icustay_detail s
      ON s.subject_id = e.subject_id
     AND e.suspected_infection_time >= s.intime - INTERVAL 48 HOUR
     AND e.suspected_infection_time <= s.outtime
)
SELECT stay_id, subject_id, hadm_id,
       row_number() OVER (
           PARTITION BY stay_id
           ORDER BY CAST(suspected_infection_time AS DATE), suspicion_date_only, suspected_infection_time)
           AS suspicion_seq,
       antibiotic_time, culture_time, suspected_infection_time, suspicion_date_only, time_source
FROM in_stay
WHERE copy_no = 1;
