-- 0017_outbox_delivery.sql: mail leaves the outbox by SMTP. Each instance takes the mail that is
-- due with FOR UPDATE SKIP LOCKED in a transaction it holds while it sends, so two instances never
-- send the same mail at once; a mail is marked sent only after the server accepted it (at least
-- once: a crash in between sends it again, with the same Message-ID). A failure waits 30 s, then
-- twice as long each time up to an hour, about a day in all (30 attempts), or stops at once when
-- the server refused the mail for good (5xx); either way the mail stays, with its last error.

ALTER TABLE mail_outbox
    ADD COLUMN attempts         integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error       text,
    ADD COLUMN failed_at        timestamptz;
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;

-- The mail due now, locked until the caller's transaction ends (others skip it).
CREATE FUNCTION accord_mail_due(p_limit integer)
RETURNS TABLE (id bigint, recipient text, subject text, body text, attempts integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.id, m.recipient, m.subject, m.body, m.attempts FROM mail_outbox m
    WHERE m.sent_at IS NULL AND m.failed_at IS NULL AND m.next_attempt_at <= now()
    ORDER BY m.next_attempt_at, m.id LIMIT p_limit
    FOR UPDATE SKIP LOCKED
$$;

CREATE FUNCTION accord_mail_sent(p_id bigint)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE mail_outbox SET sent_at = now(), last_error = NULL WHERE id = p_id
$$;

-- A failed attempt: the next one later, or none when the refusal is permanent or the attempts are
-- spent.
CREATE FUNCTION accord_mail_failed(p_id bigint, p_error text, p_permanent boolean, p_max_attempts integer)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE mail_outbox
    SET attempts = attempts + 1, last_error = left(p_error, 500),
        next_attempt_at = now() + least(interval '1 hour', interval '30 seconds' * power(2, least(attempts, 20))),
        failed_at = CASE WHEN p_permanent OR attempts + 1 >= p_max_attempts THEN now() END
    WHERE id = p_id
$$;

-- For metrics: mail waiting to go, the age of the oldest, mail whose last attempt failed, mail
-- given up on.
CREATE FUNCTION accord_mail_outbox_stats(OUT pending bigint, OUT oldest_seconds double precision, OUT failing bigint, OUT abandoned bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL),
           coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL)), 0)::double precision,
           count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL AND attempts > 0),
           count(*) FILTER (WHERE failed_at IS NOT NULL)
    FROM mail_outbox WHERE sent_at IS NULL
$$;

REVOKE ALL ON FUNCTION accord_mail_due(integer), accord_mail_sent(bigint), accord_mail_failed(bigint, text, boolean, integer),
    accord_mail_outbox_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_mail_due(integer), accord_mail_sent(bigint), accord_mail_failed(bigint, text, boolean, integer),
    accord_mail_outbox_stats() TO accord_app;
