import AccordCore
import Foundation
import PGStore

/// The SQL of admission and the audit log, each statement beside the decoding of its rows. Every
/// function runs on a transaction that carries a network administrator's context.
enum AdmissionStore {
    static let summaryColumns: PGQuery = """
        id, schac, names, country::text, type, status, tier, claimed, claim_of, status_reason, \(Timestamp.precise("created_at"))
        """

    static func summary(_ row: PGRow) throws -> InstitutionSummary {
        let r = try row.decode((UUID, String, PGJSONB<[LocalizedName]>, String, String, String, String, Bool, UUID?, String?, String).self)
        guard let status = InstitutionStatus(rawValue: r.5), let tier = Tier(rawValue: r.6) else {
            throw PGError(.invalidValue, message: "institution \(r.0) has status \(r.5) and tier \(r.6)")
        }
        return InstitutionSummary(
            id: r.0, schac: r.1, names: r.2.value, country: r.3, type: r.4, status: status, tier: tier, claimed: r.7, claimOf: r.8,
            statusReason: r.9, createdAt: r.10)
    }

    /// Up to `limit` institutions after `position`, newest first, optionally of one status.
    static func list(
        status: InstitutionStatus?, after position: CreatedPosition?, limit: Int, on tx: PGConnection
    ) async throws -> [InstitutionSummary] {
        var query: PGQuery = "SELECT \(summaryColumns) FROM institutions WHERE true"
        if let status { query.append(" AND status = \(status.rawValue)") }
        if let position { query.append(" AND (created_at, id) < (\(position.createdAt)::timestamptz, \(position.id))") }
        query.append(" ORDER BY created_at DESC, id DESC LIMIT \(limit)")
        return try await tx.query(query).map(summary)
    }

    static func find(_ id: UUID, on tx: PGConnection) async throws -> InstitutionSummary {
        try summary(try await tx.query("SELECT \(summaryColumns) FROM institutions WHERE id = \(id)")[0])
    }

    /// The institution's status and the entry it claims, locked for the decision; nil if none.
    static func lockStatus(_ id: UUID, on tx: PGConnection) async throws -> (status: String, claimOf: UUID?)? {
        try await tx.query("SELECT status, claim_of FROM institutions WHERE id = \(id) FOR UPDATE").first((String, UUID?).self)
    }

    static func setStatus(_ id: UUID, to status: InstitutionStatus, reason: String?, on tx: PGConnection) async throws {
        try await tx.query(
            """
            UPDATE institutions SET status = \(status.rawValue), status_reason = \(reason), version = version + 1, updated_at = now() WHERE id = \(id)
            """)
    }

    /// Merges the registration `claim` into the imported `entry` it claims: the registrant's own
    /// description wins, and their users, sessions, invitations and contacts move to the entry.
    static func mergeClaim(_ claim: UUID, into entry: UUID, on tx: PGConnection) async throws {
        try await tx.query("SELECT 1 FROM institutions WHERE id = \(entry) FOR UPDATE")
        try await tx.query(
            """
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

    /// The institution's tier, locked for a change; nil if there is no such institution.
    static func lockTier(_ id: UUID, on tx: PGConnection) async throws -> String? {
        try await tx.query("SELECT tier FROM institutions WHERE id = \(id) FOR UPDATE").first(String.self)
    }

    static func setTier(_ id: UUID, to tier: Tier, on tx: PGConnection) async throws {
        try await tx.query("UPDATE institutions SET tier = \(tier.rawValue), version = version + 1, updated_at = now() WHERE id = \(id)")
    }

    /// Up to `limit` audit events before the event `before`, newest first.
    static func auditEvents(before: Int, limit: Int, on tx: PGConnection) async throws -> [AuditEvent] {
        try await tx.query(
            """
            SELECT id, \(Timestamp.precise("occurred_at")), action, institution_id,
                   actor_user_id, actor_admin_id, target_type, target_id, detail, client_address
            FROM audit_events WHERE id < \(before) ORDER BY id DESC LIMIT \(limit)
            """
        ).map { row in
            let r = try row.decode((Int, String, String, UUID?, UUID?, UUID?, String?, String?, PGJSONB<[String: String]>, String?).self)
            return AuditEvent(
                id: r.0, occurredAt: r.1, action: r.2, institutionId: r.3, actorUserId: r.4, actorAdminId: r.5, targetType: r.6,
                targetId: r.7, detail: r.8.value, clientAddress: r.9)
        }
    }
}
