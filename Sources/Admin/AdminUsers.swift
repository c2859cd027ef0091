import AccordCore
import Foundation
import PGStore

/// A user account as the network's administrators see it.
public struct AdminUser: Codable, Sendable {
    public var id: UUID
    public var email: String
    public var name: String
    /// The user's institution.
    public var institution: UUID
    public var institutionName: String
    public var role: InstitutionRole
    /// `active` or `disabled`.
    public var status: String
    public var createdAt: String
}

extension AdmissionService {
    /// The network's user accounts, newest first, by words of an e-mail address or a name, an
    /// institution, a role and a status; 422 naming each filter value that is not valid.
    public func users(parameters: [String: String], limit: Int, cursor: String?, caller: Identity) async throws -> Page<AdminUser> {
        try Self.requireNetworkAdmin(caller)
        var v = Validator()
        var query: PGQuery = "SELECT \(AdminUserStore.columns) WHERE true"
        if let text = parameters["q"] {
            v.text(text, "q", 1...100)
            let pattern =
                "%"
                + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            query.append(" AND (u.email ILIKE \(pattern) OR u.name ILIKE \(pattern))")
        }
        if let text = parameters["institution"] {
            let id = UUID(uuidString: text)
            v.check(id != nil, "institution", "must be an institution's id")
            if let id { query.append(" AND u.institution_id = \(id)") }
        }
        if let text = parameters["role"] {
            v.check(InstitutionRole(rawValue: text) != nil, "role", "must be admin, staff or faculty")
            query.append(" AND u.role = \(text)")
        }
        if let text = parameters["status"] {
            v.check(text == "active" || text == "disabled", "status", "must be active or disabled")
            query.append(text == "active" ? " AND u.disabled_at IS NULL" : " AND u.disabled_at IS NOT NULL")
        }
        try v.validate()
        if let position = try cursor.map({ try Cursor.decode(CreatedPosition.self, from: $0) }) {
            query.append(" AND (u.created_at, u.id) < (\(position.createdAt)::timestamptz, \(position.id))")
        }
        query.append(" ORDER BY u.created_at DESC, u.id DESC LIMIT \(limit + 1)")
        let fetched = try await pool.withTenant(caller) { tx in try await tx.query(query).map(AdminUserStore.user) }
        return Page(fetched: fetched, limit: limit) { CreatedPosition(createdAt: $0.createdAt, id: $0.id) }
    }

    /// Disables (ending its sessions and sockets) or enables a user account.
    public func setDisabled(_ disabled: Bool, user id: UUID, caller: Identity) async throws -> AdminUser {
        try Self.requireNetworkAdmin(caller)
        let user = try await pool.withTenant(caller) { tx -> AdminUser in
            guard try await tx.query("SELECT accord_set_account_disabled(\(id), \(disabled))").scalar(Bool.self),
                let user = try await tx.query("SELECT \(AdminUserStore.columns) WHERE u.id = \(id)").first.map(AdminUserStore.user)
            else { throw Problem.notFound("No such user.") }
            return user
        }
        identitiesChanged()
        return user
    }
}

/// The SQL of user accounts for administrators, beside the decoding of its rows.
enum AdminUserStore {
    static let columns: PGQuery = """
        u.id, u.email, u.name, u.institution_id, coalesce(i.names->0->>'value', i.schac), u.role,
        CASE WHEN u.disabled_at IS NULL THEN 'active' ELSE 'disabled' END, \(Timestamp.precise("u.created_at"))
        FROM users u JOIN institutions i ON i.id = u.institution_id
        """

    static func user(_ row: PGRow) throws -> AdminUser {
        let r = try row.decode((UUID, String, String, UUID, String, String, String, String).self)
        return AdminUser(
            id: r.0, email: r.1, name: r.2, institution: r.3, institutionName: r.4, role: InstitutionRole(rawValue: r.5) ?? .faculty, status: r.6,
            createdAt: r.7)
    }
}
