-- pgstep's bookkeeping in an application database: what was upgraded and which fixups ran.
-- Idempotent; the fingerprint leaves this schema out.
CREATE SCHEMA IF NOT EXISTS pgstep;
COMMENT ON SCHEMA pgstep IS 'pgstep bookkeeping: upgrades and fixups applied to this database';
CREATE TABLE IF NOT EXISTS pgstep.history (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action               text NOT NULL,           -- upgrade, bootstrap, fixup
    from_version         text,
    to_version           text NOT NULL,
    source_database      text,
    bundle               text NOT NULL,
    bundle_sha256        text NOT NULL,
    source_fingerprint   text,
    fingerprint_override boolean NOT NULL DEFAULT false,
    note                 text,
    pgstep_version       text NOT NULL,
    done_by              text NOT NULL DEFAULT current_user,
    done_at              timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS pgstep.fixup (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file           text NOT NULL,
    version        text NOT NULL,
    sha256         text NOT NULL,
    pgstep_version text NOT NULL,
    applied_by     text NOT NULL DEFAULT current_user,
    applied_at     timestamptz NOT NULL DEFAULT now()
);
