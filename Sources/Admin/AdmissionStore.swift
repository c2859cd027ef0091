import AccordCore
import Foundation
import PGStore

/// The SQL of admission and the audit log, each statement beside the decoding of its rows. Every
/// function runs on a transaction that carries a network administrator's context.
enum AdmissionStore {
    /// The summary's columns over `institutions i` joined with its first admin `r` (`summarySource`).
    static let summaryColumns: PGQuery = """
        i.id, i.schac, i.names, i.country::text, i.type, i.status, i.tier, i.claimed, i.claim_of, i.status_reason,
        \(Timestamp.precise("i.created_at")), r.id, r.email, r.name, r.email_verified_at IS NOT NULL,
        coalesce(accord_email_at_domain(r.email, i.schac), false),
        CASE WHEN i.status = 'pending' THEN ARRAY(
            SELECT c.id FROM institutions c WHERE c.schac = i.schac AND c.status = 'pending' AND c.id <> i.id ORDER BY c.created_at, c.id)
        ELSE '{}' END,
        CASE WHEN i.status = 'pending' THEN (
            SELECT h.id FROM institutions h
            WHERE h.schac = i.schac AND h.claim_of IS NULL AND h.claimed AND h.status IN ('active', 'suspended') AND h.id <> i.id)
        END
        """

    static let summarySource: PGQuery = """
        institutions i LEFT JOIN LATERAL (
            SELECT u.id, u.email, u.name, u.email_verified_at FROM users u
            WHERE u.institution_id = i.id AND u.role = 'admin' ORDER BY u.created_at, u.id LIMIT 1) r ON true
        """

    static func summary(_ row: PGRow) throws -> InstitutionSummary {
        let r = try row.decode((UUID, String, PGJSONB<[LocalizedName]>, String, String, String, String, Bool, UUID?, String?, String).self)
        let (registrantID, email, name, verified, atDomain, competing, heldBy) = try row.decode(
            (UUID?, String?, String?, Bool, Bool, [UUID], UUID?).self, from: 11)
        guard let status = InstitutionStatus(rawValue: r.5) else {
            throw PGError(.invalidValue, message: "institution \(r.0) has status \(r.5) and tier \(r.6)")
        }
        var registrant: Registrant?
        if let registrantID, let email, let name { registrant = Registrant(id: registrantID, email: email, name: name, emailVerified: verified) }
        return InstitutionSummary(
            id: r.0, schac: r.1, names: r.2.value, country: r.3, type: r.4, status: status, tier: r.6, claimed: r.7, claimOf: r.8,
            statusReason: r.9, createdAt: r.10, registrant: registrant,
            domainProof: !atDomain ? .none : verified ? .verified : .unverified, competingRegistrations: competing, schacHeldBy: heldBy)
    }

    /// Up to `limit` institutions after `position`, newest first, optionally of one status.
    /// The filters of the administrators' list of institutions.
    struct ListFilter {
        var status: InstitutionStatus?
        var tier: String?
        var country: String?
        /// A UN M49 region, sub-region or intermediate-region code.
        var region: String?
        /// Words of a name or a SCHAC code (case-insensitive substring).
        var query: String?
        var oldestFirst = false
    }

    static func list(_ filter: ListFilter, after position: CreatedPosition?, limit: Int, on tx: PGConnection) async throws -> [InstitutionSummary] {
        var query: PGQuery = "SELECT \(summaryColumns) FROM \(summarySource) WHERE true"
        if let status = filter.status { query.append(" AND i.status = \(status.rawValue)") }
        if let tier = filter.tier { query.append(" AND i.tier = \(tier)") }
        if let country = filter.country { query.append(" AND i.country = \(country)") }
        if let region = filter.region {
            query.append(
                """
                 AND i.country IN (SELECT c.code FROM countries c
                                   WHERE \(region) IN (c.region_code, c.sub_region_code, c.intermediate_region_code))
                """)
        }
        if let text = filter.query {
            let pattern =
                "%"
                + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            query.append(
                " AND (i.schac ILIKE \(pattern) OR EXISTS (SELECT 1 FROM jsonb_array_elements(i.names) n WHERE n->>'value' ILIKE \(pattern)))")
        }
        let order = filter.oldestFirst ? "ASC" : "DESC"
        if let position {
            query.append(
                filter.oldestFirst
                    ? " AND (i.created_at, i.id) > (\(position.createdAt)::timestamptz, \(position.id))"
                    : " AND (i.created_at, i.id) < (\(position.createdAt)::timestamptz, \(position.id))")
        }
        query.append(PGQuery(unsafeSQL: " ORDER BY i.created_at \(order), i.id \(order)"))
        query.append(" LIMIT \(limit)")
        return try await tx.query(query).map(summary)
    }

