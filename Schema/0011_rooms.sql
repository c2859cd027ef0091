-- 0011_rooms.sql: collaboration rooms — rooms, their members, their messages (one sequence per
-- room), invitations across institutions, socket tickets and presence.
--
-- Rooms cross institutions, so their rows belong to no one tenant: row-level security admits a
-- caller to a room's rows when the caller is a member of that room (accord_room_role, which reads
-- room_members with the owner's rights, so that the policy on room_members need not consult
-- itself). A caller without a tenant context sees nothing, as everywhere.

CREATE TABLE rooms (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    topic           text CHECK (length(topic) <= 2000),
    field           text REFERENCES isced_fields (code),
    -- The creator's institution (the room's members may come from several).
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    -- The sequence of the room's last message: the next one gets last_seq + 1, in the transaction
    -- that stores it, under this row's lock.
    last_seq        bigint NOT NULL DEFAULT 0,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz
);
CREATE INDEX rooms_institution_idx ON rooms (institution_id);

CREATE TABLE room_members (
    room_id         uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Names as the room's other members see them (they cannot read another institution's users).
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    institution_id  uuid NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    institution_name text NOT NULL,
    role            text NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    muted_until     timestamptz,
    -- The last sequence this member has read: unread counts start after it.
    last_read_seq   bigint NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
    joined_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user_idx ON room_members (user_id, room_id);

CREATE TABLE room_messages (
    room_id         uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq             bigint NOT NULL CHECK (seq > 0),
    id              uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    author_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    author_name     text NOT NULL,
    author_institution_id uuid NOT NULL,
    author_institution_name text NOT NULL,
    -- The sender's key for this message: a repeated key from the same author in the same room is
    -- the same message, forever.
    client_id       text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 64),
    body            text NOT NULL CHECK (octet_length(body) <= 16384),
    created_at      timestamptz NOT NULL DEFAULT now(),
    edited_at       timestamptz,
    deleted_at      timestamptz,
    search          tsvector GENERATED ALWAYS AS (to_tsvector('accord_search'::regconfig, body)) STORED,
    PRIMARY KEY (room_id, seq),
    UNIQUE (room_id, author_id, client_id)
);
CREATE INDEX room_messages_search_idx ON room_messages USING gin (search);

CREATE TABLE room_invitations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    room_id         uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- The room's title when the invitation was made: the invitee cannot read the room until they join.
    room_title      text NOT NULL,
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    invited_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX room_invitations_room_idx ON room_invitations (room_id);
CREATE INDEX room_invitations_email_idx ON room_invitations (accord_email_key(email));

-- Single-use tickets that open a socket (browsers cannot set headers on a WebSocket request).
CREATE TABLE room_tickets (
    ticket_hash     bytea PRIMARY KEY CHECK (length(ticket_hash) = 32),
    room_id         uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The session that asked for it: the socket lives as long as that session.
    session_hash    bytea NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);

-- Who is online in which room: one row per (room, user, server instance), refreshed by the
-- instance's heartbeat; a row older than the time to live is offline, whoever notices.
CREATE TABLE room_presence (
    room_id         uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    instance        text NOT NULL CHECK (length(instance) BETWEEN 1 AND 100),
    seen_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id, instance)
);

