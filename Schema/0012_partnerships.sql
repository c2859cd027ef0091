-- 0012_partnerships.sql: partnerships between two institutions — the message of intent, the
-- stages, the timeline both parties read, each party's internal notes, meetings, immutable
-- agreement versions with hash-bound approvals, KPI reports, and the activity both parties follow.
--
-- A partnership's rows belong to its two parties: row-level security admits a caller whose
-- institution is one of them (accord_partnership_party, which reads partnerships with the owner's
-- rights so that child tables need not repeat the policy of the parent). Notes belong to one party
-- only. A caller without a tenant context sees nothing, as everywhere.

CREATE TABLE partnerships (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Who sent the message of intent, and to whom.
    initiator_id    uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    partner_id      uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    stage           text NOT NULL DEFAULT 'invited'
                    CHECK (stage IN ('invited', 'declined', 'withdrawn', 'negotiating', 'active', 'terminated', 'expired')),
    message         text NOT NULL CHECK (length(message) BETWEEN 1 AND 5000),
    activities      text[] NOT NULL CHECK (cardinality(activities) BETWEEN 1 AND 8),
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    -- The agreement version both parties approved last (the one in effect), if any.
    in_effect_version integer,
    ends_on         date,
    ended_reason    text CHECK (length(ended_reason) <= 2000),
    -- The room opened when the partner accepted: users of both parties join it without invitation.
    room_id         uuid REFERENCES rooms (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (initiator_id <> partner_id)
);
CREATE INDEX partnerships_initiator_idx ON partnerships (initiator_id, created_at DESC, id);
CREATE INDEX partnerships_partner_idx ON partnerships (partner_id, created_at DESC, id);
-- One open partnership per pair of institutions (EWP: one agreement per pair).
CREATE UNIQUE INDEX partnerships_open_pair_idx
    ON partnerships (least(initiator_id, partner_id), greatest(initiator_id, partner_id))
    WHERE stage IN ('invited', 'negotiating', 'active');

-- What happened, in order, as both parties read it: who (name and institution copied, since the
-- other party cannot read one's users), when, what.
CREATE TABLE partnership_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partnership_id  uuid NOT NULL REFERENCES partnerships (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_id        uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_name      text NOT NULL,
    actor_institution_id uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (length(kind) BETWEEN 1 AND 60),
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX partnership_events_idx ON partnership_events (partnership_id, id);

-- A party's own notes on a partnership: the other party never sees them.
CREATE TABLE partnership_notes (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    partnership_id  uuid NOT NULL REFERENCES partnerships (id) ON DELETE CASCADE,
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    author_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partnership_notes_idx ON partnership_notes (partnership_id, institution_id, created_at);

-- Meetings while negotiating (and after): when, what, who of both sides, and the minutes.
CREATE TABLE partnership_meetings (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    partnership_id  uuid NOT NULL REFERENCES partnerships (id) ON DELETE CASCADE,
    starts_at       timestamptz NOT NULL,
    agenda          text NOT NULL CHECK (length(agenda) BETWEEN 1 AND 10000),
    -- [{"institution": uuid, "name": text, "role": text?}]
    participants    jsonb NOT NULL DEFAULT '[]',
    minutes         text CHECK (length(minutes) <= 50000),
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1
);
CREATE INDEX partnership_meetings_idx ON partnership_meetings (partnership_id, starts_at);

-- Agreement versions: immutable once written. `hash` is SHA-256 (hex) of the canonical terms
-- (contacts excluded); `terms` is what was sent, normalised.
CREATE TABLE agreement_versions (
    partnership_id  uuid NOT NULL REFERENCES partnerships (id) ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version > 0),
    terms           jsonb NOT NULL,
    hash            text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_by_institution uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partnership_id, version)
);

-- A party's approval of one version, bound to its hash.
CREATE TABLE agreement_approvals (
    partnership_id  uuid NOT NULL,
    version         integer NOT NULL,
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    hash            text NOT NULL,
    approved_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    approved_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partnership_id, version, institution_id),
    FOREIGN KEY (partnership_id, version) REFERENCES agreement_versions (partnership_id, version) ON DELETE CASCADE
);

-- A party's actual value of a KPI for a period (an academic year "2027/2028" or a calendar year).
CREATE TABLE kpi_reports (
    partnership_id  uuid NOT NULL REFERENCES partnerships (id) ON DELETE CASCADE,
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    period          text NOT NULL CHECK (period ~ '^[0-9]{4}(/[0-9]{4})?$'),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 60),
    actual          numeric NOT NULL CHECK (actual >= 0),
    reported_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    reported_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partnership_id, institution_id, period, key)
);

