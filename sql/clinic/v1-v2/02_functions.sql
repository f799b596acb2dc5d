\set ON_ERROR_STOP 1
\echo clinic 1 -> 2 (2/3): functions

/* clinic v1 -> v2, file 2 of 3: functions.

   v1's clinic.last_weight() returned the weight as typed. /* Kept for
   reference, v1's body was:
       SELECT e.weight INTO w FROM clinic.encounter e
        WHERE e.patient_id = p_patient AND coalesce(btrim(e.weight), '') <> ''
        ORDER BY e.started_at DESC LIMIT 1;
       RETURN w; */
   v2 returns numeric kilograms. A return type cannot be changed by CREATE OR
   REPLACE, so the function is dropped and created again (after 01_tables.sql
   has dropped the view that uses it). */

-- habit: no transaction management at all: every statement of this file
-- commits on its own, as under psql's default autocommit.

-- habit: functions with dollar-quoted bodies full of semicolons ($$ ... $$).
-- Known bug of v2.0, corrected by fixup 2.1 (v2/fixups/01_patient_age.sql):
-- the age goes up on New Year's day instead of on the birthday.
CREATE OR REPLACE FUNCTION clinic.patient_age(p_dob date, p_at date DEFAULT current_date)
RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
    years integer;
BEGIN
    IF p_dob IS NULL THEN
        RETURN NULL;
    END IF;
    years := extract(year FROM p_at)::integer - extract(year FROM p_dob)::integer;
    RETURN years;
END;
$$;

DROP FUNCTION IF EXISTS clinic.last_weight(bigint);

-- habit: a named dollar tag ($fn$ ... $fn$)
CREATE FUNCTION clinic.last_weight(p_patient bigint) RETURNS numeric
LANGUAGE sql STABLE AS $fn$
    SELECT e.weight_kg
      FROM clinic.encounter e
     WHERE e.patient_id = p_patient
       AND e.weight_kg IS NOT NULL
     ORDER BY e.started_at DESC
     LIMIT 1;
$fn$;

CREATE OR REPLACE FUNCTION clinic.format_weight(p_kg numeric) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF p_kg IS NULL THEN
        RETURN 'not weighed';
    ELSIF p_kg < 10 THEN
        RETURN to_char(p_kg, 'FM0.00') || ' kg';   -- infants: grams matter
    END IF;
    RETURN to_char(p_kg, 'FM990.0') || ' kg';
END;
$fn$;

-- habit: a nested $$ string inside a $fn$ body: the query text below is
-- itself dollar-quoted, semicolon included.
CREATE OR REPLACE FUNCTION clinic.encounter_stats(p_since timestamp with time zone,
                                                  p_period text DEFAULT 'month')
RETURNS TABLE (period timestamp with time zone, encounters bigint, patients bigint,
               mean_weight_kg numeric)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    q text;
BEGIN
    IF p_period NOT IN ('day', 'week', 'month', 'year') THEN
        RAISE EXCEPTION 'encounter_stats: unknown period %; use day, week, month or year', p_period;
    END IF;
    q := $$
        SELECT date_trunc(%L, e.started_at) AS period,
               count(*) AS encounters,
               count(DISTINCT e.patient_id) AS patients,
               round(avg(e.weight_kg), 1) AS mean_weight_kg
          FROM clinic.encounter e
         WHERE e.started_at >= $1
         GROUP BY 1
         ORDER BY 1;
    $$;
    RETURN QUERY EXECUTE format(q, p_period) USING p_since;
END;
$fn$;

COMMENT ON FUNCTION clinic.encounter_stats(timestamp with time zone, text) IS
    E'Encounters, patients and mean weight per period; e.g.\n  SELECT * FROM clinic.encounter_stats(now() - interval \'1 year\', \'month\');';
