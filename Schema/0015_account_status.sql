-- 0015_account_status.sql: network administrators disable and enable user accounts. A disabled
-- account cannot sign in, and disabling ends its sessions (and so its sockets, which every
-- instance rechecks when sessions change); nothing else of it changes.

ALTER TABLE users ADD COLUMN disabled_at timestamptz;

-- Whether the account is disabled (sign-in asks before it makes a session).
CREATE FUNCTION accord_account_disabled(p_user uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT u.disabled_at IS NOT NULL FROM users u WHERE u.id = p_user), false)
$$;

-- Disables (ending every session) or enables a user account; network administrators only.
-- Whether the account exists.
CREATE FUNCTION accord_set_account_disabled(p_user uuid, p_disabled boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_institution uuid;
BEGIN
    IF NOT accord_is_network_admin() THEN
        RAISE EXCEPTION 'network administrators only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE users SET disabled_at = CASE WHEN p_disabled THEN coalesce(disabled_at, now()) END, updated_at = now()
    WHERE id = p_user RETURNING institution_id INTO v_institution;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_disabled THEN
        DELETE FROM sessions WHERE user_id = p_user;
        UPDATE password_resets SET used_at = now() WHERE user_id = p_user AND used_at IS NULL;
    END IF;
    INSERT INTO audit_events (action, institution_id, actor_admin_id, target_type, target_id)
    VALUES (CASE WHEN p_disabled THEN 'account.disabled' ELSE 'account.enabled' END, v_institution,
            nullif(current_setting('accord.user_id', true), '')::uuid, 'user', p_user::text);
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION accord_account_disabled(uuid), accord_set_account_disabled(uuid, boolean) TO accord_app;
