-- 0007_identity_cache.sql: what lets each server keep resolved sessions in memory.
--
-- A server remembers, per bearer-token hash, whom the token authenticates and the caller's /v1/me
-- document (Sources/Institutions/IdentityCache.swift). Whatever could change that answer notifies
-- the channel `accord_identity` from a trigger, so every server forgets what it remembered as soon
-- as the change commits, whichever program made it (this server, another instance, `accord` on the
-- command line, psql):
--   sessions              updated or deleted (sign-out, revocation, a claim merged)
--   users                 updated or deleted (role, name, e-mail, removal)
--   institutions          updated or deleted (status: suspension, rejection; profile; tier)
--   institution_contacts  any change (they are part of /v1/me)
--   network_admins        updated or deleted
-- New rows change no existing session's answer, so inserts into sessions, users, institutions and
-- network_admins notify nothing (seeding a million institutions sends no notification); nor does
-- removing sessions that had expired already (they answer nothing). One notification per
-- statement; PostgreSQL folds identical ones within a transaction.

CREATE FUNCTION accord_identity_changed()
RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('accord_identity', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

-- Sessions: only when a live one changed or went away.
CREATE FUNCTION accord_sessions_changed()
RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows WHERE expires_at > now()) THEN
        PERFORM pg_notify('accord_identity', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_identity_updated AFTER UPDATE ON sessions REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accord_sessions_changed();
CREATE TRIGGER sessions_identity_deleted AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accord_sessions_changed();
CREATE TRIGGER sessions_identity_truncated AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION accord_identity_changed();
CREATE TRIGGER users_identity_changed AFTER UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION accord_identity_changed();
CREATE TRIGGER institutions_identity_changed AFTER UPDATE OR DELETE OR TRUNCATE ON institutions
    FOR EACH STATEMENT EXECUTE FUNCTION accord_identity_changed();
CREATE TRIGGER institution_contacts_identity_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON institution_contacts
    FOR EACH STATEMENT EXECUTE FUNCTION accord_identity_changed();
CREATE TRIGGER network_admins_identity_changed AFTER UPDATE OR DELETE OR TRUNCATE ON network_admins
    FOR EACH STATEMENT EXECUTE FUNCTION accord_identity_changed();

-- Expired sessions do not stay forever: each sign-in removes up to p_limit of them, whoever's they
-- are (the oldest first), so the table holds about the live sessions. Sessions that others are
-- removing at the same moment are skipped, never waited for.
CREATE FUNCTION accord_purge_expired_sessions(p_limit integer)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM sessions WHERE token_hash IN (
            SELECT token_hash FROM sessions WHERE expires_at <= now()
            ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;

-- accord_me_session: what a server needs to answer /v1/me and to remember the answer, in one
-- statement: the document of accord_me together with the identity the token resolves to and when
-- the session expires. No row when the token does not authenticate.
CREATE FUNCTION accord_me_session(p_token_hash bytea)
RETURNS TABLE (document jsonb, account_id uuid, is_admin boolean, institution_id uuid, role text,
               institution_status text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    a record;
    doc jsonb;
BEGIN
    SELECT * INTO a FROM accord_authenticate(p_token_hash) LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM set_config('accord.institution_id', coalesce(upper(a.institution_id::text), ''), true),
            set_config('accord.user_id', upper(a.account_id::text), true),
            set_config('accord.is_admin', CASE WHEN a.is_admin THEN 'true' ELSE 'false' END, true);
    IF a.is_admin THEN
        SELECT jsonb_strip_nulls(jsonb_build_object(
                   'user', jsonb_build_object('id', upper(n.id::text), 'email', n.email, 'name', n.name, 'role', 'network_admin',
                       'createdAt', to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                   'roles', jsonb_build_array('network_admin')))
        INTO doc
        FROM network_admins n WHERE n.id = a.account_id;
    ELSE
        SELECT jsonb_strip_nulls(jsonb_build_object(
            'user', jsonb_build_object('id', upper(u.id::text), 'email', u.email, 'name', u.name, 'role', u.role,
                'institutionId', upper(u.institution_id::text),
                'createdAt', to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
            'institution', d.document || jsonb_build_object('id', upper(d.id::text), 'contacts', coalesce((
                SELECT jsonb_agg(jsonb_build_object('role', c.role, 'name', c.name, 'email', c.email) ORDER BY c.position)
                FROM institution_contacts c WHERE c.institution_id = d.id), '[]'::jsonb)),
            'roles', jsonb_build_array(u.role)))
        INTO doc
        FROM users u JOIN institution_documents d ON d.id = u.institution_id
        WHERE u.id = a.account_id;
    END IF;
    IF doc IS NULL THEN
        RETURN;  -- the account is gone
    END IF;
    RETURN QUERY SELECT doc, a.account_id, a.is_admin, a.institution_id, a.role, a.institution_status, a.expires_at;
END
$$;

-- accord_me keeps its contract (the document, or NULL) and now has a single body to share.
CREATE OR REPLACE FUNCTION accord_me(p_token_hash bytea)
RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = public, pg_temp AS $$
    SELECT s.document FROM accord_me_session(p_token_hash) s
$$;

REVOKE ALL ON FUNCTION accord_me_session(bytea), accord_identity_changed(), accord_sessions_changed(),
    accord_purge_expired_sessions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_me_session(bytea), accord_purge_expired_sessions(integer) TO accord_app;
