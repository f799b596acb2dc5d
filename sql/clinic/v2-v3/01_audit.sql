\set ON_ERROR_STOP 1
\echo clinic 2 -> 3 (2/4): audit log

-- clinic v2 -> v3, file 2 of 4: an audit log of changes to patients and
-- allergies. (One transaction for the whole step: no BEGIN/COMMIT here.)

-- #IfNotTable clinic.audit_log
CREATE TABLE clinic.audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name text NOT NULL,
    row_id     bigint NOT NULL,
    action     text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE')),
    changed_by text NOT NULL,
    changed_at timestamp with time zone NOT NULL DEFAULT now(),
    old_row    jsonb,
    new_row    jsonb
);
CREATE INDEX audit_log_row_idx ON clinic.audit_log (table_name, row_id);
ALTER TABLE clinic.audit_log OWNER TO @DB_USER@;
-- #EndIf

-- Runs with its owner's rights, so the application needs no INSERT on the
-- log (and cannot rewrite history). The client names the staff member with
-- SET clinic.staff_login = '...'; otherwise the database user is recorded.
CREATE OR REPLACE FUNCTION clinic.audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who text := coalesce(nullif(current_setting('clinic.staff_login', true), ''), session_user);
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO clinic.audit_log (table_name, row_id, action, changed_by, new_row)
        VALUES (TG_TABLE_NAME, NEW.id, TG_OP, who, to_jsonb(NEW));
    ELSIF TG_OP = 'UPDATE' THEN
        IF to_jsonb(NEW) = to_jsonb(OLD) THEN
            RETURN NULL;    -- nothing changed; nothing to log
        END IF;
        INSERT INTO clinic.audit_log (table_name, row_id, action, changed_by, old_row, new_row)
        VALUES (TG_TABLE_NAME, NEW.id, TG_OP, who, to_jsonb(OLD), to_jsonb(NEW));
    ELSE
        INSERT INTO clinic.audit_log (table_name, row_id, action, changed_by, old_row)
        VALUES (TG_TABLE_NAME, OLD.id, TG_OP, who, to_jsonb(OLD));
    END IF;
    RETURN NULL;    -- AFTER trigger: the result is ignored
END;
$$;

-- (CREATE OR REPLACE TRIGGER needs PostgreSQL 14; the bundle supports 13.)
DROP TRIGGER IF EXISTS patient_audit ON clinic.patient;
CREATE TRIGGER patient_audit
    AFTER INSERT OR UPDATE OR DELETE ON clinic.patient
    FOR EACH ROW EXECUTE FUNCTION clinic.audit_row();

DROP TRIGGER IF EXISTS allergy_audit ON clinic.allergy;
CREATE TRIGGER allergy_audit
    AFTER INSERT OR UPDATE OR DELETE ON clinic.allergy
    FOR EACH ROW EXECUTE FUNCTION clinic.audit_row();

-- habit: placeholders inside a dollar-quoted body: pgstep inserts the quoted
-- identifiers as they are ("clinic_report"), which reads the same inside
-- to_regrole('...') and in the GRANT. Sites without a reporting role skip it.
DO $grant$
BEGIN
    GRANT SELECT ON clinic.audit_log TO @APP_ROLE@;
    IF to_regrole('@REPORT_ROLE@') IS NOT NULL THEN
        GRANT SELECT ON clinic.audit_log TO @REPORT_ROLE@;
    END IF;
END
$grant$;
