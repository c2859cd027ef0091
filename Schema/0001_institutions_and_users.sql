-- 0001_institutions_and_users.sql: the application role, the tenant context, and the first two
-- tenant tables with the row-level security pattern that every later tenant table copies.
--
-- Runs as the owner role (accord_owner) inside one transaction.

-- The server's role owns nothing and has neither SUPERUSER nor BYPASSRLS. Deploy scripts create it
-- with a password; this creates it (without login) where they did not.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'accord_app') THEN
        CREATE ROLE accord_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO accord_app', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO accord_app;
-- The server reads the migration records to know whether the schema is current.
GRANT SELECT ON schema_migrations TO accord_app;

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- The tenant context. Each request transaction sets these with set_config(name, value, true);
-- outside such a transaction they are unset (NULL or ''), and the policies below then match nothing.
CREATE FUNCTION accord_current_institution() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('accord.institution_id', true), '')::uuid $$;

CREATE FUNCTION accord_current_user() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('accord.user_id', true), '')::uuid $$;

CREATE FUNCTION accord_is_network_admin() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('accord.is_admin', true), '')::boolean, false) $$;

-- Institutions: the tenants.
CREATE TABLE institutions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SCHAC code: the institution's internet domain, lower case (as in Erasmus Without Paper).
    schac       text NOT NULL UNIQUE
                CHECK (length(schac) BETWEEN 3 AND 253 AND schac ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    -- Names in one or more languages: [{"lang": "fr", "value": "Université Libre de Bruxelles"}].
    names       jsonb NOT NULL CHECK (jsonb_typeof(names) = 'array' AND jsonb_array_length(names) > 0),
    country     char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    city        text CHECK (length(city) <= 200),
    type        text NOT NULL
                CHECK (type IN ('university', 'university_of_applied_sciences', 'college', 'research_institute', 'other')),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'active', 'rejected', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX institutions_status_idx ON institutions (status);

-- Users belong to one institution.
CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role            text NOT NULL CHECK (role IN ('admin', 'staff', 'faculty')),
    password_hash   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One account per e-mail address across the network, whatever its case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_institution_idx ON users (institution_id);

-- Row-level security: enabled and forced (so that even the owner is subject to it), with policies
-- that read the tenant context. A tenant sees and changes its own rows; network administrators act
-- through their own policies.
ALTER TABLE institutions ENABLE ROW LEVEL SECURITY;
ALTER TABLE institutions FORCE ROW LEVEL SECURITY;

CREATE POLICY institutions_own ON institutions
    USING (id = accord_current_institution())
    WITH CHECK (id = accord_current_institution());

CREATE POLICY institutions_network_admin ON institutions
    USING (accord_is_network_admin())
    WITH CHECK (accord_is_network_admin());

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;

CREATE POLICY users_own_institution ON users
    USING (institution_id = accord_current_institution())
    WITH CHECK (institution_id = accord_current_institution());

CREATE POLICY users_network_admin ON users
    USING (accord_is_network_admin())
    WITH CHECK (accord_is_network_admin());

GRANT SELECT, INSERT, UPDATE, DELETE ON institutions, users TO accord_app;
