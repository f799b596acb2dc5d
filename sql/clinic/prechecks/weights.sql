\set ON_ERROR_STOP 1

-- Precheck (read-only): encounters whose weight text the v1 -> v2 conversion
-- cannot read. Every row returned is a problem: the upgrade would stop at
-- v1-v2/01_tables.sql ("cannot read weight ..."). Correct the weights in the
-- application, or clear them, and run the prechecks again.
--
-- The rule is the one of pg_temp.parse_weight() in v1-v2/01_tables.sql:
-- blank means "not weighed"; otherwise 1-3 digits, optionally a point or a
-- comma and 1-2 digits, optionally "kg" (any case), spaces around.
--
-- [[precheck]] entries apply to every upgrade, and encounter.weight only
-- exists in v1: the column is read from the row as jsonb, so that on v2 and
-- later this finds nothing instead of failing.
SELECT e.id AS encounter_id,
       e.patient_id,
       e.started_at,
       w.weight AS unreadable_weight
  FROM clinic.encounter AS e
 CROSS JOIN LATERAL (SELECT to_jsonb(e) ->> 'weight') AS w (weight)
 WHERE btrim(w.weight) <> ''
   AND w.weight !~* '^\s*[0-9]{1,3}([.,][0-9]{1,2})?\s*(kg)?\s*$'
 ORDER BY e.id
 LIMIT 100;