-- What concerns the other party, written in the transaction of the change: a party's activity feed
-- (`GET /v1/activity`) and the outbox later deliveries (webhooks) read.
CREATE TABLE partnership_activity (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    partnership_id  uuid NOT NULL REFERENCES partnerships (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    actor_institution_id uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX partnership_activity_idx ON partnership_activity (institution_id, id DESC);
CREATE INDEX partnership_activity_undelivered_idx ON partnership_activity (id) WHERE delivered_at IS NULL;

-- Whether the caller's institution is a party of the partnership.
CREATE FUNCTION accord_partnership_party(p_partnership uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM partnerships p
        WHERE p.id = p_partnership AND accord_current_institution() IN (p.initiator_id, p.partner_id))
$$;

-- An institution's name and status as a partnership shows them (the other party cannot read
-- institutions' private rows): only for institutions the caller shares a partnership with, or
-- may propose one to (active ones).
CREATE FUNCTION accord_partnership_institution(p_institution uuid)
RETURNS TABLE (id uuid, name text, status text, schac text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.id, coalesce(i.names->0->>'value', i.schac), i.status, i.schac FROM institutions i
    WHERE i.id = p_institution AND accord_current_institution() IS NOT NULL
      AND (i.status = 'active' OR i.id = accord_current_institution() OR EXISTS (
            SELECT 1 FROM partnerships p
            WHERE (p.initiator_id = i.id AND p.partner_id = accord_current_institution())
               OR (p.partner_id = i.id AND p.initiator_id = accord_current_institution())))
$$;

ALTER TABLE partnerships ENABLE ROW LEVEL SECURITY;
ALTER TABLE partnerships FORCE ROW LEVEL SECURITY;
ALTER TABLE partnership_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE partnership_events FORCE ROW LEVEL SECURITY;
ALTER TABLE partnership_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE partnership_notes FORCE ROW LEVEL SECURITY;
ALTER TABLE partnership_meetings ENABLE ROW LEVEL SECURITY;
ALTER TABLE partnership_meetings FORCE ROW LEVEL SECURITY;
ALTER TABLE agreement_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE agreement_versions FORCE ROW LEVEL SECURITY;
ALTER TABLE agreement_approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE agreement_approvals FORCE ROW LEVEL SECURITY;
ALTER TABLE kpi_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE kpi_reports FORCE ROW LEVEL SECURITY;
ALTER TABLE partnership_activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE partnership_activity FORCE ROW LEVEL SECURITY;

CREATE POLICY owner_all ON partnerships TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON partnership_events TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON partnership_notes TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON partnership_meetings TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON agreement_versions TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON agreement_approvals TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON kpi_reports TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON partnership_activity TO accord_owner USING (true) WITH CHECK (true);

-- Partnerships: both parties read and change them (the service decides which transition each may
-- make); a message of intent is sent from the caller's own institution.
CREATE POLICY partnerships_parties ON partnerships
    USING (accord_current_institution() IN (initiator_id, partner_id))
    WITH CHECK (accord_current_institution() IN (initiator_id, partner_id));
CREATE POLICY partnerships_create ON partnerships FOR INSERT
    WITH CHECK (initiator_id = accord_current_institution() AND created_by = accord_current_user());
CREATE POLICY partnerships_network_admin ON partnerships FOR SELECT USING (accord_is_network_admin());

-- The timeline, meetings, versions and KPI reports: both parties read them; a party writes as itself.
CREATE POLICY partnership_events_read ON partnership_events FOR SELECT USING (accord_partnership_party(partnership_id));
CREATE POLICY partnership_events_write ON partnership_events FOR INSERT
    WITH CHECK (accord_partnership_party(partnership_id) AND actor_institution_id = accord_current_institution());
CREATE POLICY partnership_meetings_parties ON partnership_meetings
    USING (accord_partnership_party(partnership_id)) WITH CHECK (accord_partnership_party(partnership_id));
CREATE POLICY agreement_versions_read ON agreement_versions FOR SELECT USING (accord_partnership_party(partnership_id));
CREATE POLICY agreement_versions_write ON agreement_versions FOR INSERT
    WITH CHECK (accord_partnership_party(partnership_id) AND created_by_institution = accord_current_institution());
-- Only a version no party approved may be deleted (a draft never approved).
CREATE POLICY agreement_versions_delete ON agreement_versions FOR DELETE
    USING (accord_partnership_party(partnership_id));
CREATE POLICY agreement_approvals_read ON agreement_approvals FOR SELECT USING (accord_partnership_party(partnership_id));
CREATE POLICY agreement_approvals_write ON agreement_approvals FOR INSERT
    WITH CHECK (accord_partnership_party(partnership_id) AND institution_id = accord_current_institution());
CREATE POLICY kpi_reports_read ON kpi_reports FOR SELECT USING (accord_partnership_party(partnership_id));
CREATE POLICY kpi_reports_write ON kpi_reports
    USING (accord_partnership_party(partnership_id) AND institution_id = accord_current_institution())
    WITH CHECK (accord_partnership_party(partnership_id) AND institution_id = accord_current_institution());

-- Notes: one party's own.
CREATE POLICY partnership_notes_own ON partnership_notes
    USING (institution_id = accord_current_institution() AND accord_partnership_party(partnership_id))
    WITH CHECK (institution_id = accord_current_institution() AND accord_partnership_party(partnership_id));

-- Activity: a party reads its own feed and writes to the other party's (of a shared partnership).
CREATE POLICY partnership_activity_read ON partnership_activity FOR SELECT USING (institution_id = accord_current_institution());
CREATE POLICY partnership_activity_write ON partnership_activity FOR INSERT
    WITH CHECK (accord_partnership_party(partnership_id) AND actor_institution_id = accord_current_institution());

GRANT SELECT, INSERT, UPDATE ON partnerships TO accord_app;
GRANT SELECT, INSERT ON partnership_events, agreement_approvals, partnership_activity TO accord_app;
GRANT SELECT, INSERT, DELETE ON agreement_versions TO accord_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON partnership_notes, partnership_meetings, kpi_reports TO accord_app;
GRANT EXECUTE ON FUNCTION accord_partnership_party(uuid), accord_partnership_institution(uuid) TO accord_app;

-- The timeline and the approvals are appended to, never changed.
CREATE FUNCTION accord_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never changed', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER partnership_events_append_only BEFORE UPDATE OR DELETE ON partnership_events
    FOR EACH ROW EXECUTE FUNCTION accord_refuse_change();
CREATE TRIGGER agreement_versions_immutable BEFORE UPDATE ON agreement_versions
    FOR EACH ROW EXECUTE FUNCTION accord_refuse_change();
CREATE TRIGGER agreement_approvals_append_only BEFORE UPDATE OR DELETE ON agreement_approvals
    FOR EACH ROW EXECUTE FUNCTION accord_refuse_change();

-- Opens the room of a partnership being accepted, in the accepting transaction: titled after both
-- parties, owned by the accepting user and by the user who proposed it (one of each party).
-- Returns the room (the same one when it is open already). Errors: ACR04 not a party.
CREATE FUNCTION accord_open_partnership_room(p_partnership uuid) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_p partnerships%ROWTYPE;
    v_room uuid := gen_random_uuid();
    v_title text;
BEGIN
    SELECT * INTO v_p FROM partnerships WHERE id = p_partnership FOR UPDATE;
    IF NOT FOUND OR accord_current_institution() IS NULL OR accord_current_institution() NOT IN (v_p.initiator_id, v_p.partner_id) THEN
        RAISE EXCEPTION 'no such partnership' USING ERRCODE = 'ACR04';
    END IF;
    IF v_p.room_id IS NOT NULL THEN
        RETURN v_p.room_id;
    END IF;
    SELECT left('Partnership: ' || coalesce(a.names->0->>'value', a.schac) || ' – ' || coalesce(b.names->0->>'value', b.schac), 200)
      INTO v_title FROM institutions a, institutions b WHERE a.id = v_p.initiator_id AND b.id = v_p.partner_id;
    INSERT INTO rooms (id, title, institution_id, created_by) VALUES (v_room, v_title, accord_current_institution(), accord_current_user());
    INSERT INTO room_members (room_id, user_id, name, institution_id, institution_name, role)
    SELECT v_room, u.id, u.name, u.institution_id, coalesce(i.names->0->>'value', i.schac), 'owner'
    FROM users u JOIN institutions i ON i.id = u.institution_id
    WHERE u.id IN (accord_current_user(), v_p.created_by) AND u.institution_id IN (v_p.initiator_id, v_p.partner_id);
    UPDATE partnerships SET room_id = v_room WHERE id = p_partnership;
    RETURN v_room;
END $$;

-- The caller (a user of either party) joins the partnership's room, as a member; again: nothing
-- changes. Returns the room. Errors: ACR04 not a party, or no room yet.
CREATE FUNCTION accord_join_partnership_room(p_partnership uuid) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_room uuid;
BEGIN
    SELECT p.room_id INTO v_room FROM partnerships p
    WHERE p.id = p_partnership AND accord_current_institution() IN (p.initiator_id, p.partner_id);
    IF v_room IS NULL THEN
        RAISE EXCEPTION 'no such room' USING ERRCODE = 'ACR04';
    END IF;
    INSERT INTO room_members (room_id, user_id, name, institution_id, institution_name, role)
    SELECT v_room, u.id, u.name, u.institution_id, coalesce(i.names->0->>'value', i.schac), 'member'
    FROM users u JOIN institutions i ON i.id = u.institution_id
    WHERE u.id = accord_current_user() AND u.institution_id = accord_current_institution()
    ON CONFLICT (room_id, user_id) DO NOTHING;
    RETURN v_room;
END $$;

-- Ends the active partnerships whose agreement in effect ended before today: stage expired, on
-- the timeline (as "Accord", for the partner) and in both parties' activity feeds. Run by every
-- instance's clock (a partnership expires once: the update is its own lock). Returns how many.
CREATE FUNCTION accord_expire_partnerships() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_count integer;
BEGIN
    WITH expired AS (
        UPDATE partnerships SET stage = 'expired', updated_at = now()
        WHERE stage = 'active' AND ends_on < current_date
        RETURNING id, initiator_id, partner_id, ends_on
    ), events AS (
        INSERT INTO partnership_events (partnership_id, actor_name, actor_institution_id, kind, detail)
        SELECT id, 'Accord', partner_id, 'partnership.expired', jsonb_build_object('endsOn', ends_on::text) FROM expired
    ), feed AS (
        INSERT INTO partnership_activity (institution_id, partnership_id, kind, actor_institution_id)
        SELECT party, id, 'partnership.expired', partner_id FROM expired, LATERAL (VALUES (initiator_id), (partner_id)) AS p (party)
    )
    SELECT count(*) INTO v_count FROM expired;
    RETURN v_count;
END $$;
GRANT EXECUTE ON FUNCTION accord_expire_partnerships() TO accord_app;
