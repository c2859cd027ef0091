import AccordCore
import AccordCrypto
import Foundation
import HTTPTypes
import Logging
import PGStore

/// Settings of rooms.
public struct RoomsConfiguration: Sendable {
    /// The longest message body, in bytes of UTF-8.
    public var maxBodyBytes = 16 * 1024
    /// How long a socket ticket may be spent.
    public var ticketLifetime: TimeInterval = 30
    /// How long an invitation into a room may be accepted.
    public var invitationLifetime: TimeInterval = 14 * 24 * 3600
    /// The public address of the web front end, for links in mail.
    public var publicBaseURL = "http://127.0.0.1:8080"

    public init() {}
}

/// Rooms, their members, invitations and messages: the rules, each in a transaction as the caller.
public struct RoomService: Sendable {
    let pool: PGPool
    let reference: ReferenceData
    public let configuration: RoomsConfiguration

    public init(pool: PGPool, reference: ReferenceData, configuration: RoomsConfiguration = RoomsConfiguration()) {
        self.pool = pool
        self.reference = reference
        self.configuration = configuration
    }

    static let notFound = Problem.notFound("No such room.")

    /// Rooms are for users of active institutions (network administrators are in none).
    static func requireMember(_ caller: Identity) throws {
        try caller.requireAdmittedInstitution(notFound: notFound, what: "rooms open")
    }

    // MARK: Rooms

    public func create(_ input: RoomInput, caller: Identity) async throws -> Room {
        try Self.requireMember(caller)
        try await validate(input, creating: true)
        return try await pool.withTenant(caller) { tx in
            guard let me = try await RoomStore.memberIdentity(caller.accountID, on: tx) else { throw Self.notFound }
            // No RETURNING: the creator may read the row only once they are its owner.
            let id = UUID()
            try await tx.query(
                """
                INSERT INTO rooms (id, title, topic, field, institution_id, created_by)
                VALUES (\(id), \(input.title!.trimmingCharacters(in: .whitespaces)), \(input.topic), \(input.field), \(caller.institutionID!),
                        \(caller.accountID))
                """)
            try await tx.query(
                """
                INSERT INTO room_members (room_id, user_id, name, institution_id, institution_name, role)
                VALUES (\(id), \(caller.accountID), \(me.name), \(me.institutionID), \(me.institutionName), 'owner')
                """)
            try await Audit.record(
                "room.created", institutionID: caller.institutionID, actor: caller, targetType: "room", targetID: id.uuidString, on: tx)
            return try await RoomStore.find(id, caller: caller.accountID, on: tx)!
        }
    }

    func validate(_ input: RoomInput, creating: Bool) async throws {
        var v = Validator()
        if let title = input.title {
            v.text(title.trimmingCharacters(in: .whitespaces), "/title", 1...200)
        } else if creating {
            v.fail("/title", "is required")
        }
        if let topic = input.topic { v.text(topic, "/topic", 0...2000, singleLine: false) }
        if let field = input.field {
            v.check(try await reference.lists().iscedCodes.contains(field), "/field", "must be an ISCED-F 2013 code, e.g. 0714")
        }
        try v.validate()
    }

