-- 0018_webhooks.sql: the activity outbox goes out: the admins of the institution an event concerns
-- get a mail about it, and an institution's admins register endpoints that receive, signed, each event
-- of the activity outbox that concerns the institution (partnership_activity: ids only, as EWP's
-- change notifications; the receiver fetches the rest with its own credentials).
--
-- The dispatcher copies each undelivered activity row into one delivery per matching endpoint (and
-- mails), and marks the row delivered, in one transaction (FOR UPDATE SKIP LOCKED: instances share the work).
-- A delivery is leased for two minutes while it is POSTed (so other instances skip it, and a
-- crashed instance's lease runs out), then marked delivered, or tried again with backoff (30 s,
-- doubling up to two hours: about a day over 16 attempts), after which it fails and its endpoint
-- is marked failing (until a delivery succeeds again or the secret is rotated).

CREATE TABLE webhooks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (length(url) BETWEEN 9 AND 2000),
    events          text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 20),
    -- The HMAC-SHA-256 key: read only by the owner's functions (the server's role cannot select it).
    secret          bytea NOT NULL CHECK (length(secret) = 32),
    failing_since   timestamptz,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_institution_idx ON webhooks (institution_id, created_at);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    institution_id   uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL,
    kind             text NOT NULL,
    payload          jsonb NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    failed_at        timestamptz,
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, id) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON webhooks TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON webhook_deliveries TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY webhooks_own ON webhooks
    USING (institution_id = accord_current_institution()) WITH CHECK (institution_id = accord_current_institution());
CREATE POLICY webhook_deliveries_own ON webhook_deliveries FOR SELECT USING (institution_id = accord_current_institution());
GRANT SELECT (id, institution_id, url, events, failing_since, created_by, created_at), INSERT, DELETE ON webhooks TO accord_app;
GRANT UPDATE (secret, failing_since) ON webhooks TO accord_app;
GRANT SELECT ON webhook_deliveries TO accord_app;

-- Whether an event kind is one an endpoint asked for: '*', a family ('partnership.*') or the kind.
CREATE FUNCTION accord_webhook_wants(p_events text[], p_kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(p_events) e
                   WHERE e = '*' OR e = p_kind OR (right(e, 2) = '.*' AND starts_with(p_kind, left(e, length(e) - 1))))
$$;

