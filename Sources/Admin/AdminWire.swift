import AccordCore
import Foundation

/// An institution as network administrators list it.
public struct InstitutionSummary: Codable, Sendable {
    public var id: UUID
    public var schac: String
    public var names: [LocalizedName]
    public var country: String
    public var type: String
    public var status: InstitutionStatus
    /// One of the network's tiers (`GET /v1/admin/tiers`).
    public var tier: String
    public var claimed: Bool
    /// For a registration that claims an imported entry: that entry.
    public var claimOf: UUID?
    public var statusReason: String?
    public var createdAt: String
    /// The institution's first admin: for a registration, who registered it.
    public var registrant: Registrant?
    /// Whether the registrant proved the SCHAC domain (see `DomainProof`).
    public var domainProof: DomainProof
    /// For a pending registration: the other pending registrations of the same SCHAC code, oldest
    /// first (competing claims, side by side).
    public var competingRegistrations: [UUID]
    /// For a pending registration: the active or suspended institution that holds its SCHAC code
    /// already (approval is refused while it does).
    public var schacHeldBy: UUID?
}

/// Who registered an institution, as its reviewers see them.
public struct Registrant: Codable, Sendable {
    public var id: UUID
    public var email: String
    public var name: String
    /// Whether the address was proven by the link mailed to it.
    public var emailVerified: Bool
}

/// How far a registrant has proven that the institution's internet domain is theirs.
public enum DomainProof: String, Codable, Sendable {
    /// The registrant's address is at the SCHAC domain (or a subdomain) and verified.
    case verified
    /// The address is at the domain, not verified yet.
    case unverified
    /// The address is elsewhere (or there is no registrant): the domain cannot be proven.
    case none
}

/// One entry of the audit log.
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

/// The body of an admission decision: a reason, required to reject or suspend.
struct DecisionRequest: Codable, Sendable {
    var reason: String?
}

/// The body of `PATCH /v1/admin/institutions/{id}`.
struct TierRequest: Codable, Sendable {
    var tier: String
}
