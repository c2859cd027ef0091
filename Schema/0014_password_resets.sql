-- 0014_password_resets.sql: a forgotten password is replaced through a single-use link, valid one
-- hour, mailed to the account's address; only the SHA-256 of the link's token is stored. Both
-- steps are functions with the owner's rights, called without a tenant context (the caller is
-- not signed in): the table itself is no one's to read.

CREATE TABLE password_resets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    admin_id    uuid REFERENCES network_admins (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK ((user_id IS NULL) <> (admin_id IS NULL))
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id, created_at);
CREATE INDEX password_resets_admin_idx ON password_resets (admin_id, created_at);
ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_resets FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON password_resets TO accord_owner USING (true) WITH CHECK (true);

-- Asks for a reset of the account with this address, if there is one: stores the token's hash
-- and puts the mail (whose body carries the link) in the outbox. Nothing is said either way. At
-- most three links an hour per account; an account of an institution that is not active gets none.
CREATE FUNCTION accord_request_password_reset(p_email text, p_token_hash bytea, p_expires timestamptz, p_subject text, p_body text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_user record;
    v_admin record;
BEGIN
    SELECT u.id, u.email, u.institution_id INTO v_user FROM users u JOIN institutions i ON i.id = u.institution_id
    WHERE accord_email_key(u.email) = accord_email_key(p_email) AND i.status IN ('active', 'pending');
    IF FOUND THEN
        IF (SELECT count(*) FROM password_resets WHERE user_id = v_user.id AND created_at > now() - interval '1 hour') >= 3 THEN
            RETURN;
        END IF;
        INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES (v_user.id, p_token_hash, p_expires);
        INSERT INTO mail_outbox (institution_id, recipient, subject, body) VALUES (v_user.institution_id, v_user.email, p_subject, p_body);
        INSERT INTO audit_events (action, institution_id, actor_user_id, target_type, target_id)
        VALUES ('account.password_reset_requested', v_user.institution_id, v_user.id, 'user', v_user.id::text);
        RETURN;
    END IF;
    SELECT a.id, a.email INTO v_admin FROM network_admins a WHERE accord_email_key(a.email) = accord_email_key(p_email);
    IF FOUND THEN
        IF (SELECT count(*) FROM password_resets WHERE admin_id = v_admin.id AND created_at > now() - interval '1 hour') >= 3 THEN
            RETURN;
        END IF;
        INSERT INTO password_resets (admin_id, token_hash, expires_at) VALUES (v_admin.id, p_token_hash, p_expires);
        INSERT INTO mail_outbox (institution_id, recipient, subject, body) VALUES (NULL, v_admin.email, p_subject, p_body);
        INSERT INTO audit_events (action, actor_admin_id, target_type, target_id)
        VALUES ('account.password_reset_requested', v_admin.id, 'network_admin', v_admin.id::text);
    END IF;
END
$$;

-- Follows a reset link: once, within its hour, sets the new password (hashed by the server) and
-- ends every session of the account. Whether it did.
CREATE FUNCTION accord_use_password_reset(p_token_hash bytea, p_password_hash text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v record;
BEGIN
    UPDATE password_resets r SET used_at = now()
    WHERE r.token_hash = p_token_hash AND r.used_at IS NULL AND r.expires_at > now()
    RETURNING r.user_id, r.admin_id INTO v;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v.user_id IS NOT NULL THEN
        UPDATE users SET password_hash = p_password_hash, updated_at = now() WHERE id = v.user_id;
        DELETE FROM sessions WHERE user_id = v.user_id;
        -- Other links of the account end too.
        UPDATE password_resets SET used_at = now() WHERE user_id = v.user_id AND used_at IS NULL;
        INSERT INTO audit_events (action, institution_id, actor_user_id, target_type, target_id)
        SELECT 'account.password_reset', u.institution_id, u.id, 'user', u.id::text FROM users u WHERE u.id = v.user_id;
    ELSE
        UPDATE network_admins SET password_hash = p_password_hash WHERE id = v.admin_id;
        DELETE FROM sessions WHERE admin_id = v.admin_id;
        UPDATE password_resets SET used_at = now() WHERE admin_id = v.admin_id AND used_at IS NULL;
        INSERT INTO audit_events (action, actor_admin_id, target_type, target_id)
        VALUES ('account.password_reset', v.admin_id, 'network_admin', v.admin_id::text);
    END IF;
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION accord_request_password_reset(text, bytea, timestamptz, text, text), accord_use_password_reset(bytea, text) TO accord_app;
