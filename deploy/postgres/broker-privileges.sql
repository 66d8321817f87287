-- The privileges of the role the broker connects as: what it needs, and an audit trail it can
-- only append to (no UPDATE, DELETE or TRUNCATE on audit_events). See README.md beside this file.
--
-- Run it as the role that owns the tables (the one `access-broker migrate` runs as), after the
-- first migration and again after each later one, naming the broker's role:
--
--   psql "$OWNER_DATABASE_URL" -v broker_role=accessbroker -f deploy/postgres/broker-privileges.sql
--
-- It works on the first schema of the connection's search_path (usually `public`). It refuses a
-- broker role that privileges cannot bind: a superuser, the tables' owner or a member of it, or
-- a role with CREATEROLE (which can make itself a member). All of it is one statement, so a
-- refusal changes nothing.
\set ON_ERROR_STOP on

\if :{?broker_role}
\else
DO $$ BEGIN
    RAISE EXCEPTION 'name the broker''s role: psql -v broker_role=NAME -f broker-privileges.sql';
END $$;
\endif

SET accessbroker.broker_role = :'broker_role';

DO $$
DECLARE
    broker text := current_setting('accessbroker.broker_role');
    schema_name text := current_schema();
    broker_role pg_roles%ROWTYPE;
    audit_owner name;
BEGIN
    SELECT * INTO broker_role FROM pg_roles WHERE rolname = broker;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist: create it first (CREATE ROLE ... LOGIN)', broker;
    END IF;
    SELECT tableowner INTO audit_owner FROM pg_tables
        WHERE schemaname = schema_name AND tablename = 'audit_events';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no audit_events table in schema "%": run access-broker migrate first',
            schema_name;
    END IF;
    IF broker_role.rolsuper OR broker_role.rolcreaterole THEN
        RAISE EXCEPTION 'role "%" is a superuser or has CREATEROLE: privileges cannot bind it',
            broker;
    END IF;
    IF pg_has_role(broker, audit_owner, 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" is (a member of) "%", which owns the tables and can grant '
            'itself anything back: run the broker as a role of its own', broker, audit_owner;
    END IF;

    -- The broker reads and writes its tables but never deletes rows (add DELETE here the day
    -- it does); nextval() on the id sequences needs USAGE.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, broker);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO %I',
        schema_name, broker);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', schema_name, broker);
    -- `serve` checks the schema version at start; only `migrate`, as the owner, changes it.
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %I.alembic_version FROM %I',
        schema_name, broker);
    -- The audit trail is append-only: reading and appending, nothing else.
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I.audit_events FROM %I, PUBLIC',
        schema_name, broker);
END
$$;
