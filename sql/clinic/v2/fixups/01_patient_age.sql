\set ON_ERROR_STOP 1
\echo clinic fixup 2.1 (1/2): patient_age() birthday bug, missing index

-- clinic fixup 2.1, file 1 of 2. Applied in place to a v2 database (after a
-- backup), so it must be idempotent: pgstep --reapply runs it again, and the
-- v2 -> v3 step includes it once more (v2-v3/00_fixups.sql), so that 2.0 and
-- 2.1 databases arrive at the same v3.
--
-- Nothing here changes a table or a column: only a function body and an
-- index. The bundle gives 2.1 its own reference fingerprint.

-- v2.0's patient_age() counted years, not birthdays (someone born on
-- 31 December was a year old on 1 January). CREATE OR REPLACE keeps the
-- signature, so the view that uses the function is untouched.
CREATE OR REPLACE FUNCTION clinic.patient_age(p_dob date, p_at date DEFAULT current_date)
RETURNS integer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_dob IS NULL THEN
        RETURN NULL;
    END IF;
    -- age() counts whole years up to the birthday; NULL p_at means "today"
    RETURN date_part('year', age(coalesce(p_at, current_date), p_dob))::integer;
END;
$$;

-- v2.0 forgot the index on the allergy's patient: every patient screen scanned
-- the whole table.
CREATE INDEX IF NOT EXISTS allergy_patient_idx ON clinic.allergy (patient_id);