-- The caller's role in a room, or NULL when the caller is not a member.
CREATE FUNCTION accord_room_role(p_room uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.role FROM room_members m WHERE m.room_id = p_room AND m.user_id = accord_current_user()
$$;

-- Who created a room (the creator adds themselves as its owner before anyone is a member).
CREATE FUNCTION accord_room_creator(p_room uuid) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.created_by FROM rooms r WHERE r.id = p_room
$$;

ALTER TABLE rooms ENABLE ROW LEVEL SECURITY;
ALTER TABLE rooms FORCE ROW LEVEL SECURITY;
ALTER TABLE room_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE room_members FORCE ROW LEVEL SECURITY;
ALTER TABLE room_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE room_messages FORCE ROW LEVEL SECURITY;
ALTER TABLE room_invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE room_invitations FORCE ROW LEVEL SECURITY;
ALTER TABLE room_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE room_tickets FORCE ROW LEVEL SECURITY;
ALTER TABLE room_presence ENABLE ROW LEVEL SECURITY;
ALTER TABLE room_presence FORCE ROW LEVEL SECURITY;

CREATE POLICY owner_all ON rooms TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON room_members TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON room_messages TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON room_invitations TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON room_tickets TO accord_owner USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON room_presence TO accord_owner USING (true) WITH CHECK (true);

-- Rooms: members read and change them (the service decides which role may change what); a user
-- creates one for their own institution.
CREATE POLICY rooms_member ON rooms USING (accord_room_role(id) IS NOT NULL) WITH CHECK (accord_room_role(id) IS NOT NULL);
CREATE POLICY rooms_create ON rooms FOR INSERT
    WITH CHECK (institution_id = accord_current_institution() AND created_by = accord_current_user());
CREATE POLICY rooms_network_admin ON rooms FOR SELECT USING (accord_is_network_admin());

-- Members: a room's members see each other; members add users of their own institution (or the
-- creator adds themselves as owner); a member changes or removes their own row (read marker,
-- leaving), owners and moderators anyone's (the service decides which change each role may make).
CREATE POLICY room_members_read ON room_members FOR SELECT USING (accord_room_role(room_id) IS NOT NULL);
CREATE POLICY room_members_add ON room_members FOR INSERT
    WITH CHECK ((accord_room_role(room_id) IS NOT NULL AND institution_id = accord_current_institution())
                OR (user_id = accord_current_user() AND role = 'owner' AND accord_room_creator(room_id) = accord_current_user()));
CREATE POLICY room_members_change ON room_members FOR UPDATE
    USING (user_id = accord_current_user() OR accord_room_role(room_id) IN ('owner', 'moderator'))
    WITH CHECK (user_id = accord_current_user() OR accord_room_role(room_id) IN ('owner', 'moderator'));
CREATE POLICY room_members_remove ON room_members FOR DELETE
    USING (user_id = accord_current_user() OR accord_room_role(room_id) IN ('owner', 'moderator'));

-- Messages: members read them, write their own, and edit (the service decides whose).
CREATE POLICY room_messages_read ON room_messages FOR SELECT USING (accord_room_role(room_id) IS NOT NULL);
CREATE POLICY room_messages_write ON room_messages FOR INSERT
    WITH CHECK (author_id = accord_current_user() AND accord_room_role(room_id) IS NOT NULL);
CREATE POLICY room_messages_change ON room_messages FOR UPDATE
    USING (accord_room_role(room_id) IS NOT NULL) WITH CHECK (accord_room_role(room_id) IS NOT NULL);

-- Invitations: the room's members see them, owners and moderators make and change them; the
-- invitee sees those addressed to them and accepts through accord_accept_room_invitation.
CREATE FUNCTION accord_current_email_key() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT accord_email_key(u.email) FROM users u WHERE u.id = accord_current_user()
$$;
CREATE POLICY room_invitations_read ON room_invitations FOR SELECT
    USING (accord_room_role(room_id) IS NOT NULL OR accord_email_key(email) = accord_current_email_key());
CREATE POLICY room_invitations_write ON room_invitations FOR INSERT
    WITH CHECK (accord_room_role(room_id) IN ('owner', 'moderator') AND invited_by = accord_current_user());
CREATE POLICY room_invitations_change ON room_invitations FOR UPDATE
    USING (accord_room_role(room_id) IN ('owner', 'moderator')) WITH CHECK (accord_room_role(room_id) IN ('owner', 'moderator'));

-- Tickets: a user makes their own; spending one goes through accord_spend_room_ticket.
CREATE POLICY room_tickets_own ON room_tickets USING (user_id = accord_current_user()) WITH CHECK (user_id = accord_current_user());

