import AccordCore
import Foundation
import Hummingbird

/// Where a partnership stands. `invited` (a message of intent) becomes `negotiating` when the
/// partner accepts, or ends `declined` or `withdrawn`; `active` once both parties approved the same
/// agreement version; `terminated` or `expired` at its end.
public enum PartnershipStage: String, Codable, Sendable, CaseIterable {
    case invited, declined, withdrawn, negotiating, active, terminated, expired
}

/// One party of a partnership, as both parties see it.
public struct Party: Codable, Sendable {
    public var id: UUID
    public var name: String
    /// The SCHAC code (the institution's heiId in Erasmus Without Paper).
    public var schac: String
}

/// A partnership, as either party sees it.
public struct Partnership: ResponseEncodable, Codable, Sendable {
    public var id: UUID
    public var stage: PartnershipStage
    /// Who sent the message of intent.
    public var initiator: Party
    /// To whom.
    public var partner: Party
    public var message: String
    public var activities: [Activity]
    /// The agreement version both parties approved last: the one in effect.
    public var inEffectVersion: Int?
    /// The latest agreement version (a draft when it is not the one in effect).
    public var latestVersion: Int?
    /// The end date of the agreement in effect.
    public var endsOn: String?
    public var createdAt: String
    public var updatedAt: String
}

/// A message of intent: `POST /v1/partnerships`.
public struct PartnershipProposal: Codable, Sendable {
    public var partner: UUID
    public var message: String
    public var activities: [String]
}

/// One entry of a partnership's timeline.
public struct TimelineEvent: Codable, Sendable {
    public var id: Int64
    public var at: String
    public var actor: TimelineActor
    /// `partnership.proposed`, `partnership.accepted`, `agreement.drafted`, `agreement.approved`, …
    public var kind: String
    public var detail: [String: String]
}

public struct TimelineActor: Codable, Sendable {
    public var id: UUID?
    public var name: String
    public var institution: UUID
}

/// One agreement version: immutable terms and their hash.
public struct AgreementVersion: ResponseEncodable, Codable, Sendable {
    public var version: Int
    /// SHA-256 (64 hex digits) of the canonical terms, contacts excluded.
    public var hash: String
    public var terms: AgreementTerms
    public var createdAt: String
    public var createdByInstitution: UUID
    /// The parties that approved this version's hash.
    public var approvals: [Approval]
    /// Whether this version is the one in effect.
    public var inEffect: Bool
}

public struct Approval: Codable, Sendable {
    public var institution: UUID
    public var approvedAt: String
}

/// `POST /v1/partnerships/{id}/agreement/approvals`.
public struct ApprovalRequest: Codable, Sendable {
    public var hash: String
}
