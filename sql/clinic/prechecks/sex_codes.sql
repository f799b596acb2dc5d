\set ON_ERROR_STOP 1

-- Precheck (read-only): patients whose sex code the v1 -> v2 conversion would
-- not recognise (it maps f, m, x, u in either case; anything else would
-- silently become 'unknown'). v1's CHECK constraint should make this
-- impossible, but databases restored from old dumps have been seen with the
-- constraint missing. Every row returned is a problem.
-- Written to run on any version: the v2 labels are accepted too.
SELECT p.id AS patient_id,
       p.last_name,
       p.first_name,
       p.sex::text AS unknown_sex_code
  FROM clinic.patient AS p
 WHERE p.sex IS NOT NULL
   AND lower(p.sex::text) NOT IN ('f', 'm', 'x', 'u', 'female', 'male', 'other', 'unknown')
 ORDER BY p.id
 LIMIT 100;
