import AccordCore
import Foundation
import HTTPTypes
import Logging
import PGStore

/// Network administration of member institutions: admission decisions, tiers, the audit log.
public struct AdmissionService: Sendable {
    let pool: PGPool
    /// Told after every decision, since statuses and tiers are part of what sessions resolve to.
    let cache: IdentityCache?

    public init(pool: PGPool, cache: IdentityCache? = nil) {
        self.pool = pool
        self.cache = cache
    }

    public enum Decision: String, Sendable, CaseIterable {
        case approve, reject, suspend, reinstate

        /// The status an institution must have for this decision, and the one it gets.
        var transition: (from: String, to: String) {
            switch self {
            case .approve: ("pending", "active")
            case .reject: ("pending", "rejected")
            case .suspend: ("active", "suspended")
            case .reinstate: ("suspended", "active")
            }
        }

        var needsReason: Bool { self == .reject || self == .suspend }
    }

    public struct DecisionRequest: Codable, Sendable {
        public var reason: String?
    }

    public struct Summary: Codable, Sendable {
        public var id: UUID
        public var schac: String
        public var names: [LocalizedName]
        public var country: String
        public var type: String
        public var status: String
        public var tier: String
        public var claimed: Bool
        /// For a registration that claims an imported entry: that entry.
        public var claimOf: UUID?
        public var statusReason: String?
        public var createdAt: String
    }

    public struct Page<Item: Codable & Sendable>: Codable, Sendable {
        public var items: [Item]
        public var nextCursor: String?
    }

    static func requireNetworkAdmin(_ caller: Identity) throws {
        guard caller.isNetworkAdmin else { throw Problem.forbidden("Only network administrators may do this.") }
    }

    static let summaryColumns: PGQuery = """
        id, schac, names, country::text, type, status, tier, claimed, claim_of, status_reason,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        """

    static func summary(_ row: PGRow) throws -> Summary {
        let r = try row.decode((UUID, String, PGJSONB<[LocalizedName]>, String, String, String, String, Bool, UUID?, String?, String).self)
        return Summary(id: r.0, schac: r.1, names: r.2.value, country: r.3, type: r.4, status: r.5, tier: r.6, claimed: r.7, claimOf: r.8, statusReason: r.9, createdAt: r.10)
    }

    /// Institutions, newest first, optionally of one status; keyset-paged.
    public func list(status: String?, limit: Int, cursor: String?, caller: Identity) async throws -> Page<Summary> {
        try Self.requireNetworkAdmin(caller)
        if let status, !["pending", "active", "rejected", "suspended"].contains(status) {
            throw Problem.invalid(field: "status", "must be pending, active, rejected or suspended")
        }
        guard (1...100).contains(limit) else { throw Problem.invalid(field: "limit", "must be between 1 and 100") }
        let after = try cursor.map(Cursor.decode)
        return try await pool.withTenant(caller) { tx in
            var query: PGQuery = "SELECT \(Self.summaryColumns) FROM institutions WHERE true"
            if let status { query.append(" AND status = \(status)") }
            if let after { query.append(" AND (created_at, id) < (\(after.createdAt)::timestamptz, \(after.id))") }
            query.append(" ORDER BY created_at DESC, id DESC LIMIT \(limit + 1)")
            let rows = try await tx.query(query)
            let items = try rows.prefix(limit).map(Self.summary)
            let next = rows.count > limit ? items.last.map { Cursor(createdAt: $0.createdAt, id: $0.id).encoded } : nil
            return Page(items: items, nextCursor: next)
        }
    }

    /// Applies an admission decision. Approving a claim merges it into the imported entry it
    /// claims: the registrant's users move there and the entry becomes theirs.
    public func decide(_ decision: Decision, on id: UUID, reason: String?, caller: Identity) async throws -> Summary {
        try Self.requireNetworkAdmin(caller)
        let reason = reason?.trimmingCharacters(in: .whitespacesAndNewlines)
        if decision.needsReason, reason?.isEmpty ?? true { throw Problem.invalid(field: "/reason", "is required to \(decision.rawValue)") }
        if let reason, reason.count > 2000 { throw Problem.invalid(field: "/reason", "must have at most 2000 characters") }
        defer { cache?.invalidateAll() }  // after the transaction: this instance serves the change at once
        return try await pool.withTenant(caller) { tx in
            guard let current = try await tx.query("SELECT status, claim_of FROM institutions WHERE id = \(id) FOR UPDATE").first((String, UUID?).self) else {
                throw Problem.notFound("No such institution.")
            }
            let (from, to) = decision.transition
            guard current.0 == from else {
                throw Problem.conflict("Cannot \(decision.rawValue) an institution that is \(current.0).")
            }
            var target = id
            if decision == .approve, let entry = current.1 {
                try await mergeClaim(id, into: entry, on: tx)
                target = entry
            } else {
                try await tx.query("UPDATE institutions SET status = \(to), status_reason = \(reason), version = version + 1, updated_at = now() WHERE id = \(id)")
            }
            try await Audit.record("institution.\(decision.rawValue)", institutionID: target, actor: caller, targetType: "institution",
                                   targetID: target.uuidString, detail: ["reason": reason ?? "", "from": from, "to": to], on: tx)
            let rows = try await tx.query("SELECT \(Self.summaryColumns) FROM institutions WHERE id = \(target)")
            return try Self.summary(rows[0])
        }
    }

