import AccordCore
import Foundation
import PGStore

/// One institution as network administrators look at it: everything of `InstitutionSummary`, with
/// its users, its open partnerships, the rooms it created and its latest audit events.
public struct InstitutionDetail: Encodable, Sendable {
    public var summary: InstitutionSummary
    /// Its users, newest first (at most `listLimit`).
    public var users: [AdminUser]
    /// Its partnerships that are not over (invited, negotiating, active), newest first.
    public var openPartnerships: [PartnershipLine]
    /// The rooms its members created, newest first.
    public var rooms: [RoomLine]
    /// Its latest audit events, newest first.
    public var recentAuditEvents: [AuditEvent]

    /// How many users, partnerships, rooms and events the detail shows at most.
    static let listLimit = 100
    static let eventLimit = 20

    /// A partnership of the institution, as a line.
    public struct PartnershipLine: Codable, Sendable {
        public var id: UUID
        public var partner: UUID
        public var partnerName: String
        public var stage: String
        public var updatedAt: String
    }

    /// A room created by the institution's members, as a line.
    public struct RoomLine: Codable, Sendable {
        public var id: UUID
        public var title: String
        /// How many messages it holds.
        public var messages: Int
        public var archived: Bool
        public var createdAt: String
    }

    enum CodingKeys: String, CodingKey {
        case users, openPartnerships, rooms, recentAuditEvents
    }

    /// The summary's members, then the lists, in one JSON object.
    public func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(users, forKey: .users)
        try container.encode(openPartnerships, forKey: .openPartnerships)
        try container.encode(rooms, forKey: .rooms)
        try container.encode(recentAuditEvents, forKey: .recentAuditEvents)
    }

    /// Reads the lists of institution `id` (which exists) in the administrator's transaction.
    static func read(_ summary: InstitutionSummary, on tx: PGConnection) async throws -> InstitutionDetail {
        let id = summary.id
        let users = try await tx.query(
            "SELECT \(AdminUserStore.columns) WHERE u.institution_id = \(id) ORDER BY u.created_at DESC, u.id DESC LIMIT \(listLimit)"
        ).map(AdminUserStore.user)
        let partnerships = try await tx.query(
            """
            SELECT p.id, o.id, coalesce(o.names->0->>'value', o.schac), p.stage, \(Timestamp.seconds("p.updated_at"))
            FROM partnerships p JOIN institutions o ON o.id = CASE WHEN p.initiator_id = \(id) THEN p.partner_id ELSE p.initiator_id END
            WHERE (p.initiator_id = \(id) OR p.partner_id = \(id)) AND p.stage IN ('invited', 'negotiating', 'active')
            ORDER BY p.created_at DESC, p.id DESC LIMIT \(listLimit)
            """
        ).map { row in
            let r = try row.decode((UUID, UUID, String, String, String).self)
            return PartnershipLine(id: r.0, partner: r.1, partnerName: r.2, stage: r.3, updatedAt: r.4)
        }
        let rooms = try await tx.query(
            """
            SELECT id, title, last_seq, archived_at IS NOT NULL, \(Timestamp.seconds("created_at"))
            FROM rooms WHERE institution_id = \(id) ORDER BY created_at DESC, id DESC LIMIT \(listLimit)
            """
        ).map { row in
            let r = try row.decode((UUID, String, Int, Bool, String).self)
            return RoomLine(id: r.0, title: r.1, messages: r.2, archived: r.3, createdAt: r.4)
        }
        var filter = AuditFilter()
        filter.institution = id
        let events = try await AuditLog.events(filter, before: Int.max, limit: eventLimit, on: tx)
        return InstitutionDetail(summary: summary, users: users, openPartnerships: partnerships, rooms: rooms, recentAuditEvents: events)
    }
}
