\set ON_ERROR_STOP 1
\echo clinic 2 -> 3 (1/4): the 2.x fixups, for databases that never had them

-- clinic v2 -> v3, file 1 of 4.
--
-- This step runs in ONE transaction (single_transaction = true in
-- bundle.toml): if any statement of any of its files fails, the clone is left
-- exactly at v2. Its files therefore contain no BEGIN/COMMIT, no CREATE INDEX
-- CONCURRENTLY and no VACUUM. To mimic it with psql, run all four files inside
-- one BEGIN ... COMMIT (README.md).
--
-- As GNUmed does, the next major step carries the previous version's fixups:
-- a 2.0 database and a 2.1 database must arrive at the same v3. The fixups are
-- idempotent, so including them again is harmless.

-- habit: \i includes a file by a path relative to the bundle directory (under
-- psql: relative to the current directory, so run psql from the bundle
-- directory).
\i v2/fixups/01_patient_age.sql
\i v2/fixups/02_allergens.sql
