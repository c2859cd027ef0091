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
    public var tier: Tier
    public var claimed: Bool
    /// For a registration that claims an imported entry: that entry.
    public var claimOf: UUID?
    public var statusReason: String?
    public var createdAt: String
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
