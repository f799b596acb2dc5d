\set ON_ERROR_STOP 1
\echo clinic 1 -> 2 (3/3): views, privileges and the version marker

-- clinic v1 -> v2, file 3 of 3: the view dropped by 01_tables.sql, ownership
-- of the new objects, privileges, and the version marker.
--
-- pgstep substitutes @DB_USER@ (always defined: the role pgstep is connected
-- as) and, in lib/grants.sql, @APP_ROLE@ and @REPORT_ROLE@. Under plain psql,
-- substitute them first (README.md).

-- habit: DROP VIEW + CREATE VIEW, second half: the view is created again on
-- the rewritten columns ...
CREATE VIEW clinic.v_patient_summary AS
SELECT p.id,
       clinic.full_name(p.first_name, p.last_name) AS full_name,
       p.date_of_birth,
       clinic.patient_age(p.date_of_birth) AS age,
       p.sex,
       p.email,
       count(e.id) AS encounters,
       max(e.started_at) AS last_seen,
       clinic.last_weight(p.id) AS last_weight_kg
  FROM clinic.patient p
  LEFT JOIN clinic.encounter e ON e.patient_id = p.id
 GROUP BY p.id;

-- habit: a placeholder in code. As GNUmed does with gm-dbo, the objects this
-- step creates are given to the role that runs the upgrades.
ALTER TYPE clinic.sex OWNER TO @DB_USER@;
ALTER TABLE clinic.allergen OWNER TO @DB_USER@;
ALTER TABLE clinic.allergy OWNER TO @DB_USER@;
ALTER VIEW clinic.v_patient_summary OWNER TO @DB_USER@;

-- ... and its privileges (lost with DROP VIEW) are granted again, together with
-- those on the new tables, by the shared helper.
-- habit: an \ir include of a shared helper file (path relative to this file)
\ir lib/grants.sql

-- habit: the last statement of the step moves the version marker.
UPDATE clinic.schema_version SET major = 2, minor = 0;
