-- clinic v1 -- baseline schema, run in an empty database.
--
-- This file creates the first version of the sample application the way a
-- small vendor would have shipped it: one schema, serial keys, a timestamp
-- WITHOUT time zone, free-text weights and a char(1) sex code. The later
-- steps (v1-v2, v2-v3) clean these up.
--
-- Runs unchanged under `psql -v ON_ERROR_STOP=1 -f v1/schema.sql`: the
-- baseline uses no placeholders and no directives.

\set ON_ERROR_STOP 1
\echo clinic v1: creating schema clinic

-- Roles are cluster-wide: another database of the same cluster may already
-- have created them (or be creating them right now, when tests run in
-- parallel: that shows up as unique_violation rather than duplicate_object).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'clinic_app') THEN
        BEGIN
            CREATE ROLE clinic_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            RAISE NOTICE 'role clinic_app was created concurrently';
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'clinic_report') THEN
        BEGIN
            CREATE ROLE clinic_report NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            RAISE NOTICE 'role clinic_report was created concurrently';
        END;
    END IF;
END
$roles$;

CREATE SCHEMA clinic;
COMMENT ON SCHEMA clinic IS 'Clinic records (pgstep sample application)';

-- ---------------------------------------------------------------------------
-- version marker and logon banner
-- ---------------------------------------------------------------------------

CREATE TABLE clinic.schema_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    major    integer NOT NULL,
    minor    integer NOT NULL
);
COMMENT ON TABLE clinic.schema_version IS 'One row: the schema version of this database';

CREATE TABLE clinic.logon_banner (
    id         integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    message    text,
    changed_at timestamp with time zone NOT NULL DEFAULT now()
);
COMMENT ON TABLE clinic.logon_banner IS 'One row: the message clients show at logon (NULL: none)';

-- Clients LISTEN on clinic_admin and re-read the banner when told to.
CREATE FUNCTION clinic.notify_banner_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_at := now();
    PERFORM pg_notify('clinic_admin', 'banner;' || coalesce(NEW.message, ''));
    RETURN NEW;
END;
$$;

CREATE TRIGGER logon_banner_notify
    BEFORE INSERT OR UPDATE ON clinic.logon_banner
    FOR EACH ROW EXECUTE FUNCTION clinic.notify_banner_change();

-- ---------------------------------------------------------------------------
-- staff, patients, encounters
-- ---------------------------------------------------------------------------

CREATE TABLE clinic.staff (
    id        serial PRIMARY KEY,
    login     text NOT NULL UNIQUE,
    full_name text NOT NULL,
    role      text NOT NULL
);

CREATE TABLE clinic.patient (
    id            bigserial PRIMARY KEY,
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    date_of_birth date NOT NULL,
    -- the v1 client wrote 'F' or 'f' depending on the screen; NULL = not asked
    sex           char(1) CONSTRAINT patient_sex_check CHECK (lower(sex) IN ('f', 'm', 'x', 'u')),
    phone         text,
    created_at    timestamp NOT NULL DEFAULT now()
);
CREATE INDEX patient_name_idx ON clinic.patient (last_name, first_name);
CREATE INDEX patient_dob_idx ON clinic.patient (date_of_birth);

CREATE TABLE clinic.encounter (
    id         bigserial PRIMARY KEY,
    patient_id bigint NOT NULL CONSTRAINT encounter_patient_id_fkey REFERENCES clinic.patient (id),
    staff_id   integer CONSTRAINT encounter_staff_id_fkey REFERENCES clinic.staff (id),
    -- local wall-clock time of the practice (v2 converts to timestamptz)
    started_at timestamp NOT NULL,
    reason     text,
    -- free text as typed: '72.5', '72,5 kg', '' ... (v2 converts to numeric)
    weight     text,
    notes      text
);
CREATE INDEX encounter_patient_idx ON clinic.encounter (patient_id);
CREATE INDEX encounter_started_idx ON clinic.encounter (started_at);

-- ---------------------------------------------------------------------------
-- functions and views
-- ---------------------------------------------------------------------------

CREATE FUNCTION clinic.full_name(p_first text, p_last text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_last || ', ' || p_first;
$$;

-- The newest weight as typed (text; v2 returns numeric).
CREATE FUNCTION clinic.last_weight(p_patient bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    w text;
BEGIN
    SELECT e.weight INTO w
      FROM clinic.encounter e
     WHERE e.patient_id = p_patient
       AND coalesce(btrim(e.weight), '') <> ''
     ORDER BY e.started_at DESC
     LIMIT 1;
    RETURN w;
END;
$$;

CREATE VIEW clinic.v_patient_summary AS
SELECT p.id,
       clinic.full_name(p.first_name, p.last_name) AS full_name,
       p.date_of_birth,
       p.sex,
       count(e.id) AS encounters,
       max(e.started_at) AS last_seen,
       clinic.last_weight(p.id) AS last_weight
  FROM clinic.patient p
  LEFT JOIN clinic.encounter e ON e.patient_id = p.id
 GROUP BY p.id;

-- ---------------------------------------------------------------------------
-- privileges (v1-v2/lib/grants.sql and v2-v3 must keep exactly these)
-- ---------------------------------------------------------------------------

GRANT USAGE ON SCHEMA clinic TO clinic_app, clinic_report;

GRANT SELECT, INSERT, UPDATE, DELETE ON clinic.staff, clinic.patient, clinic.encounter TO clinic_app;
GRANT SELECT ON clinic.schema_version, clinic.logon_banner, clinic.v_patient_summary TO clinic_app;
GRANT USAGE ON SEQUENCE clinic.staff_id_seq, clinic.patient_id_seq, clinic.encounter_id_seq TO clinic_app;

GRANT SELECT ON clinic.staff, clinic.patient, clinic.encounter, clinic.v_patient_summary TO clinic_report;