    /// The room and its version (its ETag), read in one transaction.
    public func room(_ id: UUID, caller: Identity) async throws -> (Room, version: Int) {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            guard let room = try await RoomStore.find(id, caller: caller.accountID, on: tx),
                let version = try await tx.query("SELECT version FROM rooms WHERE id = \(id)").first(Int.self)
            else { throw Self.notFound }
            return (room, version)
        }
    }

    public func rooms(limit: Int, cursor: String?, caller: Identity) async throws -> Page<Room> {
        try Self.requireMember(caller)
        let after = try cursor.map { try Cursor.decode(CreatedPosition.self, from: $0) }
        let fetched = try await pool.withTenant(caller) { tx in
            try await RoomStore.list(caller: caller.accountID, after: after, limit: limit + 1, on: tx)
        }
        return Page(fetched: fetched, limit: limit) { CreatedPosition(createdAt: $0.createdAt, id: $0.id) }
    }

    /// Changes title, topic or field (owners and moderators), at the version `ifMatch` names.
    public func update(_ id: UUID, with input: RoomInput, ifMatch: ETag.Precondition, caller: Identity) async throws -> (Room, version: Int) {
        try Self.requireMember(caller)
        try await validate(input, creating: false)
        return try await pool.withTenant(caller) { tx in
            let (role, locked) = try await lockForChange(id, caller: caller, on: tx)
            guard role.manages else { throw Problem.forbidden("Only the room's owners and moderators may change it.") }
            try ifMatch.check(current: locked.version, document: "room")
            var sets: [PGQuery] = ["version = version + 1", "updated_at = now()"]
            if let title = input.title { sets.append("title = \(title.trimmingCharacters(in: .whitespaces))") }
            if let topic = input.topic { sets.append(topic.isEmpty ? "topic = NULL" : "topic = \(topic)") }
            if let field = input.field { sets.append("field = \(field)") }
            var query: PGQuery = "UPDATE rooms SET "
            for (index, set) in sets.enumerated() {
                if index > 0 { query.append(", ") }
                query.append(set)
            }
            query.append(" WHERE id = \(id)")
            try await tx.query(query)
            return (try await RoomStore.find(id, caller: caller.accountID, on: tx)!, locked.version + 1)
        }
    }

    /// Archives the room: read-only from then on, for everyone (owners and moderators).
    public func archive(_ id: UUID, caller: Identity) async throws -> Room {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let (role, locked) = try await lockForChange(id, caller: caller, on: tx)
            guard role.manages else { throw Problem.forbidden("Only the room's owners and moderators may archive it.") }
            if !locked.archived {
                try await tx.query("UPDATE rooms SET archived_at = now(), version = version + 1, updated_at = now() WHERE id = \(id)")
                try await tx.query("SELECT pg_notify('accord_rooms', \(id.uuidString.lowercased() + " a 0"))")
            }
            return try await RoomStore.find(id, caller: caller.accountID, on: tx)!
        }
    }

    /// The caller's role, with the room locked; 404 when the caller is not a member.
    func lockForChange(_ id: UUID, caller: Identity, on tx: PGConnection) async throws -> (RoomRole, (version: Int, archived: Bool)) {
        guard let locked = try await RoomStore.lock(id, on: tx),
            let role = try await tx.query("SELECT accord_room_role(\(id))").scalar(String?.self).flatMap(RoomRole.init(rawValue:))
        else { throw Self.notFound }
        return (role, locked)
    }

    // MARK: Members

    public func members(of id: UUID, caller: Identity) async throws -> [RoomMember] {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let members = try await RoomStore.members(of: id, on: tx)
            guard !members.isEmpty else { throw Self.notFound }
            return members
        }
    }

    /// Adds a user of the caller's own institution (others join by invitation).
    public func addMember(_ userID: UUID, to id: UUID, caller: Identity) async throws -> RoomMember {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let (_, locked) = try await lockForChange(id, caller: caller, on: tx)
            guard !locked.archived else { throw Self.archived }
            // The users the caller can read are their own institution's.
            guard let user = try await RoomStore.memberIdentity(userID, on: tx), user.institutionID == caller.institutionID else {
                throw Problem.invalid(field: "/userId", "must be a user of your institution; invite users of other institutions by e-mail")
            }
            let added = try await tx.query(
                """
                INSERT INTO room_members (room_id, user_id, name, institution_id, institution_name, role)
                VALUES (\(id), \(userID), \(user.name), \(user.institutionID), \(user.institutionName), 'member')
                ON CONFLICT (room_id, user_id) DO NOTHING
                """
            ).affectedRows
            guard added == 1 else { throw Problem.conflict("This user is a member of the room already.") }
            try await Audit.record(
                "room.member_added", institutionID: caller.institutionID, actor: caller, targetType: "room", targetID: id.uuidString,
                detail: ["user": userID.uuidString.lowercased()], on: tx)
            return try await RoomStore.member(userID, of: id, on: tx)!
        }
    }

    public struct MemberChange: Codable, Sendable {
        public var role: String?
        /// Mutes the member until then (RFC 3339), or unmutes with null… sent as `"muted": false`.
        public var muted: Bool?
        /// How long a mute lasts, in minutes (default: 60).
        public var muteMinutes: Int?
    }

    /// Changes a member's role (owners) or mutes them (owners and moderators).
    public func changeMember(_ userID: UUID, in id: UUID, _ change: MemberChange, caller: Identity) async throws -> RoomMember {
        try Self.requireMember(caller)
        var v = Validator()
        let role = change.role.map { RoomRole(rawValue: $0) }
        if let role, role == nil { v.fail("/role", "must be owner, moderator or member") }
        if let minutes = change.muteMinutes { v.check((1...10080).contains(minutes), "/muteMinutes", "must be 1 to 10080 (a week)") }
        try v.validate()
        return try await pool.withTenant(caller) { tx in
            let (callerRole, _) = try await lockForChange(id, caller: caller, on: tx)
            guard let target = try await RoomStore.member(userID, of: id, on: tx) else { throw Problem.notFound("No such member.") }
            if let newRole = role ?? nil {
                guard callerRole == .owner else { throw Problem.forbidden("Only the room's owners may change roles.") }
                if target.role == .owner, newRole != .owner { try await requireAnotherOwner(in: id, besides: userID, on: tx) }
                try await tx.query("UPDATE room_members SET role = \(newRole.rawValue) WHERE room_id = \(id) AND user_id = \(userID)")
            }
            if let muted = change.muted {
                guard callerRole.manages, target.role == .member || callerRole == .owner else {
                    throw Problem.forbidden("Only the room's owners and moderators may mute, and only owners mute moderators.")
                }
                let minutes = change.muteMinutes ?? 60
                if muted {
                    try await tx.query(
                        "UPDATE room_members SET muted_until = now() + make_interval(mins => \(minutes)::integer) WHERE room_id = \(id) AND user_id = \(userID)"
                    )
                } else {
                    try await tx.query("UPDATE room_members SET muted_until = NULL WHERE room_id = \(id) AND user_id = \(userID)")
                }
            }
            return try await RoomStore.member(userID, of: id, on: tx)!
        }
    }

    /// Removes a member (owners and moderators; anyone may remove themselves: leaving). The last
    /// owner cannot leave.
    public func removeMember(_ userID: UUID, from id: UUID, caller: Identity) async throws {
        try Self.requireMember(caller)
        try await pool.withTenant(caller) { tx in
            let (callerRole, _) = try await lockForChange(id, caller: caller, on: tx)
            guard let target = try await RoomStore.member(userID, of: id, on: tx) else { throw Problem.notFound("No such member.") }
            if userID != caller.accountID {
                guard callerRole.manages, target.role == .member || callerRole == .owner else {
                    throw Problem.forbidden("Only the room's owners and moderators may remove members, and only owners remove moderators.")
                }
            }
            if target.role == .owner { try await requireAnotherOwner(in: id, besides: userID, on: tx) }
            try await tx.query("DELETE FROM room_members WHERE room_id = \(id) AND user_id = \(userID)")
            try await Audit.record(
                userID == caller.accountID ? "room.left" : "room.member_removed", institutionID: caller.institutionID, actor: caller,
                targetType: "room", targetID: id.uuidString, detail: ["user": userID.uuidString], on: tx)
        }
    }

    private func requireAnotherOwner(in id: UUID, besides userID: UUID, on tx: PGConnection) async throws {
        let others = try await tx.query("SELECT count(*) FROM room_members WHERE room_id = \(id) AND role = 'owner' AND user_id <> \(userID)")
            .scalar(Int.self)
        if others == 0 { throw Problem.conflict("This is the room's last owner; make another member owner first.") }
    }

    // MARK: Invitations

    public struct InvitationRequest: Codable, Sendable {
        public var email: String
    }

    /// Invites someone (of any institution) by e-mail; they accept it once signed in.
    public func invite(_ request: InvitationRequest, to id: UUID, caller: Identity) async throws -> RoomInvitation {
        try Self.requireMember(caller)
        guard Formats.isEmail(request.email) else { throw Problem.invalid(field: "/email", "must be an e-mail address") }
        return try await pool.withTenant(caller) { tx in
            let (role, locked) = try await lockForChange(id, caller: caller, on: tx)
            guard role.manages else { throw Problem.forbidden("Only the room's owners and moderators may invite.") }
            guard !locked.archived else { throw Self.archived }
            let title = try await tx.query("SELECT title FROM rooms WHERE id = \(id)").scalar(String.self)
            let expires = Date(timeIntervalSinceNow: configuration.invitationLifetime)
            let invitationID = try await tx.query(
                """
                INSERT INTO room_invitations (room_id, room_title, email, invited_by, expires_at)
                VALUES (\(id), \(title), \(request.email), \(caller.accountID), \(expires)) RETURNING id
                """
            ).scalar(UUID.self)
            try await tx.query(
                """
                INSERT INTO mail_outbox (institution_id, recipient, subject, body)
                VALUES (\(caller.institutionID), \(request.email), 'An invitation to a room on Accord',
                        \("You are invited to the room \"\(title)\" on Accord. Sign in to accept it: \(ClientLink.page("/rooms/invitations", base: configuration.publicBaseURL))\n"))
                """)
            try await Audit.record(
                "room.invitation_created", institutionID: caller.institutionID, actor: caller, targetType: "room", targetID: id.uuidString,
                detail: ["email": request.email], on: tx)
            return try await tx.query("SELECT \(RoomStore.invitationColumns) FROM room_invitations v WHERE v.id = \(invitationID)")
                .map(RoomStore.invitation)[0]
        }
    }

    /// The open invitations addressed to the caller.
    public func myInvitations(caller: Identity) async throws -> [RoomInvitation] {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            try await tx.query(
                """
                SELECT \(RoomStore.invitationColumns) FROM room_invitations v
                WHERE accord_email_key(v.email) = accord_current_email_key() AND v.accepted_at IS NULL AND v.revoked_at IS NULL
                  AND v.expires_at > now()
                ORDER BY v.created_at DESC LIMIT 200
                """
            ).map(RoomStore.invitation)
        }
    }

    /// Accepts an invitation addressed to the caller: they join the room as a member.
    public func accept(invitation: UUID, caller: Identity) async throws -> Room {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            guard let me = try await RoomStore.memberIdentity(caller.accountID, on: tx),
                let room = try await tx.query("SELECT accord_accept_room_invitation(\(invitation), \(me.name), \(me.institutionName))")
                    .scalar(UUID?.self)
            else { throw Problem.notFound("No open invitation with this id for you.") }
            try await Audit.record(
                "room.invitation_accepted", institutionID: caller.institutionID, actor: caller, targetType: "room", targetID: room.uuidString,
                on: tx)
            return try await RoomStore.find(room, caller: caller.accountID, on: tx)!
        }
    }

    // MARK: Messages

    public func messages(of id: UUID, after: Int64?, before: Int64?, query: String?, limit: Int, caller: Identity) async throws -> [RoomMessage] {
        try Self.requireMember(caller)
        if let query {
            var v = Validator()
            v.text(query, "q", 1...200)
            try v.validate()
        }
        return try await pool.withTenant(caller) { tx in
            guard try await tx.query("SELECT accord_room_role(\(id))").scalar(String?.self) != nil else { throw Self.notFound }
            if let query { return try await RoomStore.search(id, query: query, limit: limit, on: tx) }
            return try await RoomStore.messages(of: id, after: after, before: before, limit: limit, on: tx)
        }
    }

    /// What is wrong with a message to send, or nil.
    func sendProblem(clientID: String, body: String) -> (code: String, message: String)? {
        if clientID.isEmpty || clientID.utf8.count > 64 || !Formats.isSingleLine(clientID) {
            return ("invalid_client_id", "clientId must have 1 to 64 characters, on one line")
        }
        if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return ("empty_body", "the body is empty") }
        if body.utf8.count > configuration.maxBodyBytes { return ("body_too_large", "the body is over \(configuration.maxBodyBytes) bytes of UTF-8") }
        if !Formats.isMultiLine(body) { return ("invalid_body", "the body contains control characters") }
        return nil
    }

    /// Sends a message as the caller; a client id sent before answers the original ack.
    public func send(_ request: SendRequest, to id: UUID, caller: Identity) async throws -> MessageAck {
        try Self.requireMember(caller)
        if let problem = sendProblem(clientID: request.clientId, body: request.body) {
            throw Problem.invalid(field: problem.code == "invalid_client_id" ? "/clientId" : "/body", problem.message)
        }
        return try await Self.mapSendErrors {
            try await pool.withTenant(caller) { tx in try await RoomStore.send(id, clientID: request.clientId, body: request.body, on: tx) }
        }
    }

    static let archived = Problem.conflict("The room is archived: it is read-only.")

    /// The database's refusals of a send, as problems.
    static func mapSendErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PGError {
            switch error.sqlState {
            case "ACR04": throw notFound
            case "ACR09": throw archived
            case "ACR03": throw Problem.forbidden("You are muted in this room for now.")
            default: throw error
            }
        }
    }

    /// Edits (the author) or deletes (the author, owners and moderators) a message; every socket of
    /// the room hears of it.
    public func change(message seq: Int64, in id: UUID, newBody: String?, caller: Identity) async throws -> RoomMessage {
        try Self.requireMember(caller)
        if let newBody, let problem = sendProblem(clientID: "x", body: newBody) { throw Problem.invalid(field: "/body", problem.message) }
        return try await pool.withTenant(caller) { tx in
            let (role, locked) = try await lockForChange(id, caller: caller, on: tx)
            guard !locked.archived else { throw Self.archived }
            guard let message = try await RoomStore.message(seq, of: id, on: tx), !message.deleted else { throw Problem.notFound("No such message.") }
            let mine = message.author.id == caller.accountID
            if let newBody {
                guard mine else { throw Problem.forbidden("Only its author may edit a message.") }
                try await tx.query("UPDATE room_messages SET body = \(newBody), edited_at = now() WHERE room_id = \(id) AND seq = \(seq)")
                try await tx.query("SELECT pg_notify('accord_rooms', \(id.uuidString.lowercased() + " e \(seq)"))")
            } else {
                guard mine || role.manages else { throw Problem.forbidden("Only its author, owners and moderators may delete a message.") }
                try await tx.query("UPDATE room_messages SET deleted_at = now() WHERE room_id = \(id) AND seq = \(seq)")
                try await tx.query("SELECT pg_notify('accord_rooms', \(id.uuidString.lowercased() + " d \(seq)"))")
            }
            return try await RoomStore.message(seq, of: id, on: tx)!
        }
    }

    /// Moves the caller's read marker forward to `seq` (never back).
    public func markRead(_ seq: Int64, in id: UUID, caller: Identity) async throws {
        try await pool.withTenant(caller) { tx in
            let moved = try await tx.query(
                """
                UPDATE room_members SET last_read_seq = greatest(last_read_seq, least(\(seq), (SELECT last_seq FROM rooms WHERE id = \(id))))
                WHERE room_id = \(id) AND user_id = \(caller.accountID)
                """
            ).affectedRows
            guard moved == 1 else { throw Self.notFound }
        }
    }

    // MARK: Tickets

    /// A single-use ticket that opens the room's socket for the caller's session.
    public func ticket(for id: UUID, caller: Identity) async throws -> RoomTicket {
        try Self.requireMember(caller)
        let ticket = Secrets.newToken()
        let expires = Date(timeIntervalSinceNow: configuration.ticketLifetime)
        let expiresAt = try await pool.withTenant(caller) { tx in
            guard try await tx.query("SELECT accord_room_role(\(id))").scalar(String?.self) != nil else { throw Self.notFound }
            return try await tx.query(
                """
                INSERT INTO room_tickets (ticket_hash, room_id, user_id, session_hash, expires_at)
                VALUES (\(Data(Secrets.sha256(ticket.utf8))), \(id), \(caller.accountID), \(Data(caller.tokenHash)), \(expires))
                RETURNING \(Timestamp.seconds("expires_at"))
                """
            ).scalar(String.self)
        }
        return RoomTicket(ticket: ticket, expiresAt: expiresAt)
    }
}
