-- 0004_identity.sql: institution profiles, network administrators, sessions, invitations, the mail
-- outbox, the audit log and sign-in throttling.
--
-- Row-level security stays the rule: every table here has it enabled and forced. Where the server
-- must find a row before it knows whose it is (signing in, resolving a bearer token, accepting an
-- invitation), it calls a narrow SECURITY DEFINER function owned by accord_owner; the owner's own
-- policies (TO accord_owner) let those functions work, and accord_app reaches the rows only through
-- them.

-- The profile.
ALTER TABLE institutions
    ADD COLUMN acronym            text CHECK (length(acronym) BETWEEN 1 AND 30),
    ADD COLUMN ror                text CHECK (ror ~ '^0[a-hj-km-np-tv-z0-9]{6}[0-9]{2}$'),
    ADD COLUMN erasmus_code       text CHECK (length(erasmus_code) BETWEEN 3 AND 20),
    ADD COLUMN founding_year      integer CHECK (founding_year BETWEEN 800 AND 2100),
    ADD COLUMN student_count      integer CHECK (student_count BETWEEN 0 AND 10000000),
    ADD COLUMN website            text CHECK (length(website) <= 500),
    ADD COLUMN description        text CHECK (length(description) <= 10000),
    -- [{"code": "0714", "strength": "strong" | "growing" | null}]
    ADD COLUMN subject_areas      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(subject_areas) = 'array'),
    -- [{"code": "en", "level": "C1"}]
    ADD COLUMN teaching_languages jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(teaching_languages) = 'array'),
    ADD COLUMN offers             text[] NOT NULL DEFAULT '{}',
    ADD COLUMN seeks              text[] NOT NULL DEFAULT '{}',
    ADD COLUMN services           text[] NOT NULL DEFAULT '{}',
    ADD COLUMN goals              text CHECK (length(goals) <= 5000),
    -- {"deadlines": [{"term": "…", "date": "…"}], "housingUrl": …, "visaUrl": …, "insuranceUrl": …}
    ADD COLUMN factsheet          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(factsheet) = 'object'),
    ADD COLUMN listed             boolean NOT NULL DEFAULT true,
    -- false for entries imported from the university list that no institution has claimed yet.
    ADD COLUMN claimed            boolean NOT NULL DEFAULT true,
    -- A registration whose SCHAC code is an unclaimed entry's: approving it merges into that entry.
    ADD COLUMN claim_of           uuid REFERENCES institutions (id) ON DELETE CASCADE,
    ADD COLUMN tier               text NOT NULL DEFAULT 'member' CHECK (tier IN ('member', 'partner', 'premium')),
    ADD COLUMN status_reason      text CHECK (length(status_reason) <= 2000),
    -- Bumped by every change; the ETag of the profile.
    ADD COLUMN version            integer NOT NULL DEFAULT 1;

-- A claim shares its SCHAC code with the entry it claims.
ALTER TABLE institutions DROP CONSTRAINT institutions_schac_key;
CREATE UNIQUE INDEX institutions_schac_key ON institutions (schac) WHERE claim_of IS NULL;
CREATE UNIQUE INDEX institutions_one_claim ON institutions (claim_of) WHERE claim_of IS NOT NULL AND status = 'pending';

-- Contacts are private to the institution.
CREATE TABLE institution_contacts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (length(role) BETWEEN 1 AND 100),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    position        integer NOT NULL DEFAULT 0
);
CREATE INDEX institution_contacts_institution_idx ON institution_contacts (institution_id);

-- Any signed-in member of the network reads the published profiles of active, listed institutions.
CREATE POLICY institutions_published ON institutions FOR SELECT
    USING (status = 'active' AND listed AND claim_of IS NULL AND accord_current_user() IS NOT NULL);

