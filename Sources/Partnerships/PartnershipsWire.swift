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
    /// The partnership's room (opened when the partner accepted): users of both parties join it
    /// with `POST /v1/partnerships/{id}/room`.
    public var roomId: UUID?
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

/// A meeting of the parties: when, what, who of both sides, and the minutes.
public struct Meeting: ResponseEncodable, Codable, Sendable {
    public var id: UUID
    public var startsAt: String
    public var agenda: String
    public var participants: [Participant]
    public var minutes: String?
    public var createdAt: String
}

public struct Participant: Codable, Sendable {
    public var institution: UUID
    public var name: String
    public var role: String?
}

/// `POST /v1/partnerships/{id}/meetings` and `PATCH …/meetings/{meetingId}` (every field optional there).
public struct MeetingInput: Codable, Sendable {
    public var startsAt: String?
    public var agenda: String?
    public var participants: [Participant]?
    public var minutes: String?
}

/// One party's internal note: the other party never sees it.
public struct Note: ResponseEncodable, Codable, Sendable {
    public var id: UUID
    public var body: String
    public var authorId: UUID?
    public var createdAt: String
}

public struct NoteInput: Codable, Sendable {
    public var body: String
}

/// `POST /v1/partnerships/{id}/kpi-reports`: a party's actual values for one period.
public struct KPIReportInput: Codable, Sendable {
    /// An academic year ("2027/2028") or a calendar year ("2028"), as each KPI's period says.
    public var period: String
    /// KPI key → actual value.
    public var values: [String: Double]
}

/// Targets against actuals, per KPI, period and party, for the agreement in effect.
public struct Assessment: ResponseEncodable, Codable, Sendable {
    public var version: Int
    public var kpis: [KPIAssessment]
}

public struct KPIAssessment: Codable, Sendable {
    public var key: String
    public var label: String
    public var target: Double
    public var period: AgreementTerms.KPIPeriod
    public var reports: [KPIActual]
}

public struct KPIActual: Codable, Sendable {
    public var institution: UUID
    public var period: String
    public var actual: Double
    public var belowTarget: Bool
    public var reportedAt: String
}

/// `POST /v1/partnerships/{id}/renew`: the new dates; the terms are the ones in effect, with their
/// academic years moved by as many years as the start.
public struct RenewalInput: Codable, Sendable {
    public var startDate: String
    public var endDate: String
}

/// `POST /v1/partnerships/{id}/terminate`.
public struct TerminationInput: Codable, Sendable {
    public var reason: String
}

/// How two versions differ, field by field (JSON pointers into the terms).
public struct AgreementDiff: ResponseEncodable, Codable, Sendable {
    public var from: Int
    public var to: Int
    public var changes: [Change]

    public struct Change: Codable, Sendable {
        public var path: String
        /// The value in `from` (absent: the field was added).
        public var before: JSONValue?
        /// The value in `to` (absent: the field was removed).
        public var after: JSONValue?
    }
}

/// Any JSON value, for diffs.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// An entry of an institution's activity feed: something the other party of a partnership did.
public struct ActivityEntry: Codable, Sendable {
    public var id: Int64
    public var partnershipId: UUID
    public var kind: String
    public var actorInstitution: UUID
    public var at: String
}