    private func mergeClaim(_ claim: UUID, into entry: UUID, on tx: PGConnection) async throws {
        try await tx.query("SELECT 1 FROM institutions WHERE id = \(entry) FOR UPDATE")
        // The registrant's own description of the institution wins over the imported one.
        try await tx.query("""
            UPDATE institutions e SET names = c.names, country = c.country, city = coalesce(c.city, e.city), type = c.type,
                acronym = coalesce(c.acronym, e.acronym), website = coalesce(c.website, e.website),
                claimed = true, status = 'active', status_reason = NULL, version = e.version + 1, updated_at = now()
            FROM institutions c WHERE e.id = \(entry) AND c.id = \(claim)
            """)
        try await tx.pipeline([
            "UPDATE users SET institution_id = \(entry) WHERE institution_id = \(claim)",
            "UPDATE sessions SET institution_id = \(entry) WHERE institution_id = \(claim)",
            "UPDATE invitations SET institution_id = \(entry) WHERE institution_id = \(claim)",
            "UPDATE institution_contacts SET institution_id = \(entry) WHERE institution_id = \(claim)",
            "DELETE FROM institutions WHERE id = \(claim)",
        ])
    }

    public struct TierRequest: Codable, Sendable {
        public var tier: String
    }

    public func setTier(_ tier: String, on id: UUID, caller: Identity) async throws -> Summary {
        try Self.requireNetworkAdmin(caller)
        guard ["member", "partner", "premium"].contains(tier) else { throw Problem.invalid(field: "/tier", "must be member, partner or premium") }
        defer { cache?.invalidateAll() }  // after the transaction: this instance serves the change at once
        return try await pool.withTenant(caller) { tx in
            guard let old = try await tx.query("SELECT tier FROM institutions WHERE id = \(id) FOR UPDATE").first(String.self) else {
                throw Problem.notFound("No such institution.")
            }
            try await tx.query("UPDATE institutions SET tier = \(tier), version = version + 1, updated_at = now() WHERE id = \(id)")
            try await Audit.record("institution.tier_changed", institutionID: id, actor: caller, targetType: "institution", targetID: id.uuidString,
                                   detail: ["from": old, "to": tier], on: tx)
            let rows = try await tx.query("SELECT \(Self.summaryColumns) FROM institutions WHERE id = \(id)")
            return try Self.summary(rows[0])
        }
    }

    public struct AuditEvent: Codable, Sendable {
        public var id: Int
        public var occurredAt: String
        public var action: String
        public var institutionId: UUID?
        public var actorUserId: UUID?
        public var actorAdminId: UUID?
        public var targetType: String?
        public var targetId: String?
        public var detail: [String: String]
        public var clientAddress: String?
    }

    /// The audit log, newest first; `cursor` is the last id seen.
    public func auditEvents(limit: Int, cursor: String?, caller: Identity) async throws -> Page<AuditEvent> {
        try Self.requireNetworkAdmin(caller)
        guard (1...100).contains(limit) else { throw Problem.invalid(field: "limit", "must be between 1 and 100") }
        var before = Int.max
        if let cursor {
            guard let value = Int(cursor), value > 0 else { throw Problem.badRequest("The cursor is not valid.") }
            before = value
        }
        let rows = try await pool.withTenant(caller) { tx in
            try await tx.query("""
                SELECT id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), action, institution_id,
                       actor_user_id, actor_admin_id, target_type, target_id, detail, client_address
                FROM audit_events WHERE id < \(before) ORDER BY id DESC LIMIT \(limit + 1)
                """)
        }
        let events = try rows.prefix(limit).map { row in
            let r = try row.decode((Int, String, String, UUID?, UUID?, UUID?, String?, String?, PGJSONB<[String: String]>, String?).self)
            return AuditEvent(id: r.0, occurredAt: r.1, action: r.2, institutionId: r.3, actorUserId: r.4, actorAdminId: r.5,
                              targetType: r.6, targetId: r.7, detail: r.8.value, clientAddress: r.9)
        }
        return Page(items: events, nextCursor: rows.count > limit ? events.last.map { String($0.id) } : nil)
    }
}

/// An opaque keyset cursor: the last item's creation time (as the API printed it, to the
/// microsecond) and id, base64url. A tampered cursor is a 400.
struct Cursor {
    var createdAt: String
    var id: UUID

    var encoded: String {
        Data("\(createdAt)|\(id.uuidString)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    static func decode(_ text: String) throws -> Cursor {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let raw = String(data: data, encoding: .utf8) else {
            throw Problem.badRequest("The cursor is not valid.")
        }
        let parts = raw.split(separator: "|")
        guard parts.count == 2, parts[0].count <= 40, parts[0].allSatisfy({ $0.isNumber || "-:.TZ".contains($0) }),
            let id = UUID(uuidString: String(parts[1]))
        else { throw Problem.badRequest("The cursor is not valid.") }
        return Cursor(createdAt: String(parts[0]), id: id)
    }
}
