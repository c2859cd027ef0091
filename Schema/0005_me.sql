-- 0005_me.sql: GET /v1/me in one statement.
--
-- accord_me resolves a bearer token's hash (through the SECURITY DEFINER accord_authenticate), puts
-- the caller's tenant context into the transaction with set_config(…, true), and builds the response
-- document under the caller's own row-level security: the function runs with the rights of its
-- caller (accord_app), so the policies decide what it sees, exactly as in a request transaction that
-- the server opens itself. One statement instead of a token lookup plus a transaction: the hottest
-- authenticated route costs one round trip.
--
-- Returns NULL when the token is unknown, expired or revoked, or its institution was rejected or
-- suspended; also when the account no longer exists.

CREATE FUNCTION accord_me(p_token_hash bytea)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    a record;
BEGIN
    SELECT * INTO a FROM accord_authenticate(p_token_hash) LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('accord.institution_id', coalesce(upper(a.institution_id::text), ''), true),
            set_config('accord.user_id', upper(a.account_id::text), true),
            set_config('accord.is_admin', CASE WHEN a.is_admin THEN 'true' ELSE 'false' END, true);
    IF a.is_admin THEN
        RETURN (
            SELECT jsonb_strip_nulls(jsonb_build_object(
                       'user', jsonb_build_object('id', upper(n.id::text), 'email', n.email, 'name', n.name, 'role', 'network_admin',
                           'createdAt', to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                       'roles', jsonb_build_array('network_admin')))
            FROM network_admins n WHERE n.id = a.account_id);
    END IF;
    RETURN (
        SELECT jsonb_strip_nulls(jsonb_build_object(
            'user', jsonb_build_object('id', upper(u.id::text), 'email', u.email, 'name', u.name, 'role', u.role,
                'institutionId', upper(u.institution_id::text),
                'createdAt', to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
            'institution', d.document || jsonb_build_object('id', upper(d.id::text), 'contacts', coalesce((
                SELECT jsonb_agg(jsonb_build_object('role', c.role, 'name', c.name, 'email', c.email) ORDER BY c.position)
                FROM institution_contacts c WHERE c.institution_id = d.id), '[]'::jsonb)),
            'roles', jsonb_build_array(u.role)))
        FROM users u JOIN institution_documents d ON d.id = u.institution_id
        WHERE u.id = a.account_id);
END
$$;

REVOKE ALL ON FUNCTION accord_me(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_me(bytea) TO accord_app;