-- Platform users outside any institution.
CREATE TABLE network_admins (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX network_admins_email_key ON network_admins (lower(email));

-- Bearer sessions: only the SHA-256 of the token is stored.
CREATE TABLE sessions (
    token_hash      bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    admin_id        uuid REFERENCES network_admins (id) ON DELETE CASCADE,
    institution_id  uuid REFERENCES institutions (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    CHECK ((user_id IS NULL) <> (admin_id IS NULL)),
    CHECK ((user_id IS NULL) = (institution_id IS NULL))
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_admin_idx ON sessions (admin_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Invitations: single use, valid 7 days, token stored as its hash.
CREATE TABLE invitations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    role            text NOT NULL CHECK (role IN ('admin', 'staff', 'faculty')),
    token_hash      bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    invited_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX invitations_institution_idx ON invitations (institution_id, created_at DESC);

-- Outgoing mail, sent by a later worker.
CREATE TABLE mail_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id  uuid REFERENCES institutions (id) ON DELETE CASCADE,
    recipient       text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    subject         text NOT NULL CHECK (length(subject) <= 500),
    body            text NOT NULL CHECK (length(body) <= 100000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);

-- The audit log: appended to, never changed.
CREATE TABLE audit_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    action          text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    institution_id  uuid,
    actor_user_id   uuid,
    actor_admin_id  uuid,
    target_type     text,
    target_id       text,
    detail          jsonb NOT NULL DEFAULT '{}',
    client_address  text
);
CREATE INDEX audit_events_institution_idx ON audit_events (institution_id, id DESC);
CREATE INDEX audit_events_time_idx ON audit_events (id DESC);

CREATE FUNCTION accord_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION accord_audit_is_append_only();

-- Failed sign-ins per e-mail and per client address, in fixed windows.
CREATE TABLE sign_in_throttle (
    key           text PRIMARY KEY,
    failures      integer NOT NULL,
    window_start  timestamptz NOT NULL
);

-- Row-level security on every new table.
ALTER TABLE institution_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE institution_contacts FORCE ROW LEVEL SECURITY;
ALTER TABLE network_admins ENABLE ROW LEVEL SECURITY;
ALTER TABLE network_admins FORCE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
ALTER TABLE mail_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE mail_outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
ALTER TABLE sign_in_throttle ENABLE ROW LEVEL SECURITY;
ALTER TABLE sign_in_throttle FORCE ROW LEVEL SECURITY;

CREATE POLICY contacts_own_institution ON institution_contacts
    USING (institution_id = accord_current_institution()) WITH CHECK (institution_id = accord_current_institution());
CREATE POLICY contacts_network_admin ON institution_contacts
    USING (accord_is_network_admin()) WITH CHECK (accord_is_network_admin());

CREATE POLICY network_admins_self ON network_admins FOR SELECT
    USING (accord_is_network_admin() AND id = accord_current_user());

CREATE POLICY sessions_own ON sessions
    USING (coalesce(user_id, admin_id) = accord_current_user())
    WITH CHECK (coalesce(user_id, admin_id) = accord_current_user()
                AND (institution_id IS NULL OR institution_id = accord_current_institution()));

CREATE POLICY invitations_own_institution ON invitations
    USING (institution_id = accord_current_institution()) WITH CHECK (institution_id = accord_current_institution());

CREATE POLICY outbox_write ON mail_outbox FOR INSERT
    WITH CHECK (institution_id = accord_current_institution() OR accord_is_network_admin());
CREATE POLICY outbox_read ON mail_outbox FOR SELECT
    USING (institution_id = accord_current_institution() OR accord_is_network_admin());

CREATE POLICY audit_append ON audit_events FOR INSERT
    WITH CHECK (accord_is_network_admin() OR institution_id IS NOT DISTINCT FROM accord_current_institution());
CREATE POLICY audit_read ON audit_events FOR SELECT
    USING (accord_is_network_admin() OR (institution_id IS NOT NULL AND institution_id = accord_current_institution()));

-- The owner's policies: migrations, and the SECURITY DEFINER functions below, which run as the owner.
CREATE POLICY owner_all ON institutions TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON users TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON network_admins TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON sessions TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON invitations TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON audit_events TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON sign_in_throttle TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON institution_contacts TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON mail_outbox TO accord_owner USING (true) WITH CHECK (true);

-- Signing in: the account behind an e-mail address, whichever kind it is.
CREATE FUNCTION accord_sign_in_account(p_email text)
RETURNS TABLE (account_id uuid, is_admin boolean, institution_id uuid, institution_status text, password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id, false, u.institution_id, i.status, u.password_hash
    FROM users u JOIN institutions i ON i.id = u.institution_id
    WHERE lower(u.email) = lower(p_email)
    UNION ALL
    SELECT a.id, true, NULL, NULL, a.password_hash
    FROM network_admins a WHERE lower(a.email) = lower(p_email)
    LIMIT 1
$$;

-- Resolving a bearer token: the session's account, if the session is live and the institution may
-- still act (pending or active; not rejected or suspended).
-- PL/pgSQL rather than SQL: its plans are cached per session, and this runs on every request.
CREATE FUNCTION accord_authenticate(p_token_hash bytea)
RETURNS TABLE (account_id uuid, is_admin boolean, institution_id uuid, role text, institution_status text, expires_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT u.id, false, u.institution_id, u.role, i.status, s.expires_at
    FROM sessions s JOIN users u ON u.id = s.user_id JOIN institutions i ON i.id = u.institution_id
    WHERE s.token_hash = p_token_hash AND s.expires_at > now() AND i.status IN ('pending', 'active');
    IF NOT FOUND THEN
        RETURN QUERY
        SELECT a.id, true, NULL::uuid, 'network_admin'::text, NULL::text, s.expires_at
        FROM sessions s JOIN network_admins a ON a.id = s.admin_id
        WHERE s.token_hash = p_token_hash AND s.expires_at > now();
    END IF;
END
$$;

-- Throttling: seconds to wait before another attempt for any of the keys (0 when none is blocked).
CREATE FUNCTION accord_sign_in_wait(p_keys text[], p_limit integer, p_window interval)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(max(ceil(extract(epoch FROM (t.window_start + p_window - now()))))::integer, 0)
    FROM sign_in_throttle t
    WHERE t.key = ANY (p_keys) AND t.failures >= p_limit AND t.window_start + p_window > now()
$$;

CREATE FUNCTION accord_sign_in_failed(p_keys text[], p_window interval, p_email text, p_client text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k text;
    v_institution uuid;
BEGIN
    FOREACH k IN ARRAY p_keys LOOP
        INSERT INTO sign_in_throttle AS t (key, failures, window_start) VALUES (k, 1, now())
        ON CONFLICT (key) DO UPDATE
            SET failures = CASE WHEN t.window_start + p_window > now() THEN t.failures + 1 ELSE 1 END,
                window_start = CASE WHEN t.window_start + p_window > now() THEN t.window_start ELSE now() END;
    END LOOP;
    SELECT u.institution_id INTO v_institution FROM users u WHERE lower(u.email) = lower(p_email);
    INSERT INTO audit_events (action, institution_id, target_type, target_id, detail, client_address)
    VALUES ('session.sign_in_failed', v_institution, 'email', lower(p_email), '{}', p_client);
    DELETE FROM sign_in_throttle WHERE window_start < now() - p_window - interval '1 day';
END
$$;

CREATE FUNCTION accord_sign_in_succeeded(p_keys text[])
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DELETE FROM sign_in_throttle WHERE key = ANY (p_keys)
$$;

-- Accepting an invitation: the live invitation behind a token.
CREATE FUNCTION accord_invitation(p_token_hash bytea)
RETURNS TABLE (id uuid, institution_id uuid, email text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT v.id, v.institution_id, v.email, v.role FROM invitations v JOIN institutions i ON i.id = v.institution_id
    WHERE v.token_hash = p_token_hash AND v.accepted_at IS NULL AND v.revoked_at IS NULL AND v.expires_at > now()
      AND i.status IN ('pending', 'active')
$$;

-- Registering: whether an e-mail address is taken anywhere, and the unclaimed entry a SCHAC code
-- claims, if any (registration runs before the registrant has any context).
CREATE FUNCTION accord_email_taken(p_email text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(p_email))
        OR EXISTS (SELECT 1 FROM network_admins WHERE lower(email) = lower(p_email))
$$;

CREATE FUNCTION accord_schac_owner(p_schac text)
RETURNS TABLE (id uuid, claimed boolean, pending_claim boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.id, i.claimed,
           EXISTS (SELECT 1 FROM institutions c WHERE c.claim_of = i.id AND c.status = 'pending')
    FROM institutions i WHERE i.schac = lower(p_schac) AND i.claim_of IS NULL
$$;

REVOKE ALL ON FUNCTION accord_sign_in_account(text), accord_authenticate(bytea),
    accord_sign_in_wait(text[], integer, interval), accord_sign_in_failed(text[], interval, text, text),
    accord_sign_in_succeeded(text[]), accord_invitation(bytea), accord_email_taken(text),
    accord_schac_owner(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_sign_in_account(text), accord_authenticate(bytea),
    accord_sign_in_wait(text[], integer, interval), accord_sign_in_failed(text[], interval, text, text),
    accord_sign_in_succeeded(text[]), accord_invitation(bytea), accord_email_taken(text),
    accord_schac_owner(text) TO accord_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON institution_contacts, sessions, invitations TO accord_app;
GRANT SELECT ON network_admins TO accord_app;
GRANT SELECT, INSERT ON mail_outbox, audit_events TO accord_app;

-- The profile as the API shows it (public part). security_invoker: the caller's row-level security
-- applies, so the view shows exactly the rows the caller may see.
CREATE VIEW institution_documents WITH (security_invoker = true) AS
SELECT i.id, i.version, i.status,
       jsonb_build_object(
           'id', i.id, 'schac', i.schac, 'names', i.names, 'acronym', i.acronym, 'ror', i.ror,
           'erasmusCode', i.erasmus_code, 'country', i.country, 'city', i.city, 'type', i.type,
           'foundingYear', i.founding_year, 'studentCount', i.student_count, 'website', i.website,
           'description', i.description, 'subjectAreas', i.subject_areas,
           'teachingLanguages', i.teaching_languages, 'offers', to_jsonb(i.offers),
           'seeks', to_jsonb(i.seeks), 'services', to_jsonb(i.services), 'goals', i.goals,
           'factsheet', i.factsheet, 'listed', i.listed, 'claimed', i.claimed, 'status', i.status,
           'tier', i.tier, 'createdAt', i.created_at, 'updatedAt', i.updated_at
       ) AS document
FROM institutions i;
GRANT SELECT ON institution_documents TO accord_app;

-- The first network administrator, created by `accord serve` from ACCORD_ADMIN_EMAIL and
-- ACCORD_ADMIN_PASSWORD: only while there is none.
CREATE FUNCTION accord_bootstrap_network_admin(p_email text, p_name text, p_password_hash text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7411);
    IF EXISTS (SELECT 1 FROM network_admins) THEN
        RETURN false;
    END IF;
    INSERT INTO network_admins (email, name, password_hash) VALUES (p_email, p_name, p_password_hash);
    INSERT INTO audit_events (action, target_type, target_id, detail)
    VALUES ('network_admin.bootstrapped', 'email', lower(p_email), '{}');
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION accord_bootstrap_network_admin(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_bootstrap_network_admin(text, text, text) TO accord_app;
