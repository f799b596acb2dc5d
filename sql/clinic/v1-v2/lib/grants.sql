-- Shared helper: the privileges of the application's roles at version 2.
-- Included by v1-v2/03_views_grants.sql with \ir (path relative to the
-- including file).
--
-- @APP_ROLE@ and @REPORT_ROLE@ are placeholders of kind identifier (see
-- bundle.toml): pgstep replaces them with the quoted role names, "clinic_app"
-- and "clinic_report" unless the site overrides them (--set APP_ROLE=...).
-- Under plain psql, substitute them first (README.md).
--
-- GRANT is idempotent. The set is exactly v1's (v1/schema.sql) plus the new
-- objects: pgstep checks after the upgrade that no role lost a privilege.

GRANT USAGE ON SCHEMA clinic TO @APP_ROLE@, @REPORT_ROLE@;

-- the application
GRANT SELECT, INSERT, UPDATE, DELETE ON clinic.staff, clinic.patient, clinic.encounter,
                                        clinic.allergy TO @APP_ROLE@;
GRANT SELECT ON clinic.schema_version, clinic.logon_banner, clinic.allergen,
                clinic.v_patient_summary TO @APP_ROLE@;
GRANT USAGE ON SEQUENCE clinic.staff_id_seq, clinic.patient_id_seq, clinic.encounter_id_seq,
                        clinic.allergy_id_seq TO @APP_ROLE@;

-- reporting (read-only)
GRANT SELECT ON clinic.staff, clinic.patient, clinic.encounter, clinic.allergy, clinic.allergen,
                clinic.v_patient_summary TO @REPORT_ROLE@;
