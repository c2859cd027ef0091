import AccordCore
import Foundation
import PGStore

/// The SQL of rooms, each statement beside the decoding of its rows. Every function runs on a
/// transaction carrying the caller's tenant context: row-level security shows a room's rows to its
/// members only, so a room the caller is not in is simply not found.
enum RoomStore {
    /// Unread counts stop counting here (a badge says "999+").
    static let unreadCap = 999

    static func roomColumns(_ caller: UUID) -> PGQuery {
        """
        r.id, r.title, r.topic, r.field, r.institution_id, r.created_by, m.role, r.archived_at IS NOT NULL, r.last_seq,
        (SELECT count(*) FROM (SELECT 1 FROM room_messages x
                               WHERE x.room_id = r.id AND x.seq > m.last_read_seq AND x.deleted_at IS NULL
                                 AND x.author_id IS DISTINCT FROM \(caller) LIMIT \(unreadCap)) u)::integer,
        m.last_read_seq, \(Timestamp.precise("r.created_at")), \(Timestamp.precise("r.updated_at"))
        """
    }

    static func room(_ row: PGRow) throws -> Room {
        let r = try row.decode((UUID, String, String?, String?, UUID, UUID?, String, Bool, Int64, Int, Int64, String, String).self)
        return Room(
            id: r.0, title: r.1, topic: r.2, field: r.3, institutionId: r.4, createdBy: r.5, role: RoomRole(rawValue: r.6) ?? .member,
            archived: r.7, lastSeq: r.8, unread: r.9, lastReadSeq: r.10, createdAt: r.11, updatedAt: r.12)
    }

    /// The room with the caller's view of it; nil when the caller is not a member.
    static func find(_ id: UUID, caller: UUID, on tx: PGConnection) async throws -> Room? {
        try await tx.query(
            "SELECT \(roomColumns(caller)) FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = \(caller) WHERE r.id = \(id)"
        ).first.map(room)
    }

    /// The caller's rooms, newest first, after `position`.
    static func list(caller: UUID, after position: CreatedPosition?, limit: Int, on tx: PGConnection) async throws -> [Room] {
        var query: PGQuery = "SELECT \(roomColumns(caller)) FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = \(caller) WHERE true"
        if let position { query.append(" AND (r.created_at, r.id) < (\(position.createdAt)::timestamptz, \(position.id))") }
        query.append(" ORDER BY r.created_at DESC, r.id DESC LIMIT \(limit)")
        return try await tx.query(query).map(room)
    }

    /// The caller's role, name and institution name in their own institution, for a membership row.
    static func memberIdentity(_ user: UUID, on tx: PGConnection) async throws -> (name: String, institutionID: UUID, institutionName: String)? {
        try await tx.query(
            """
            SELECT u.name, u.institution_id, coalesce(i.names->0->>'value', i.schac)
            FROM users u JOIN institutions i ON i.id = u.institution_id WHERE u.id = \(user)
            """
        ).first((String, UUID, String).self)
    }

    /// The room's version and archive state, locked for a change; nil when the caller is not a member.
    static func lock(_ id: UUID, on tx: PGConnection) async throws -> (version: Int, archived: Bool)? {
        try await tx.query("SELECT version, archived_at IS NOT NULL FROM rooms WHERE id = \(id) FOR UPDATE").first((Int, Bool).self)
    }

    // MARK: Members

    static let memberColumns: PGQuery = """
        user_id, name, institution_id, institution_name, role,
        CASE WHEN muted_until > now() THEN \(Timestamp.seconds("muted_until")) END, \(Timestamp.seconds("joined_at"))
        """

    static func member(_ row: PGRow) throws -> RoomMember {
        let r = try row.decode((UUID, String, UUID, String, String, String?, String).self)
        return RoomMember(
            userId: r.0, name: r.1, institutionId: r.2, institutionName: r.3, role: RoomRole(rawValue: r.4) ?? .member, mutedUntil: r.5,
            joinedAt: r.6)
    }

    static func members(of room: UUID, on tx: PGConnection) async throws -> [RoomMember] {
        try await tx.query("SELECT \(memberColumns) FROM room_members WHERE room_id = \(room) ORDER BY joined_at, user_id LIMIT 10000").map(member)
    }

    static func member(_ user: UUID, of room: UUID, on tx: PGConnection) async throws -> RoomMember? {
        try await tx.query("SELECT \(memberColumns) FROM room_members WHERE room_id = \(room) AND user_id = \(user)").first.map(member)
    }

