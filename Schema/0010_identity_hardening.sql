-- 0010_identity_hardening.sql: one spelling of e-mail addresses, sign-in throttling that holds and
-- cannot be turned against users, registrations that prove their domain, invitations bound to their
-- inviter, and sessions their users can see and end.

-- E-mail addresses are compared by one key: the address with its ASCII letters in lower case and
-- nothing else changed. lower() depends on the database's locale and folds letters that are not the
-- same address ('İntl@…' is not 'intl@…').
CREATE FUNCTION accord_email_key(p_email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT pg_catalog.translate(p_email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
$$;

DROP INDEX users_email_key;
CREATE UNIQUE INDEX users_email_key ON users (accord_email_key(email));
DROP INDEX network_admins_email_key;
CREATE UNIQUE INDEX network_admins_email_key ON network_admins (accord_email_key(email));

CREATE OR REPLACE FUNCTION accord_email_taken(p_email text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM users WHERE accord_email_key(email) = accord_email_key(p_email))
        OR EXISTS (SELECT 1 FROM network_admins WHERE accord_email_key(email) = accord_email_key(p_email))
$$;

-- Sign-in throttling ------------------------------------------------------------------------------
--
-- Three counters, each a row of sign_in_throttle:
--   pair:<e-mail> <address>  every attempt for an e-mail from one client address, counted before the
--                            password is checked; over the limit the pair waits out its window.
--   email:<e-mail>           every attempt for the e-mail from anywhere, in a day; past a number of
--                            free attempts each further one waits 2^n seconds (up to a cap) after the
--                            last, except from an address this account signed in from before.
--   address:<address>        attempts for e-mail addresses that have no account; over the limit the
--                            address waits, except for accounts that signed in from it before.
-- A successful sign-in clears its own pair, gives back its own count on the e-mail, and makes its
-- address known; it clears nobody else's counter.
ALTER TABLE sign_in_throttle ADD COLUMN last_failure timestamptz;

CREATE TABLE sign_in_known_addresses (
    email_key     text NOT NULL,
    address       text NOT NULL,
    last_success  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_key, address)
);
ALTER TABLE sign_in_known_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE sign_in_known_addresses FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON sign_in_known_addresses TO accord_owner USING (true) WITH CHECK (true);

-- Counts one attempt on a counter with a window; returns the count and when the window started.
CREATE FUNCTION accord_throttle_count(p_key text, p_window interval, OUT failures integer, OUT window_start timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO sign_in_throttle AS t (key, failures, window_start, last_failure) VALUES (p_key, 1, now(), now())
    ON CONFLICT (key) DO UPDATE
        SET failures = CASE WHEN t.window_start + p_window > now() THEN t.failures + 1 ELSE 1 END,
            window_start = CASE WHEN t.window_start + p_window > now() THEN t.window_start ELSE now() END,
            last_failure = now()
    RETURNING t.failures, t.window_start
$$;

-- Seconds until a moment, at least 1.
CREATE FUNCTION accord_seconds_until(p_moment timestamptz) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT greatest(1, ceil(extract(epoch FROM p_moment - now())))::integer
$$;

-- Before a password is checked: counts the attempt and says whether it may go on (wait_seconds 0,
-- with the account behind the e-mail, if any) or must wait. One statement, so concurrent attempts
-- cannot pass the limit together: they queue on the counters' rows.
CREATE FUNCTION accord_sign_in_begin(
    p_email text, p_address text, p_pair_limit integer, p_address_limit integer, p_window interval,
    p_email_free integer, p_email_max_delay integer)
RETURNS TABLE (wait_seconds integer, account_id uuid, is_admin boolean, institution_id uuid, institution_status text,
               password_hash text, email text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_key text := accord_email_key(p_email);
    v_address text := coalesce(p_address, 'unknown');
    v_known boolean;
    v_failures integer;
    v_start timestamptz;
    v_last timestamptz;
    v_moment timestamptz;
BEGIN
    v_known := EXISTS (SELECT 1 FROM sign_in_known_addresses k WHERE k.email_key = v_key AND k.address = v_address);
    IF NOT v_known THEN
        SELECT t.failures, t.window_start INTO v_failures, v_start FROM sign_in_throttle t WHERE t.key = 'address:' || v_address;
        IF v_failures >= p_address_limit AND v_start + p_window > now() THEN
            RETURN QUERY SELECT accord_seconds_until(v_start + p_window), NULL::uuid, NULL::boolean, NULL::uuid, NULL::text, NULL::text, NULL::text;
            RETURN;
        END IF;
        -- The e-mail's row, locked until this statement ends.
        INSERT INTO sign_in_throttle AS t (key, failures, window_start) VALUES ('email:' || v_key, 0, now())
        ON CONFLICT (key) DO UPDATE SET key = t.key
        RETURNING t.failures, t.window_start, t.last_failure INTO v_failures, v_start, v_last;
        IF v_start + interval '1 day' > now() AND v_failures >= p_email_free AND v_last IS NOT NULL THEN
            v_moment := v_last + make_interval(secs => least(p_email_max_delay, power(2, least(v_failures - p_email_free, 30))));
            IF v_moment > now() THEN
                RETURN QUERY SELECT accord_seconds_until(v_moment), NULL::uuid, NULL::boolean, NULL::uuid, NULL::text, NULL::text, NULL::text;
                RETURN;
            END IF;
        END IF;
    END IF;
    SELECT c.failures, c.window_start INTO v_failures, v_start FROM accord_throttle_count('pair:' || v_key || ' ' || v_address, p_window) c;
    IF v_failures > p_pair_limit THEN
        RETURN QUERY SELECT accord_seconds_until(v_start + p_window), NULL::uuid, NULL::boolean, NULL::uuid, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    PERFORM accord_throttle_count('email:' || v_key, interval '1 day');
    RETURN QUERY
    SELECT 0, a.id, a.is_admin, a.institution_id, a.status, a.password_hash, a.email FROM (
        SELECT u.id, false AS is_admin, u.institution_id, i.status, u.password_hash, u.email
        FROM users u JOIN institutions i ON i.id = u.institution_id
        WHERE accord_email_key(u.email) = v_key
        UNION ALL
        SELECT n.id, true, NULL, NULL, n.password_hash, n.email
        FROM network_admins n WHERE accord_email_key(n.email) = v_key
        LIMIT 1) a;
    IF NOT FOUND THEN
        PERFORM accord_throttle_count('address:' || v_address, p_window);
        RETURN QUERY SELECT 0, NULL::uuid, NULL::boolean, NULL::uuid, NULL::text, NULL::text, NULL::text;
    END IF;
END
$$;

-- After the password was checked: a success clears its own pair, gives back its count on the
-- e-mail and makes the address known; a failure is written to the audit log.
CREATE FUNCTION accord_sign_in_end(p_email text, p_address text, p_succeeded boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_key text := accord_email_key(p_email);
    v_address text := coalesce(p_address, 'unknown');
    v_institution uuid;
BEGIN
    IF p_succeeded THEN
        DELETE FROM sign_in_throttle WHERE key = 'pair:' || v_key || ' ' || v_address;
        UPDATE sign_in_throttle SET failures = greatest(failures - 1, 0) WHERE key = 'email:' || v_key;
        INSERT INTO sign_in_known_addresses (email_key, address) VALUES (v_key, v_address)
        ON CONFLICT (email_key, address) DO UPDATE SET last_success = now();
    ELSE
        SELECT u.institution_id INTO v_institution FROM users u WHERE accord_email_key(u.email) = v_key;
        INSERT INTO audit_events (action, institution_id, target_type, target_id, detail, client_address)
        VALUES ('session.sign_in_failed', v_institution, 'email', v_key, '{}', p_address);
    END IF;
    DELETE FROM sign_in_throttle WHERE window_start < now() - interval '2 days';
    DELETE FROM sign_in_known_addresses WHERE last_success < now() - interval '180 days';
END
$$;

-- Registrations per client address: counts one and says how long to wait (0: go on).
CREATE FUNCTION accord_registration_wait(p_address text, p_limit integer, p_window interval)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN c.failures > p_limit THEN accord_seconds_until(c.window_start + p_window) ELSE 0 END
    FROM accord_throttle_count('register:' || coalesce(p_address, 'unknown'), p_window) c
$$;

-- A stored hash computed with other parameters than the server's, replaced after a successful
-- sign-in (only if it is still the hash that was checked).
CREATE FUNCTION accord_rehash_password(p_account uuid, p_is_admin boolean, p_old text, p_new text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_is_admin THEN
        UPDATE network_admins SET password_hash = p_new WHERE id = p_account AND password_hash = p_old;
    ELSE
        UPDATE users SET password_hash = p_new WHERE id = p_account AND password_hash = p_old;
    END IF;
END
$$;

DROP FUNCTION accord_sign_in_wait(text[], integer, interval);
DROP FUNCTION accord_sign_in_failed(text[], interval, text, text);
DROP FUNCTION accord_sign_in_succeeded(text[]);
DROP FUNCTION accord_sign_in_account(text);

-- Registrations and claims ------------------------------------------------------------------------
--
-- A SCHAC code belongs to at most one active or suspended institution. Pending and rejected
-- registrations hold none: several may name the same code (competing claims), and a rejection
-- frees it.
DROP INDEX institutions_one_claim;
DROP INDEX institutions_schac_key;
CREATE UNIQUE INDEX institutions_schac_key ON institutions (schac) WHERE claim_of IS NULL AND status IN ('active', 'suspended');
CREATE INDEX institutions_schac_idx ON institutions (schac);
CREATE INDEX institutions_claim_of_idx ON institutions (claim_of) WHERE claim_of IS NOT NULL;

-- The institution that holds a SCHAC code (active or suspended), if any; what a registration needs
-- to know to be a claim, a new institution, or a collision.
DROP FUNCTION accord_schac_owner(text);
CREATE FUNCTION accord_schac_owner(p_schac text)
RETURNS TABLE (id uuid, claimed boolean, published boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.id, i.claimed, i.status = 'active' AND i.listed
    FROM institutions i WHERE i.schac = lower(p_schac) AND i.claim_of IS NULL AND i.status IN ('active', 'suspended')
$$;

-- E-mail addresses are proven by a single-use link.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE email_verifications (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The address the link went to: it proves only that address.
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX email_verifications_user_idx ON email_verifications (user_id);
ALTER TABLE email_verifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_verifications FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON email_verifications TO accord_owner USING (true) WITH CHECK (true);
-- A verification is created for a user the caller can see (their own institution's).
CREATE POLICY email_verifications_own_institution ON email_verifications FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM users u WHERE u.id = user_id));
GRANT INSERT ON email_verifications TO accord_app;

-- Follows a verification link: marks the address verified, once, while the account still has it.
-- Returns the user and address, or no row.
CREATE FUNCTION accord_verify_email(p_token_hash bytea)
RETURNS TABLE (user_id uuid, email text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v record;
BEGIN
    UPDATE email_verifications e SET used_at = now()
    WHERE e.token_hash = p_token_hash AND e.used_at IS NULL AND e.expires_at > now()
    RETURNING e.user_id, e.email INTO v;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE users u SET email_verified_at = now()
    WHERE u.id = v.user_id AND accord_email_key(u.email) = accord_email_key(v.email)
    RETURNING u.id, u.email;
END
$$;

-- Whether an e-mail address is at a SCHAC domain or one of its subdomains.
CREATE FUNCTION accord_email_at_domain(p_email text, p_domain text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT d = p_domain OR right(d, length(p_domain) + 1) = '.' || p_domain
    FROM (SELECT accord_email_key(split_part(p_email, '@', 2)) AS d) x
$$;

-- Approving a claim moves the registrant's users, sessions, invitations, contacts and unsent mail
-- to the entry claimed, then removes the registration. Those rows are other tenants' to row-level
-- security, so this runs as the owner, for network administrators only.
CREATE FUNCTION accord_merge_claim(p_claim uuid, p_entry uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT accord_is_network_admin() THEN
        RAISE EXCEPTION 'only network administrators merge claims' USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE users SET institution_id = p_entry WHERE institution_id = p_claim;
    UPDATE sessions SET institution_id = p_entry WHERE institution_id = p_claim;
    UPDATE invitations SET institution_id = p_entry WHERE institution_id = p_claim;
    UPDATE institution_contacts SET institution_id = p_entry WHERE institution_id = p_claim;
    UPDATE mail_outbox SET institution_id = p_entry WHERE institution_id = p_claim;
    DELETE FROM institutions WHERE id = p_claim;
END
$$;

-- Invitations -------------------------------------------------------------------------------------
--
-- An invitation is good only while its inviter is still an admin of the institution and the
-- institution is active.
CREATE OR REPLACE FUNCTION accord_invitation(p_token_hash bytea)
RETURNS TABLE (id uuid, institution_id uuid, email text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT v.id, v.institution_id, v.email, v.role FROM invitations v JOIN institutions i ON i.id = v.institution_id
    WHERE v.token_hash = p_token_hash AND v.accepted_at IS NULL AND v.revoked_at IS NULL AND v.expires_at > now()
      AND i.status = 'active'
      AND EXISTS (SELECT 1 FROM users u WHERE u.id = v.invited_by AND u.institution_id = v.institution_id AND u.role = 'admin')
$$;

-- Sessions ----------------------------------------------------------------------------------------
--
-- Each session has an id its user can name (to end it) and the time it was last used (to the
-- minute).
ALTER TABLE sessions
    ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN last_used_at timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX sessions_id_key ON sessions (id);

-- Only a change to what a session resolves to tells the servers to forget it; its last use does not.
CREATE FUNCTION accord_sessions_updated()
RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.expires_at > now()
          AND (o.token_hash, o.user_id, o.admin_id, o.institution_id, o.expires_at)
              IS DISTINCT FROM (n.token_hash, n.user_id, n.admin_id, n.institution_id, n.expires_at))
    THEN
        PERFORM pg_notify('accord_identity', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER sessions_identity_updated ON sessions;
CREATE TRIGGER sessions_identity_updated AFTER UPDATE ON sessions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accord_sessions_updated();

-- Notes that a session was used, at most once a minute.
CREATE FUNCTION accord_touch_session(p_token_hash bytea)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE sessions SET last_used_at = now() WHERE token_hash = p_token_hash AND last_used_at < now() - interval '1 minute'
$$;

-- Network administrators change their own password.
CREATE POLICY network_admins_self_update ON network_admins FOR UPDATE
    USING (accord_is_network_admin() AND id = accord_current_user())
    WITH CHECK (accord_is_network_admin() AND id = accord_current_user());
GRANT UPDATE (password_hash) ON network_admins TO accord_app;

REVOKE ALL ON FUNCTION accord_throttle_count(text, interval), accord_seconds_until(timestamptz),
    accord_sign_in_begin(text, text, integer, integer, interval, integer, integer), accord_sign_in_end(text, text, boolean),
    accord_registration_wait(text, integer, interval), accord_rehash_password(uuid, boolean, text, text),
    accord_schac_owner(text), accord_verify_email(bytea), accord_merge_claim(uuid, uuid), accord_sessions_updated(),
    accord_touch_session(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_sign_in_begin(text, text, integer, integer, interval, integer, integer),
    accord_sign_in_end(text, text, boolean), accord_registration_wait(text, integer, interval),
    accord_rehash_password(uuid, boolean, text, text), accord_schac_owner(text), accord_verify_email(bytea),
    accord_merge_claim(uuid, uuid), accord_touch_session(bytea) TO accord_app;