-- Presence: members read it; instances write it through the functions below.
CREATE POLICY room_presence_read ON room_presence FOR SELECT USING (accord_room_role(room_id) IS NOT NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON rooms, room_members, room_messages, room_invitations TO accord_app;
GRANT SELECT, INSERT ON room_tickets TO accord_app;
GRANT SELECT ON room_presence TO accord_app;

-- Sends a message as the caller: under the room's row lock, a repeated client id answers the
-- message it made (duplicate = true) and stores nothing; otherwise the message gets the next
-- sequence, is stored, and every instance is told (the notification leaves at commit, in commit
-- order). Errors: ACR04 no such room (or not a member), ACR09 archived, ACR03 muted.
CREATE FUNCTION accord_room_send(p_room uuid, p_client_id text, p_body text)
RETURNS TABLE (seq bigint, id uuid, sent_at timestamptz, duplicate boolean)
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_last bigint;
    v_archived timestamptz;
    v_member record;
    v_id uuid := gen_random_uuid();
    v_now timestamptz := clock_timestamp();
BEGIN
    SELECT r.last_seq, r.archived_at INTO v_last, v_archived FROM rooms r WHERE r.id = p_room FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such room' USING ERRCODE = 'ACR04';
    END IF;
    RETURN QUERY SELECT m.seq, m.id, m.created_at, true FROM room_messages m
        WHERE m.room_id = p_room AND m.author_id = accord_current_user() AND m.client_id = p_client_id;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT mm.name, mm.institution_id, mm.institution_name, mm.muted_until INTO v_member
        FROM room_members mm WHERE mm.room_id = p_room AND mm.user_id = accord_current_user();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such room' USING ERRCODE = 'ACR04';
    END IF;
    IF v_archived IS NOT NULL THEN
        RAISE EXCEPTION 'the room is archived' USING ERRCODE = 'ACR09';
    END IF;
    IF v_member.muted_until > now() THEN
        RAISE EXCEPTION 'muted until %', v_member.muted_until USING ERRCODE = 'ACR03';
    END IF;
    UPDATE rooms SET last_seq = v_last + 1 WHERE rooms.id = p_room;
    INSERT INTO room_messages (room_id, seq, id, author_id, author_name, author_institution_id, author_institution_name,
                               client_id, body, created_at)
    VALUES (p_room, v_last + 1, v_id, accord_current_user(), v_member.name, v_member.institution_id, v_member.institution_name,
            p_client_id, p_body, v_now);
    PERFORM pg_notify('accord_rooms', p_room::text || ' m ' || (v_last + 1)::text);
    RETURN QUERY SELECT v_last + 1, v_id, v_now, false;
END
$$;

-- Spends a socket ticket: the room, the user and the session it opens, once, within its life.
CREATE FUNCTION accord_spend_room_ticket(p_ticket_hash bytea)
RETURNS TABLE (room_id uuid, user_id uuid, session_hash bytea)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE room_tickets t SET used_at = now()
    WHERE t.ticket_hash = p_ticket_hash AND t.used_at IS NULL AND t.expires_at > now()
    RETURNING t.room_id, t.user_id, t.session_hash
$$;

-- A socket ticket that has not been spent: its room, user and session (checking it spends nothing).
CREATE FUNCTION accord_peek_room_ticket(p_ticket_hash bytea)
RETURNS TABLE (room_id uuid, user_id uuid, session_hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT t.room_id, t.user_id, t.session_hash FROM room_tickets t
    WHERE t.ticket_hash = p_ticket_hash AND t.used_at IS NULL AND t.expires_at > now()
$$;

-- Which of these sockets (session token hash in hex, room, user) may stay open: the session is live, its
-- institution active, and the user still a member of the room.
CREATE FUNCTION accord_room_sockets_allowed(p_sessions text[], p_rooms uuid[], p_users uuid[])
RETURNS TABLE (ordinal bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT x.ordinal FROM unnest(p_sessions, p_rooms, p_users) WITH ORDINALITY AS x (session_hash, room_id, user_id, ordinal)
    WHERE EXISTS (
        SELECT 1 FROM sessions s JOIN institutions i ON i.id = s.institution_id
        WHERE s.token_hash = decode(x.session_hash, 'hex') AND s.user_id = x.user_id AND s.expires_at > now() AND i.status = 'active')
      AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = x.room_id AND m.user_id = x.user_id)
$$;

-- An instance's heartbeat: its sockets' (room, user) pairs are online now. Returns the pairs that
-- came online (no fresh row of any instance before).
CREATE FUNCTION accord_room_presence_beat(p_instance text, p_rooms uuid[], p_users uuid[])
RETURNS TABLE (room_id uuid, user_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY
    WITH pairs AS (SELECT DISTINCT r AS room_id, u AS user_id FROM unnest(p_rooms, p_users) AS x (r, u)),
         fresh AS (SELECT p.room_id, p.user_id FROM pairs p WHERE NOT EXISTS (
             SELECT 1 FROM room_presence q WHERE q.room_id = p.room_id AND q.user_id = p.user_id)),
         upsert AS (
             INSERT INTO room_presence (room_id, user_id, instance, seen_at)
             SELECT p.room_id, p.user_id, p_instance, now() FROM pairs p
             ON CONFLICT ON CONSTRAINT room_presence_pkey DO UPDATE SET seen_at = now()
             RETURNING 1)
    SELECT f.room_id, f.user_id FROM fresh f WHERE (SELECT count(*) FROM upsert) >= 0;
END
$$;

-- Takes an instance's (room, user) rows away (sockets closed, or the instance stopping); returns
-- the pairs now offline everywhere.
CREATE FUNCTION accord_room_presence_leave(p_instance text, p_rooms uuid[], p_users uuid[])
RETURNS TABLE (room_id uuid, user_id uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM room_presence q USING unnest(p_rooms, p_users) AS x (r, u)
        WHERE q.room_id = x.r AND q.user_id = x.u AND q.instance = p_instance
        RETURNING q.room_id, q.user_id)
    SELECT DISTINCT g.room_id, g.user_id FROM gone g
    WHERE NOT EXISTS (SELECT 1 FROM room_presence q WHERE q.room_id = g.room_id AND q.user_id = g.user_id AND q.instance <> p_instance)
$$;

-- Rows older than the time to live are offline (a crashed client or instance); returns the pairs
-- now offline everywhere.
CREATE FUNCTION accord_room_presence_expire(p_ttl interval)
RETURNS TABLE (room_id uuid, user_id uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM room_presence q WHERE q.seen_at < now() - p_ttl RETURNING q.room_id, q.user_id)
    SELECT DISTINCT g.room_id, g.user_id FROM gone g
    WHERE NOT EXISTS (SELECT 1 FROM room_presence q WHERE q.room_id = g.room_id AND q.user_id = g.user_id AND q.seen_at >= now() - p_ttl)
$$;

-- The last sequences of rooms (no content): how an instance notices a notification it missed.
CREATE FUNCTION accord_rooms_last_seq(p_rooms uuid[])
RETURNS TABLE (room_id uuid, last_seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.last_seq FROM rooms r WHERE r.id = ANY (p_rooms)
$$;

-- Accepting a room invitation: the caller becomes a member if the invitation is theirs and open.
CREATE FUNCTION accord_accept_room_invitation(p_invitation uuid, p_name text, p_institution_name text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_room uuid;
BEGIN
    UPDATE room_invitations v SET accepted_at = now()
    WHERE v.id = p_invitation AND v.accepted_at IS NULL AND v.revoked_at IS NULL AND v.expires_at > now()
      AND accord_email_key(v.email) = accord_current_email_key()
      AND EXISTS (SELECT 1 FROM rooms r WHERE r.id = v.room_id AND r.archived_at IS NULL)
    RETURNING v.room_id INTO v_room;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO room_members (room_id, user_id, name, institution_id, institution_name, role)
    VALUES (v_room, accord_current_user(), p_name, accord_current_institution(), p_institution_name, 'member')
    ON CONFLICT (room_id, user_id) DO NOTHING;
    RETURN v_room;
END
$$;

-- Removals reach every instance (sockets of a removed member close). Other changes of a member
-- (read markers, roles, mutes) leave their sockets open and notify nothing.
CREATE FUNCTION accord_room_members_changed()
RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('accord_rooms', '- x ' || TG_OP);
    RETURN NULL;
END
$$;
CREATE TRIGGER room_members_changed AFTER DELETE ON room_members
    FOR EACH STATEMENT EXECUTE FUNCTION accord_room_members_changed();

REVOKE ALL ON FUNCTION accord_room_role(uuid), accord_room_creator(uuid), accord_current_email_key(),
    accord_room_send(uuid, text, text), accord_spend_room_ticket(bytea), accord_peek_room_ticket(bytea), accord_room_sockets_allowed(text[], uuid[], uuid[]),
    accord_room_presence_beat(text, uuid[], uuid[]), accord_room_presence_leave(text, uuid[], uuid[]),
    accord_room_presence_expire(interval), accord_rooms_last_seq(uuid[]), accord_accept_room_invitation(uuid, text, text),
    accord_room_members_changed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION accord_room_role(uuid), accord_room_creator(uuid), accord_current_email_key(),
    accord_room_send(uuid, text, text), accord_spend_room_ticket(bytea), accord_peek_room_ticket(bytea), accord_room_sockets_allowed(text[], uuid[], uuid[]),
    accord_room_presence_beat(text, uuid[], uuid[]), accord_room_presence_leave(text, uuid[], uuid[]),
    accord_room_presence_expire(interval), accord_rooms_last_seq(uuid[]), accord_accept_room_invitation(uuid, text, text)
    TO accord_app;