    // MARK: Messages

    static let messageColumns: PGQuery = """
        seq, id, client_id, author_id, author_name, author_institution_id, author_institution_name,
        CASE WHEN deleted_at IS NULL THEN body ELSE '' END, \(Timestamp.precise("created_at")), \(Timestamp.precise("edited_at")),
        deleted_at IS NOT NULL
        """

    static func message(_ row: PGRow) throws -> RoomMessage {
        let r = try row.decode((Int64, UUID, String, UUID?, String, UUID, String, String, String, String?, Bool).self)
        return RoomMessage(
            seq: r.0, id: r.1, clientId: r.2, author: MessageAuthor(id: r.3, name: r.4, institution: r.5, institutionName: r.6), body: r.7,
            sentAt: r.8, editedAt: r.9, deleted: r.10)
    }

    /// Messages in sequence order: after `after` (ascending), or before `before` (the latest ones
    /// before it, returned ascending).
    static func messages(of room: UUID, after: Int64?, before: Int64?, limit: Int, on tx: PGConnection) async throws -> [RoomMessage] {
        if let before {
            var query: PGQuery = "SELECT * FROM (SELECT \(messageColumns) FROM room_messages WHERE room_id = \(room) AND seq < \(before)"
            if let after { query.append(" AND seq > \(after)") }
            query.append(" ORDER BY seq DESC LIMIT \(limit)) page ORDER BY seq")
            return try await tx.query(query).map(message)
        }
        return try await tx.query(range(of: room, after: after ?? 0, upTo: nil, limit: limit)).map(message)
    }

    /// The messages after `after` and up to `upTo` (nil: the last), in sequence order, at most
    /// `limit`: the history page, the hub's read of new messages and a socket's replay alike.
    static func range(of room: UUID, after: Int64, upTo: Int64?, limit: Int) -> PGQuery {
        var query: PGQuery = "SELECT \(messageColumns) FROM room_messages WHERE room_id = \(room) AND seq > \(after)"
        if let upTo { query.append(" AND seq <= \(upTo)") }
        query.append(" ORDER BY seq LIMIT \(limit)")
        return query
    }

    /// The message at `seq`.
    static func one(_ seq: Int64, of room: UUID) -> PGQuery {
        "SELECT \(messageColumns) FROM room_messages WHERE room_id = \(room) AND seq = \(seq)"
    }

    /// Messages matching a full-text query (accents and case folded), newest first.
    static func search(_ room: UUID, query text: String, limit: Int, on tx: PGConnection) async throws -> [RoomMessage] {
        try await tx.query(
            """
            SELECT \(messageColumns) FROM room_messages
            WHERE room_id = \(room) AND deleted_at IS NULL AND search @@ websearch_to_tsquery('accord_search'::regconfig, \(text))
            ORDER BY seq DESC LIMIT \(limit)
            """
        ).map(message)
    }

    static func message(_ seq: Int64, of room: UUID, on tx: PGConnection) async throws -> RoomMessage? {
        try await tx.query(one(seq, of: room)).first.map(message)
    }

    /// Sends as the caller (`accord_room_send`): the acknowledgement, new or original.
    static func send(_ room: UUID, clientID: String, body: String, on tx: PGConnection) async throws -> MessageAck {
        let (seq, id, _, duplicate) = try await tx.query("SELECT seq, id, sent_at, duplicate FROM accord_room_send(\(room), \(clientID), \(body))")
            .first((Int64, UUID, Date, Bool).self)!
        return MessageAck(clientId: clientID, seq: seq, id: id, duplicate: duplicate)
    }

    // MARK: Invitations

    static let invitationColumns: PGQuery = """
        v.id, v.room_id, v.room_title, v.email,
        CASE WHEN v.accepted_at IS NOT NULL THEN 'accepted' WHEN v.revoked_at IS NOT NULL THEN 'revoked'
             WHEN v.expires_at <= now() THEN 'expired' ELSE 'open' END,
        \(Timestamp.seconds("v.created_at")), \(Timestamp.seconds("v.expires_at"))
        """

    static func invitation(_ row: PGRow) throws -> RoomInvitation {
        let r = try row.decode((UUID, UUID, String, String, String, String, String).self)
        return RoomInvitation(id: r.0, roomId: r.1, roomTitle: r.2, email: r.3, status: r.4, createdAt: r.5, expiresAt: r.6)
    }
}
