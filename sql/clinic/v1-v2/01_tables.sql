\set ON_ERROR_STOP 1
\echo clinic 1 -> 2 (1/3): types, tables and data conversion

-- clinic v1 -> v2, file 1 of 3: types, tables and data conversion.
--
-- Written the way real upgrade scripts are written; every habit pgstep must
-- cope with is marked "habit:". This file
--   * runs statements before its own BEGIN and after its own COMMIT,
--   * creates a pg_temp helper and calls it from a later statement,
--   * rewrites the two big tables with data conversion,
--   * guards its changes with OpenEMR-style directives written as SQL
--     comments, so the file is still valid for `psql -f`,
--   * builds an index CONCURRENTLY and VACUUMs (outside any transaction).
-- Like most real scripts it does not check which version it starts from:
-- pgstep checks the version marker before and after the step.
--
-- pgstep substitutes @TIME_ZONE@ (placeholder of kind literal, see
-- bundle.toml): under plain psql, substitute it first (README.md).

-- habit: statements before the file's own BEGIN (autocommit).
SET work_mem = '64MB';

-- habit: a pg_temp helper function, created here and called by a later
-- statement of this same file (so the whole file must run in one session).
-- v1 let people type anything into encounter.weight: '72.5', '72,5 kg',
-- '72kg', ' 72.5 ', '', ... Blank means "not weighed" (NULL); anything else
-- must be 1-3 digits, an optional decimal point or comma with 1-2 digits, and
-- an optional "kg". prechecks/weights.sql applies the very same rule, so the
-- sysadmin learns about unreadable values before the night, not during it.
CREATE FUNCTION pg_temp.parse_weight(raw text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[];
BEGIN
    IF raw IS NULL OR btrim(raw) = '' THEN
        RETURN NULL;    -- not weighed
    END IF;
    m := regexp_match(raw, '^\s*([0-9]{1,3})(?:[.,]([0-9]{1,2}))?\s*(?:kg)?\s*$', 'i');
    IF m IS NULL THEN
        RAISE EXCEPTION 'cannot read weight %; expected e.g. 72.5, 72,5 kg or 72kg', quote_literal(raw)
            USING HINT = 'Correct the encounters listed by the precheck "weights readable" and try again.';
    END IF;
    RETURN (m[1] || '.' || coalesce(m[2], '0'))::numeric;
END;
$$;

-- habit: the file manages its own transaction.
BEGIN;

-- habit: DROP VIEW + CREATE VIEW. v_patient_summary depends on patient.sex and
-- encounter.started_at (rewritten below) and on clinic.last_weight()
-- (replaced in 02_functions.sql); 03_views_grants.sql creates it again and
-- grants its privileges again (dropping a view drops its grants).
DROP VIEW IF EXISTS clinic.v_patient_summary;

-- habit: conditional blocks (OpenEMR style), so that the file can be run again.

-- patient.sex: char(1) with a CHECK -> enum. The v1 CHECK cannot survive the
-- type change (it compares with char values), the enum replaces it.
-- (format_type() spells the type clinic.sex because clinic is not on the
-- session's search_path.)
-- #IfNotColumnType clinic.patient sex clinic.sex
CREATE TYPE clinic.sex AS ENUM ('female', 'male', 'other', 'unknown');
ALTER TABLE clinic.patient DROP CONSTRAINT IF EXISTS patient_sex_check;   -- missing in some restored dumps
-- habit: table rewrite with data conversion
ALTER TABLE clinic.patient
    ALTER COLUMN sex TYPE clinic.sex USING (CASE lower(sex)
                                                WHEN 'f' THEN 'female'
                                                WHEN 'm' THEN 'male'
                                                WHEN 'x' THEN 'other'
                                                ELSE 'unknown'      -- 'u' and NULL (never asked)
                                            END)::clinic.sex,
    ALTER COLUMN sex SET DEFAULT 'unknown',
    ALTER COLUMN sex SET NOT NULL;
-- #EndIf

-- #IfMissingColumn clinic.patient email
ALTER TABLE clinic.patient ADD COLUMN email text;
-- #EndIf

-- encounter.started_at: wall-clock time -> timestamptz, read in the practice's
-- time zone (placeholder @TIME_ZONE@, pgstep quotes it as a string literal);
-- encounter.weight: free text -> numeric(5,2) through the pg_temp helper.
-- habit: table rewrite with data conversion. Both columns in one ALTER TABLE:
-- the largest table is rewritten once, not twice.
-- #IfNotColumnType clinic.encounter started_at 'timestamp with time zone'
ALTER TABLE clinic.encounter
    ALTER COLUMN started_at TYPE timestamp with time zone USING started_at AT TIME ZONE @TIME_ZONE@,
    ALTER COLUMN weight TYPE numeric(5,2) USING pg_temp.parse_weight(weight);
-- habit: a placeholder inside a string literal (pgstep doubles the quotes of
-- the quoted value: the comment reads ... as 'Europe/Berlin')
COMMENT ON COLUMN clinic.encounter.started_at IS 'Start of the encounter; v1 wall-clock times were read as @TIME_ZONE@';
-- #EndIf

-- #IfColumn clinic.encounter weight
ALTER TABLE clinic.encounter RENAME COLUMN weight TO weight_kg;
COMMENT ON COLUMN clinic.encounter.weight_kg IS 'Body weight in kg; NULL: not weighed';
-- #EndIf

DO $$
DECLARE
    n_all    bigint;
    n_weight bigint;
BEGIN
    SELECT count(*), count(weight_kg) INTO n_all, n_weight FROM clinic.encounter;
    RAISE NOTICE 'clinic 1 -> 2: % encounters, % of them with a weight in kg', n_all, n_weight;
END
$$;

-- new in v2: allergies, coded against a small reference list
-- #IfNotTable clinic.allergen
CREATE TABLE clinic.allergen (
    id       serial PRIMARY KEY,
    category text NOT NULL CHECK (category IN ('drug', 'food', 'environment')),
    code     text NOT NULL,
    name     text NOT NULL,
    CONSTRAINT allergen_category_code_key UNIQUE (category, code),
    CONSTRAINT allergen_category_name_key UNIQUE (category, name)
);
-- #EndIf

-- Reference rows, each added unless its code or its name is already there
-- (the IfNotRow2Dx2 directive is OpenEMR's guard for list_options, made for
-- exactly this case).
-- #IfNotRow2Dx2 clinic.allergen category drug code pen name Penicilin
INSERT INTO clinic.allergen (category, code, name) VALUES ('drug', 'pen', 'Penicilin');  -- (sic: fixup 2.1 corrects it)
-- #EndIf
-- #IfNotRow2Dx2 clinic.allergen category drug code asa name 'Acetylsalicylic acid'
INSERT INTO clinic.allergen (category, code, name) VALUES ('drug', 'asa', 'Acetylsalicylic acid');
-- #EndIf
-- #IfNotRow2Dx2 clinic.allergen category drug code nsaid name NSAIDs
INSERT INTO clinic.allergen (category, code, name) VALUES ('drug', 'nsaid', 'NSAIDs');
-- #EndIf
-- #IfNotRow2Dx2 clinic.allergen category food code peanut name Peanut
INSERT INTO clinic.allergen (category, code, name) VALUES ('food', 'peanut', 'Peanut');
-- #EndIf
-- #IfNotRow2Dx2 clinic.allergen category food code lactose name Lactose
INSERT INTO clinic.allergen (category, code, name) VALUES ('food', 'lactose', 'Lactose');
-- #EndIf
-- #IfNotRow2Dx2 clinic.allergen category environment code pollen name 'Grass pollen'
INSERT INTO clinic.allergen (category, code, name) VALUES ('environment', 'pollen', 'Grass pollen');
-- #EndIf
-- #IfNotRow2Dx2 clinic.allergen category environment code mite name 'House dust mite'
INSERT INTO clinic.allergen (category, code, name) VALUES ('environment', 'mite', 'House dust mite');
-- #EndIf

-- #IfNotTable clinic.allergy
CREATE TABLE clinic.allergy (
    id          bigserial PRIMARY KEY,
    patient_id  bigint NOT NULL CONSTRAINT allergy_patient_id_fkey REFERENCES clinic.patient (id),
    allergen_id integer NOT NULL CONSTRAINT allergy_allergen_id_fkey REFERENCES clinic.allergen (id),
    severity    text NOT NULL DEFAULT 'unknown'
                CHECK (severity IN ('mild', 'moderate', 'severe', 'unknown')),
    reaction    text,
    recorded_by integer CONSTRAINT allergy_recorded_by_fkey REFERENCES clinic.staff (id),
    recorded_at timestamp with time zone NOT NULL DEFAULT now()
);
-- #EndIf

-- Data migration: v1 had nowhere to record allergies, so people typed them
-- into the encounter notes ("Allergy: penicillin (rash)", "Allergic to
-- peanuts!"). Each patient's mentions become allergy rows, dated and signed
-- by the first encounter that mentions them. Re-runnable by itself (NOT
-- EXISTS); the plausibility pair "allergies migrated from notes" in
-- bundle.toml counts the same mentions in the old database.
CREATE TEMPORARY TABLE allergy_word (word, category, code) AS
VALUES ('penicillin', 'drug', 'pen'),
       ('aspirin', 'drug', 'asa'),
       ('nsaid', 'drug', 'nsaid'),
       ('peanut', 'food', 'peanut'),
       ('lactose', 'food', 'lactose'),
       ('pollen', 'environment', 'pollen'),
       ('house dust mite', 'environment', 'mite');

INSERT INTO clinic.allergy (patient_id, allergen_id, severity, reaction, recorded_by, recorded_at)
SELECT DISTINCT ON (e.patient_id, a.id)
       e.patient_id, a.id, 'unknown', 'from v1 encounter notes: ' || e.notes, e.staff_id, e.started_at
  FROM clinic.encounter AS e
  JOIN pg_temp.allergy_word AS w ON strpos(lower(e.notes), w.word) > 0
  JOIN clinic.allergen AS a ON (a.category, a.code) = (w.category, w.code)
 WHERE e.notes ~* 'allerg'
   AND NOT EXISTS (SELECT FROM clinic.allergy AS x
                    WHERE x.patient_id = e.patient_id AND x.allergen_id = a.id)
 ORDER BY e.patient_id, a.id, e.started_at, e.id;

DROP TABLE pg_temp.allergy_word;

-- the account automatic entries (importers, v3's audit trigger) are made as
-- #IfNotRow clinic.staff login system
INSERT INTO clinic.staff (login, full_name, role) VALUES ('system', 'System (automatic entries)', 'system');
-- #EndIf

COMMIT;

-- habit: statements after the file's own COMMIT.

-- habit: CREATE INDEX CONCURRENTLY (cannot run inside a transaction block).
-- Nobody else is connected to the clone, but the script was written for
-- in-place upgrades too. A CONCURRENTLY build that fails leaves an INVALID
-- index behind, which the IfNotIndex guard would then skip: see README.md.
-- #IfNotIndex clinic.encounter encounter_patient_started_idx
CREATE INDEX CONCURRENTLY encounter_patient_started_idx ON clinic.encounter (patient_id, started_at DESC);
-- #EndIf

-- the new index covers every lookup the v1 single-column index served
-- #IfIndex clinic.encounter encounter_patient_idx
DROP INDEX CONCURRENTLY clinic.encounter_patient_idx;
-- #EndIf

-- habit: VACUUM (cannot run inside a transaction block either). The
-- rewritten tables have lost their statistics.
VACUUM (ANALYZE) clinic.patient, clinic.encounter;