-- What an event kind says in a mail to the institution it concerns (NULL: no mail for it).
CREATE FUNCTION accord_activity_mail_line(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_kind
        WHEN 'partnership.proposed' THEN 'sent your institution a message of intent'
        WHEN 'partnership.accepted' THEN 'accepted your message of intent'
        WHEN 'partnership.declined' THEN 'declined your message of intent'
        WHEN 'partnership.withdrawn' THEN 'withdrew its message of intent'
        WHEN 'partnership.activated' THEN 'approved the agreement: the partnership is active'
        WHEN 'partnership.terminated' THEN 'terminated the partnership'
        WHEN 'partnership.expired' THEN 'is no longer your partner: the agreement expired'
        WHEN 'agreement.drafted' THEN 'drafted a new version of the agreement'
        WHEN 'agreement.renewal_drafted' THEN 'drafted a renewal of the agreement'
        WHEN 'agreement.approved' THEN 'approved a version of the agreement'
        WHEN 'meeting.planned' THEN 'planned a meeting'
        END
$$;

-- Takes up to p_limit undelivered activity rows: one delivery per endpoint that wants each, one
-- mail per admin of the institution it concerns (for the kinds that say something to people,
-- linking to p_base_url), and the rows marked delivered. How many rows it took.
CREATE FUNCTION accord_activity_dispatch(p_limit integer, p_base_url text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_count integer;
BEGIN
    WITH taken AS (
        SELECT a.id, a.institution_id, a.partnership_id, a.kind, a.actor_institution_id, a.at
        FROM partnership_activity a WHERE a.delivered_at IS NULL
        ORDER BY a.id LIMIT p_limit FOR UPDATE SKIP LOCKED
    ), queued AS (
        INSERT INTO webhook_deliveries (webhook_id, institution_id, event_id, kind, payload)
        SELECT w.id, t.institution_id, t.id, t.kind,
               jsonb_build_object('id', t.id::text, 'kind', t.kind,
                   'occurredAt', to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'institution', lower(t.institution_id::text), 'partnership', lower(t.partnership_id::text),
                   'actor', lower(t.actor_institution_id::text))
        FROM taken t JOIN webhooks w ON w.institution_id = t.institution_id AND accord_webhook_wants(w.events, t.kind)
        ON CONFLICT (webhook_id, event_id) DO NOTHING
    ), mailed AS (
        INSERT INTO mail_outbox (institution_id, recipient, subject, body)
        SELECT t.institution_id, u.email,
               left('Accord: ' || coalesce(o.names->0->>'value', o.schac) || ' ' || accord_activity_mail_line(t.kind), 200),
               coalesce(o.names->0->>'value', o.schac) || ' ' || accord_activity_mail_line(t.kind) || E'.\n\n'
                   || 'See the partnership on Accord: ' || p_base_url || '/partnerships/' || lower(t.partnership_id::text) || E'\n'
        FROM taken t
        JOIN institutions o ON o.id = t.actor_institution_id
        JOIN users u ON u.institution_id = t.institution_id AND u.role = 'admin' AND u.disabled_at IS NULL
        WHERE accord_activity_mail_line(t.kind) IS NOT NULL
    ), marked AS (
        UPDATE partnership_activity a SET delivered_at = now() FROM taken t WHERE a.id = t.id RETURNING 1
    )
    SELECT count(*) INTO v_count FROM marked;
    RETURN v_count;
END
$$;

-- Leases up to p_limit due deliveries for p_lease (others skip them meanwhile): what to POST.
CREATE FUNCTION accord_webhook_deliveries_lease(p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, webhook_id uuid, url text, secret bytea, payload jsonb, attempts integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.id LIMIT p_limit FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE webhook_deliveries d SET next_attempt_at = now() + p_lease FROM due WHERE d.id = due.id
        RETURNING d.id, d.webhook_id, d.payload, d.attempts
    )
    SELECT l.id, l.webhook_id, w.url, w.secret, l.payload, l.attempts FROM leased l JOIN webhooks w ON w.id = l.webhook_id
$$;

-- The outcome of a POST: delivered (2xx), or another attempt later, or failed for good (the
-- endpoint is then marked failing).
CREATE FUNCTION accord_webhook_delivery_done(p_id bigint, p_status integer, p_error text, p_max_attempts integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_webhook uuid;
    v_failed boolean;
BEGIN
    IF p_status BETWEEN 200 AND 299 THEN
        UPDATE webhook_deliveries SET delivered_at = now(), attempts = attempts + 1, last_status = p_status, last_error = NULL
        WHERE id = p_id RETURNING webhook_id INTO v_webhook;
        UPDATE webhooks SET failing_since = NULL WHERE id = v_webhook AND failing_since IS NOT NULL;
        RETURN;
    END IF;
    UPDATE webhook_deliveries
    SET attempts = attempts + 1, last_status = p_status, last_error = left(p_error, 500),
        next_attempt_at = now() + least(interval '2 hours', interval '30 seconds' * power(2, least(attempts, 20))),
        failed_at = CASE WHEN attempts + 1 >= p_max_attempts THEN now() END
    WHERE id = p_id RETURNING webhook_id, failed_at IS NOT NULL INTO v_webhook, v_failed;
    IF v_failed THEN
        UPDATE webhooks SET failing_since = coalesce(failing_since, now()) WHERE id = v_webhook;
    END IF;
END
$$;

-- A new secret for an endpoint of the caller's institution (its admins only: checked by the
-- server); whether the endpoint exists.
CREATE FUNCTION accord_webhook_set_secret(p_id uuid, p_secret bytea)
RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = public, pg_temp AS $$
    WITH changed AS (UPDATE webhooks SET secret = p_secret, failing_since = NULL WHERE id = p_id RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM changed)
$$;

REVOKE ALL ON FUNCTION accord_activity_dispatch(integer, text), accord_webhook_deliveries_lease(integer, interval),
    accord_webhook_delivery_done(bigint, integer, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_activity_dispatch(integer, text), accord_webhook_deliveries_lease(integer, interval),
    accord_webhook_delivery_done(bigint, integer, text, integer), accord_webhook_set_secret(uuid, bytea),
    accord_webhook_wants(text[], text) TO accord_app;
