\set ON_ERROR_STOP 1
\echo clinic fixup 2.1 (2/2): allergen reference data, version marker

-- clinic fixup 2.1, file 2 of 2: reference data. Idempotent through the
-- directives (blocks nest: the outer one keeps the file harmless on a database
-- that has no allergen table at all) -- and also under plain `psql -f`, where
-- the directives are mere comments: GNUmed tells sysadmins to run fixups by
-- hand, so the inserts carry ON CONFLICT DO NOTHING as well.

-- #IfTable clinic.allergen

-- the typo shipped with v2.0
-- #IfRow2D clinic.allergen code pen name Penicilin
UPDATE clinic.allergen SET name = 'Penicillin' WHERE category = 'drug' AND code = 'pen';
-- #EndIf

-- reference rows v2.0 did not have
-- #IfNotRow clinic.allergen code latex
INSERT INTO clinic.allergen (category, code, name) VALUES ('environment', 'latex', 'Latex')
    ON CONFLICT DO NOTHING;
-- #EndIf
-- #IfNotRow3D clinic.allergen category drug code sulfa name Sulfonamides
INSERT INTO clinic.allergen (category, code, name) VALUES ('drug', 'sulfa', 'Sulfonamides')
    ON CONFLICT DO NOTHING;
-- #EndIf

-- #EndIf

-- The version marker: only ever moved forward, so that running this file
-- again (pgstep --reapply, or from the v2 -> v3 step) never turns a 2.2
-- database back into 2.1.
UPDATE clinic.schema_version SET minor = 1 WHERE major = 2 AND minor < 1;
