\set ON_ERROR_STOP 1
\echo clinic 2 -> 3 (4/4): encounter status and external id, version marker

-- clinic v2 -> v3, file 4 of 4: two new columns on the largest table, and the
-- version marker. (One transaction for the whole step: no BEGIN/COMMIT here.)

-- habit: a new column with a default on a large table.
-- A constant default costs nothing since PostgreSQL 11: it is kept in the
-- catalog, not written into every row. Existing encounters are over
-- ('closed'); new ones start 'open'. (The CHECK is verified by one scan.)
-- #IfMissingColumn clinic.encounter status
ALTER TABLE clinic.encounter
    ADD COLUMN status text NOT NULL DEFAULT 'closed'
        CONSTRAINT encounter_status_check CHECK (status IN ('open', 'closed', 'cancelled'));
ALTER TABLE clinic.encounter ALTER COLUMN status SET DEFAULT 'open';
-- #EndIf

-- A volatile default is evaluated for every row: this one rewrites the table
-- (the longest statement of the step).
-- #IfMissingColumn clinic.encounter external_id
ALTER TABLE clinic.encounter ADD COLUMN external_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX encounter_external_id_key ON clinic.encounter (external_id);
-- #EndIf

-- habit: the last statement of the step moves the version marker.
UPDATE clinic.schema_version SET major = 3, minor = 0;