    static func find(_ id: UUID, on tx: PGConnection) async throws -> InstitutionSummary {
        try summary(try await tx.query("SELECT \(summaryColumns) FROM \(summarySource) WHERE i.id = \(id)")[0])
    }

    /// The institution's status, SCHAC code and the entry it claims, locked for the decision; nil if
    /// none.
    static func lockStatus(_ id: UUID, on tx: PGConnection) async throws -> (status: String, schac: String, claimOf: UUID?)? {
        try await tx.query("SELECT status, schac, claim_of FROM institutions WHERE id = \(id) FOR UPDATE").first((String, String, UUID?).self)
    }

    static func setStatus(_ id: UUID, to status: InstitutionStatus, reason: String?, on tx: PGConnection) async throws {
        try await tx.query(
            """
            UPDATE institutions SET status = \(status.rawValue), status_reason = \(reason), version = version + 1, updated_at = now() WHERE id = \(id)
            """)
    }

    /// Merges the registration `claim` into the imported `entry` it claims: the registrant's own
    /// description wins, and their users, sessions, invitations, contacts and unsent mail move to
    /// the entry (`accord_merge_claim`: those rows are the registrant's tenant's).
    static func mergeClaim(_ claim: UUID, into entry: UUID, on tx: PGConnection) async throws {
        try await tx.query("SELECT 1 FROM institutions WHERE id = \(entry) FOR UPDATE")
        try await tx.query(
            """
            UPDATE institutions e SET names = c.names, country = c.country, city = coalesce(c.city, e.city), type = c.type,
                acronym = coalesce(c.acronym, e.acronym), website = coalesce(c.website, e.website),
                claimed = true, status = 'active', status_reason = NULL, version = e.version + 1, updated_at = now()
            FROM institutions c WHERE e.id = \(entry) AND c.id = \(claim)
            """)
        try await tx.query("SELECT accord_merge_claim(\(claim), \(entry))")
    }

    /// Rejects the pending registrations of `schac` other than `except`, once one was approved;
    /// returns their ids.
    static func rejectCompeting(schac: String, except: UUID, reason: String, on tx: PGConnection) async throws -> [UUID] {
        try await tx.query(
            """
            UPDATE institutions SET status = 'rejected', status_reason = \(reason), version = version + 1, updated_at = now()
            WHERE schac = \(schac) AND status = 'pending' AND id <> \(except) RETURNING id
            """
        ).decode(UUID.self)
    }

    /// The institution's tier, locked for a change; nil if there is no such institution.
    static func lockTier(_ id: UUID, on tx: PGConnection) async throws -> String? {
        try await tx.query("SELECT tier FROM institutions WHERE id = \(id) FOR UPDATE").first(String.self)
    }

    static func setTier(_ id: UUID, to tier: String, on tx: PGConnection) async throws {
        try await tx.query("UPDATE institutions SET tier = \(tier), version = version + 1, updated_at = now() WHERE id = \(id)")
    }

    /// Puts a mail to each admin of the institution (not disabled) in the outbox.
    static func mailAdmins(of institution: UUID, _ mail: (subject: String, body: String), on tx: PGConnection) async throws {
        try await tx.query(
            """
            INSERT INTO mail_outbox (institution_id, recipient, subject, body)
            SELECT \(institution), u.email, \(mail.subject), \(mail.body) FROM users u
            WHERE u.institution_id = \(institution) AND u.role = 'admin' AND u.disabled_at IS NULL
            """)
    }
}
