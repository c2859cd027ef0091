import Foundation
import PGStore

/// Who is calling: a user of an institution, or a network administrator (outside any institution).
public struct Identity: Sendable, Equatable {
    public let accountID: UUID
    public let institutionID: UUID?
    public let role: InstitutionRole?
    public let isNetworkAdmin: Bool
    /// `pending` or `active` for institution users; nil for network admins.
    public let institutionStatus: InstitutionStatus?
    /// The SHA-256 of the bearer token that authenticated the request.
    public let tokenHash: [UInt8]

    public init(
        accountID: UUID, institutionID: UUID?, role: InstitutionRole?, isNetworkAdmin: Bool, institutionStatus: InstitutionStatus?, tokenHash: [UInt8]
    ) {
        self.accountID = accountID
        self.institutionID = institutionID
        self.role = role
        self.isNetworkAdmin = isNetworkAdmin
        self.institutionStatus = institutionStatus
        self.tokenHash = tokenHash
    }

    /// The tenant context for row-level security, applied with `set_config(…, true)` in each
    /// request transaction.
    public var settings: [(String, String)] {
        [
            ("accord.institution_id", institutionID?.uuidString ?? ""),
            ("accord.user_id", accountID.uuidString),
            ("accord.is_admin", isNetworkAdmin ? "true" : "false"),
        ]
    }

    public var isInstitutionAdmin: Bool { role == .admin }
}

extension PGPool {
    /// Runs one read-only statement as `identity` in a single round trip: `BEGIN READ ONLY`, the
    /// tenant settings, the statement and `COMMIT` go out as one pipeline.
    public func readAsTenant(_ identity: Identity, _ query: PGQuery) async throws -> PGRows {
        try await pipeline(["BEGIN READ ONLY", .setConfig(identity.settings), query, "COMMIT"])[2]
    }

    /// Runs several read-only statements as `identity` in a single round trip, with `settings` (more
    /// transaction-local settings) besides the tenant's; their results in order.
    public func readAsTenant(_ identity: Identity, settings: [(String, String)] = [], _ queries: [PGQuery]) async throws -> [PGRows] {
        let results = try await pipeline(["BEGIN READ ONLY", .setConfig(identity.settings + settings)] + queries + ["COMMIT"])
        return Array(results[2..<(2 + queries.count)])
    }

    /// Runs `body` in a transaction that carries `identity`'s tenant context.
    @discardableResult
    public func withTenant<Result: Sendable>(
        _ identity: Identity,
        _ body: (PGConnection) async throws -> Result
    ) async throws -> Result {
        try await withTransaction(settings: identity.settings, body)
    }
}

extension Identity {
    /// For what only users of an admitted institution do (rooms, partnerships): network
    /// administrators and users without an institution get `notFound` (they have none of these);
    /// users of an institution not admitted yet get 403 saying `what` opens once it is.
    public func requireAdmittedInstitution(notFound: Problem, what: String) throws {
        guard !isNetworkAdmin, institutionID != nil else { throw notFound }
        guard institutionStatus == .active else {
            throw Problem.forbidden("Your institution is not admitted yet; \(what) once the network's administrators approve it.")
        }
    }
}
