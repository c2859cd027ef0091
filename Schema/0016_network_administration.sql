-- 0016_network_administration.sql: the tiers a network defines; network administrators who add
-- and remove each other (never the last one); their second factor, TOTP (RFC 6238) with
-- single-use recovery codes stored hashed; administrator sessions that end after 8 hours idle;
-- and the sign-in throttles, which administrators can see and clear.

-- Tiers ------------------------------------------------------------------------------------------
-- The network's own vocabulary of membership tiers (it starts with the three it always had); an
-- institution's tier is one of them.
CREATE TABLE tiers (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tiers (code, label) VALUES ('member', 'Member'), ('partner', 'Partner'), ('premium', 'Premium');
ALTER TABLE tiers ENABLE ROW LEVEL SECURITY;
ALTER TABLE tiers FORCE ROW LEVEL SECURITY;
CREATE POLICY tiers_read ON tiers FOR SELECT USING (true);
CREATE POLICY tiers_network_admin ON tiers FOR INSERT WITH CHECK (accord_is_network_admin());
CREATE POLICY owner_all ON tiers TO accord_owner USING (true) WITH CHECK (true);
GRANT SELECT, INSERT ON tiers TO accord_app;

ALTER TABLE institutions DROP CONSTRAINT institutions_tier_check;
ALTER TABLE institutions ADD CONSTRAINT institutions_tier_fkey FOREIGN KEY (tier) REFERENCES tiers (code);

-- Network administrators -------------------------------------------------------------------------
-- The guard of every function below that only administrators may call.
CREATE FUNCTION accord_require_network_admin() RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT accord_is_network_admin() THEN
        RAISE EXCEPTION 'network administrators only' USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- Every administrator sees the others (never their secrets: the columns below are read through
-- functions with the owner's rights only).
CREATE POLICY network_admins_admin_read ON network_admins FOR SELECT USING (accord_is_network_admin());
REVOKE SELECT ON network_admins FROM accord_app;
GRANT SELECT (id, email, name, password_hash, created_at) ON network_admins TO accord_app;

ALTER TABLE network_admins
    ADD COLUMN totp_secret      bytea CHECK (totp_secret IS NULL OR length(totp_secret) = 20),
    ADD COLUMN totp_enabled_at  timestamptz,
    ADD COLUMN totp_last_step   bigint NOT NULL DEFAULT 0,
    ADD CHECK (totp_enabled_at IS NULL OR totp_secret IS NOT NULL);

-- Adds a network administrator, without a password (it is chosen through the link mailed with the
-- welcome, a password reset valid `p_expires`). NULL when the address already has an account.
CREATE FUNCTION accord_create_network_admin(
    p_email text, p_name text, p_token_hash bytea, p_expires timestamptz, p_subject text, p_body text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id uuid;
BEGIN
    PERFORM accord_require_network_admin();
    IF accord_email_taken(p_email) THEN
        RETURN NULL;
    END IF;
    INSERT INTO network_admins (email, name, password_hash) VALUES (p_email, p_name, '!') RETURNING id INTO v_id;
    INSERT INTO password_resets (admin_id, token_hash, expires_at) VALUES (v_id, p_token_hash, p_expires);
    INSERT INTO mail_outbox (recipient, subject, body) VALUES (p_email, p_subject, p_body);
    INSERT INTO audit_events (action, actor_admin_id, target_type, target_id, detail)
    VALUES ('network_admin.created', accord_current_user(), 'network_admin', v_id::text, jsonb_build_object('email', p_email));
    RETURN v_id;
END
$$;

-- Removes a network administrator (their sessions end with them): 'removed', 'missing', or 'last'
-- when it would leave the network without one. Administrators are counted under a lock, so two
-- removals at once cannot remove the last two.
CREATE FUNCTION accord_remove_network_admin(p_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_email text;
BEGIN
    PERFORM accord_require_network_admin();
    LOCK TABLE network_admins IN SHARE ROW EXCLUSIVE MODE;
    SELECT email INTO v_email FROM network_admins WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    IF (SELECT count(*) FROM network_admins) <= 1 THEN
        RETURN 'last';
    END IF;
    DELETE FROM network_admins WHERE id = p_id;
    INSERT INTO audit_events (action, actor_admin_id, target_type, target_id, detail)
    VALUES ('network_admin.removed', accord_current_user(), 'network_admin', p_id::text, jsonb_build_object('email', v_email));
    RETURN 'removed';
END
$$;

-- The network's administrators, with whether each has a second factor.
CREATE FUNCTION accord_network_admins()
RETURNS TABLE (id uuid, email text, name text, created_at timestamptz, second_factor boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM accord_require_network_admin();
    RETURN QUERY SELECT a.id, a.email, a.name, a.created_at, a.totp_enabled_at IS NOT NULL FROM network_admins a
    ORDER BY a.created_at, a.id;
END
$$;

-- Second factor ----------------------------------------------------------------------------------
CREATE TABLE network_admin_recovery_codes (
    admin_id    uuid NOT NULL REFERENCES network_admins (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL CHECK (length(code_hash) = 32),
    used_at     timestamptz,
    PRIMARY KEY (admin_id, code_hash)
);
ALTER TABLE network_admin_recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE network_admin_recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON network_admin_recovery_codes TO accord_owner USING (true) WITH CHECK (true);

-- Starts (or restarts) the caller's enrolment with a new secret; false when a second factor is
-- already enabled (it must be turned off first).
CREATE FUNCTION accord_totp_begin(p_secret bytea)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM accord_require_network_admin();
    UPDATE network_admins SET totp_secret = p_secret, totp_last_step = 0
    WHERE id = accord_current_user() AND totp_enabled_at IS NULL;
    RETURN FOUND;
END
$$;

-- An administrator's second factor: the secret, whether it is enabled, the last time step used.
CREATE FUNCTION accord_totp_state(p_admin uuid, OUT secret bytea, OUT enabled boolean, OUT last_step bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.totp_secret, a.totp_enabled_at IS NOT NULL, a.totp_last_step FROM network_admins a WHERE a.id = p_admin
$$;

-- Uses a time step of an administrator's code: true only the first time a step at least as late
-- as every earlier one is used (a code cannot be replayed).
CREATE FUNCTION accord_totp_use_step(p_admin uuid, p_step bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE network_admins SET totp_last_step = p_step WHERE id = p_admin AND totp_last_step < p_step AND totp_secret IS NOT NULL;
    RETURN FOUND;
END
$$;

-- Enables the caller's pending second factor (its code was checked) with new recovery codes.
CREATE FUNCTION accord_totp_enable(p_code_hashes bytea[])
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM accord_require_network_admin();
    UPDATE network_admins SET totp_enabled_at = now()
    WHERE id = accord_current_user() AND totp_secret IS NOT NULL AND totp_enabled_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM network_admin_recovery_codes WHERE admin_id = accord_current_user();
    INSERT INTO network_admin_recovery_codes (admin_id, code_hash) SELECT accord_current_user(), h FROM unnest(p_code_hashes) h;
    INSERT INTO audit_events (action, actor_admin_id, target_type, target_id)
    VALUES ('network_admin.second_factor_enabled', accord_current_user(), 'network_admin', accord_current_user()::text);
    RETURN true;
END
$$;

-- Turns the caller's second factor off (the caller proved it with a code first).
CREATE FUNCTION accord_totp_disable()
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM accord_require_network_admin();
    UPDATE network_admins SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = 0 WHERE id = accord_current_user();
    DELETE FROM network_admin_recovery_codes WHERE admin_id = accord_current_user();
    INSERT INTO audit_events (action, actor_admin_id, target_type, target_id)
    VALUES ('network_admin.second_factor_disabled', accord_current_user(), 'network_admin', accord_current_user()::text);
END
$$;

-- Uses one of an administrator's recovery codes: true the first time only.
CREATE FUNCTION accord_use_recovery_code(p_admin uuid, p_code_hash bytea)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE network_admin_recovery_codes SET used_at = now() WHERE admin_id = p_admin AND code_hash = p_code_hash AND used_at IS NULL;
    IF FOUND THEN
        INSERT INTO audit_events (action, actor_admin_id, target_type, target_id)
        VALUES ('network_admin.recovery_code_used', p_admin, 'network_admin', p_admin::text);
    END IF;
    RETURN FOUND;
END
$$;

-- A wrong second factor after a right password is written to the audit log. The attempt stays
-- counted (accord_sign_in_begin counted it; the success that would give it back is not recorded),
-- so codes cannot be guessed faster than passwords.
CREATE FUNCTION accord_second_factor_failed(p_email text, p_address text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO audit_events (action, target_type, target_id, client_address)
    VALUES ('session.second_factor_failed', 'email', accord_email_key(p_email), p_address)
$$;

-- Idle administrator sessions --------------------------------------------------------------------
-- A session with an idle timeout expires that long after its last recorded use, and never after
-- `ends_at`; each recorded use (at most one a minute) moves its expiry on.
ALTER TABLE sessions ADD COLUMN idle_timeout interval, ADD COLUMN ends_at timestamptz;

CREATE OR REPLACE FUNCTION accord_touch_session(p_token_hash bytea)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE sessions
    SET last_used_at = now(),
        expires_at = CASE WHEN idle_timeout IS NULL THEN expires_at ELSE least(ends_at, now() + idle_timeout) END
    WHERE token_hash = p_token_hash AND last_used_at < now() - interval '1 minute' AND expires_at > now()
$$;

-- Throttles --------------------------------------------------------------------------------------
-- The sign-in and registration counters (Schema/0010) with failures in the last day, by key, for
-- administrators.
CREATE FUNCTION accord_sign_in_throttles(p_after text, p_limit integer)
RETURNS TABLE (key text, failures integer, window_start timestamptz, last_failure timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM accord_require_network_admin();
    RETURN QUERY SELECT t.key, t.failures, t.window_start, t.last_failure FROM sign_in_throttle t
    WHERE t.failures > 0 AND t.window_start > now() - interval '1 day' AND (p_after IS NULL OR t.key > p_after)
    ORDER BY t.key LIMIT p_limit;
END
$$;

-- Clears the counters of an e-mail address (its own and its pairs), of a client address (its own,
-- its registrations' and its pairs), or of both together (their pair only, when both are given).
-- The count cleared.
CREATE FUNCTION accord_clear_sign_in_throttles(p_email text, p_address text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_key text := accord_email_key(p_email);
    v_count integer;
BEGIN
    PERFORM accord_require_network_admin();
    IF p_email IS NOT NULL AND p_address IS NOT NULL THEN
        DELETE FROM sign_in_throttle WHERE key = 'pair:' || v_key || ' ' || p_address;
    ELSIF p_email IS NOT NULL THEN
        DELETE FROM sign_in_throttle
        WHERE key = 'email:' || v_key OR (starts_with(key, 'pair:' || v_key || ' ') AND position(' ' IN substr(key, length(v_key) + 7)) = 0);
    ELSE
        DELETE FROM sign_in_throttle
        WHERE key IN ('address:' || p_address, 'register:' || p_address)
           OR (starts_with(key, 'pair:') AND right(key, length(p_address) + 1) = ' ' || p_address);
    END IF;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO audit_events (action, actor_admin_id, target_type, target_id, detail)
    VALUES ('throttle.cleared', accord_current_user(), 'throttle', coalesce(v_key, p_address),
            jsonb_strip_nulls(jsonb_build_object('email', v_key, 'address', p_address, 'cleared', v_count::text)));
    RETURN v_count;
END
$$;

REVOKE ALL ON FUNCTION accord_create_network_admin(text, text, bytea, timestamptz, text, text), accord_remove_network_admin(uuid),
    accord_network_admins(), accord_totp_begin(bytea), accord_totp_state(uuid), accord_totp_use_step(uuid, bigint),
    accord_totp_enable(bytea[]), accord_totp_disable(), accord_use_recovery_code(uuid, bytea),
    accord_second_factor_failed(text, text), accord_sign_in_throttles(text, integer),
    accord_clear_sign_in_throttles(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_create_network_admin(text, text, bytea, timestamptz, text, text), accord_remove_network_admin(uuid),
    accord_network_admins(), accord_totp_begin(bytea), accord_totp_state(uuid), accord_totp_use_step(uuid, bigint),
    accord_totp_enable(bytea[]), accord_totp_disable(), accord_use_recovery_code(uuid, bytea),
    accord_second_factor_failed(text, text), accord_sign_in_throttles(text, integer),
    accord_clear_sign_in_throttles(text, text) TO accord_app;
