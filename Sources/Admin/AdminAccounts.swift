import AccordCore
import AccordCrypto
import Foundation
import PGStore

/// A network administrator, as the others see them.
public struct NetworkAdmin: Codable, Sendable {
    public var id: UUID
    public var email: String
    public var name: String
    /// Whether they enrolled a second factor (TOTP).
    public var secondFactor: Bool
    public var createdAt: String
}

/// A new network administrator, as `POST /v1/admin/network-admins` takes them.
struct NewNetworkAdmin: Codable, Sendable {
    var email: String
    var name: String
}

/// A throttle counter (Schema/0010): sign-in attempts for an e-mail address from one client
/// address (`pair`), for an e-mail address from anywhere (`email`), from one client address for
/// addresses without an account (`address`), or registrations from one client address
/// (`registration`).
public struct SignInThrottle: Codable, Sendable {
    public var kind: String
    /// The e-mail address, as its counters key it (ASCII letters in lower case).
    public var email: String?
    public var address: String?
    public var failures: Int
    public var windowStart: String
    public var lastFailure: String?
}

extension AdmissionService {
    /// How long the link in a new administrator's welcome may be followed to choose a password.
    static let welcomeLinkLifetime: TimeInterval = 72 * 3600

    /// The SQL of an administrator as others see them, beside the decoding of its rows.
    static let networkAdminColumns: PGQuery = "id, email, name, second_factor, \(Timestamp.seconds("created_at")) FROM accord_network_admins()"

    static func networkAdmin(_ row: PGRow) throws -> NetworkAdmin {
        let r = try row.decode((UUID, String, String, Bool, String).self)
        return NetworkAdmin(id: r.0, email: r.1, name: r.2, secondFactor: r.3, createdAt: r.4)
    }

    /// The network's administrators, oldest first.
    public func networkAdmins(caller: Identity) async throws -> Page<NetworkAdmin> {
        try Self.requireNetworkAdmin(caller)
        let admins = try await pool.withTenant(caller) { tx in
            try await tx.query("SELECT \(Self.networkAdminColumns)").map(Self.networkAdmin)
        }
        return Page(items: admins, nextCursor: nil)
    }

    /// Adds a network administrator and mails them a link (valid 72 hours) to choose their
    /// password; 409 when the address has an account already.
    func addNetworkAdmin(_ new: NewNetworkAdmin, caller: Identity) async throws -> NetworkAdmin {
        try Self.requireNetworkAdmin(caller)
        var v = Validator()
        v.check(Formats.isEmail(new.email), "/email", "must be an e-mail address")
        v.text(new.name, "/name", 1...200)
        try v.validate()
        let token = Secrets.newToken()
        let body =
            "You are now an administrator of the Accord network. Open this link within 72 hours to choose your password:\n\n"
            + "\(ClientLink.page("/reset-password/\(token)", base: publicBaseURL))\n\nThen sign in with \(new.email). If the link has expired, ask for a new one from the sign-in page.\n"
        let admin = try await pool.withTenant(caller) { tx -> NetworkAdmin? in
            guard
                let id = try await tx.query(
                    """
                    SELECT accord_create_network_admin(\(new.email), \(new.name), \(Data(Secrets.sha256(token.utf8))),
                           \(Date(timeIntervalSinceNow: Self.welcomeLinkLifetime)), 'You are an Accord network administrator', \(body))
                    """
                ).scalar(UUID?.self)
            else { return nil }
            return try await tx.query("SELECT \(Self.networkAdminColumns) WHERE id = \(id)").first.map(Self.networkAdmin)
        }
        guard let admin else { throw Problem.conflict("This e-mail address has an account already.") }
        return admin
    }

    /// Removes a network administrator (their sessions end); 409 for the last one.
    func removeNetworkAdmin(_ id: UUID, caller: Identity) async throws {
        try Self.requireNetworkAdmin(caller)
        let outcome = try await pool.withTenant(caller) { tx in
            try await tx.query("SELECT accord_remove_network_admin(\(id))").scalar(String.self)
        }
        switch outcome {
        case "removed": identitiesChanged()
        case "last": throw Problem.conflict("This is the network's last administrator: add another before removing them.")
        default: throw Problem.notFound("No such network administrator.")
        }
    }

    /// A position in the list of throttles: the last key seen.
    struct ThrottlePosition: Codable {
        var key: String
    }

    /// The sign-in counters with failures in the last day, by key.
    public func throttles(limit: Int, cursor: String?, caller: Identity) async throws -> Page<SignInThrottle> {
        try Self.requireNetworkAdmin(caller)
        let after = try cursor.map { try Cursor.decode(ThrottlePosition.self, from: $0).key }
        let rows = try await pool.withTenant(caller) { tx in
            try await tx.query(
                """
                SELECT key, failures, \(Timestamp.seconds("window_start")), \(Timestamp.seconds("last_failure"))
                FROM accord_sign_in_throttles(\(after), \(limit + 1)::integer)
                """
            ).map { row in
                let (key, failures, start, last) = try row.decode((String, Int, String, String?).self)
                return (key: key, throttle: Self.throttle(key: key, failures: failures, windowStart: start, lastFailure: last))
            }
        }
        let more = rows.count > limit
        let items = rows.prefix(limit)
        return Page(items: items.map(\.throttle), nextCursor: more ? items.last.map { Cursor.encode(ThrottlePosition(key: $0.key)) } : nil)
    }

    /// A counter as its key names it (`pair:<e-mail> <address>`, `email:<e-mail>`, `address:<address>`).
    static func throttle(key: String, failures: Int, windowStart: String, lastFailure: String?) -> SignInThrottle {
        var throttle = SignInThrottle(kind: "", email: nil, address: nil, failures: failures, windowStart: windowStart, lastFailure: lastFailure)
        let colon = key.firstIndex(of: ":") ?? key.endIndex
        let kind = String(key[..<colon])
        let rest = colon < key.endIndex ? String(key[key.index(after: colon)...]) : ""
        throttle.kind = kind
        switch kind {
        case "pair":
            let space = rest.lastIndex(of: " ") ?? rest.endIndex
            throttle.email = String(rest[..<space])
            throttle.address = space < rest.endIndex ? String(rest[rest.index(after: space)...]) : nil
        case "email": throttle.email = rest
        case "register":
            throttle.kind = "registration"
            throttle.address = rest
        default: throttle.address = rest
        }
        return throttle
    }

    /// Clears the counters of an e-mail address, of a client address, or of the two together;
    /// how many were cleared. 422 when neither is named.
    public func clearThrottles(email: String?, address: String?, caller: Identity) async throws -> Int {
        try Self.requireNetworkAdmin(caller)
        var v = Validator()
        v.check(email != nil || address != nil, "email", "name an e-mail address, a client address (address), or both")
        if let email { v.check(!email.isEmpty && email.utf8.count <= 254 && Formats.isSingleLine(email), "email", "must be an e-mail address") }
        if let address {
            v.check(
                !address.isEmpty && address.utf8.count <= 100 && !address.contains(" ") && Formats.isSingleLine(address), "address",
                "must be a client address")
        }
        try v.validate()
        return try await pool.withTenant(caller) { tx in
            try await tx.query("SELECT accord_clear_sign_in_throttles(\(email), \(address))").scalar(Int.self)
        }
    }
}
