-- 0019_lowercase_ids.sql: ids are written in lower case everywhere in the API, as RFC 9562
-- recommends (and read in any case); /v1/me's document, built here, follows.

CREATE OR REPLACE FUNCTION accord_me_session(p_token_hash bytea)
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
                   'user', jsonb_build_object('id', lower(n.id::text), 'email', n.email, 'name', n.name, 'role', 'network_admin',
                       'createdAt', to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                   'roles', jsonb_build_array('network_admin')))
        INTO doc
        FROM network_admins n WHERE n.id = a.account_id;
    ELSE
        SELECT jsonb_strip_nulls(jsonb_build_object(
            'user', jsonb_build_object('id', lower(u.id::text), 'email', u.email, 'name', u.name, 'role', u.role,
                'institutionId', lower(u.institution_id::text),
                'createdAt', to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
            'institution', d.document || jsonb_build_object('id', lower(d.id::text), 'contacts', coalesce((
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
