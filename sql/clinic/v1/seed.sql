-- clinic v1 -- baseline data: the accounts every installation starts with,
-- the (empty) logon banner and the version marker.
--
-- Patients and encounters are not seeded here: generate.sql fills a v1
-- database with realistic data of any size.

\set ON_ERROR_STOP 1
\echo clinic v1: seeding staff, banner and version marker

INSERT INTO clinic.staff (login, full_name, role) VALUES
    ('admin',     'Practice Administrator', 'admin'),
    ('dr.weber',  'Dr. Anna Weber',         'physician'),
    ('dr.okafor', 'Dr. Chidi Okafor',       'physician'),
    -- typed in mixed case by the installer; v3 lower-cases all logins
    ('KMueller',  'Katrin Müller',          'nurse'),
    ('reception', 'Front desk',             'clerk');

INSERT INTO clinic.logon_banner (id, message) VALUES (1, NULL);

INSERT INTO clinic.schema_version (major, minor) VALUES (1, 0);
