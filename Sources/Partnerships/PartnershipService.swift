import AccordCore
import Foundation
import Logging
import PGStore

/// Partnerships between two institutions: the message of intent, its answer, agreement versions
/// and their approval. Each change runs in one transaction as the caller, appends to the timeline
/// both parties read, and tells the other party (its activity feed).
public struct PartnershipService: Sendable {
    let pool: PGPool
    let reference: ReferenceData

    public init(pool: PGPool, reference: ReferenceData) {
        self.pool = pool
        self.reference = reference
    }

    static let notFound = Problem.notFound("No such partnership.")

    /// Partnerships are for users of active institutions (network administrators read them
    /// through the administration API).
    static func requireMember(_ caller: Identity) throws {
        try caller.requireAdmittedInstitution(notFound: notFound, what: "partnerships open")
    }

    /// Proposing, answering and drafting are for institution admins and staff, not faculty.
    static func requireStaff(_ caller: Identity, to action: String) throws {
        guard caller.role == .admin || caller.role == .staff else {
            throw Problem.forbidden("Only your institution's admins and staff may \(action).")
        }
    }

    static func wrongStage(_ stage: PartnershipStage, _ action: String) -> Problem {
        Problem.conflict("The partnership is \(stage.rawValue): it cannot be \(action) now.")
    }

    // MARK: Message of intent and its answer

    public func propose(_ proposal: PartnershipProposal, caller: Identity) async throws -> Partnership {
        try Self.requireMember(caller)
        try Self.requireStaff(caller, to: "propose partnerships")
        var v = Validator()
        v.text(proposal.message, "/message", 1...5000, singleLine: false)
        if v.list(proposal.activities.count, "/activities", 1...8) {
            for (n, activity) in proposal.activities.enumerated() {
                v.check(
                    Activity(rawValue: activity) != nil, "/activities/\(n)",
                    "must be one of \(Activity.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            v.check(Set(proposal.activities).count == proposal.activities.count, "/activities", "lists an activity twice")
        }
        v.check(proposal.partner != caller.institutionID, "/partner", "must be another institution than yours")
        try v.validate()
        return try await pool.withTenant(caller) { tx in
            guard let partner = try await PartnershipStore.institution(proposal.partner, on: tx), partner.status == "active" else {
                throw Problem.invalid(field: "/partner", "must be an active institution of the network")
            }
            let id = UUID()
            do {
                try await tx.query(
                    """
                    INSERT INTO partnerships (id, initiator_id, partner_id, message, activities, created_by)
                    VALUES (\(id), \(caller.institutionID!), \(proposal.partner), \(proposal.message), \(proposal.activities), \(caller.accountID))
                    """)
            } catch let error as PGError where error.sqlState == "23505" {
                throw Problem.conflict("Your institution already has an open partnership with this one; continue that one.")
            }
            try await PartnershipStore.record(
                "partnership.proposed", in: id, by: caller, detail: ["activities": proposal.activities.joined(separator: ",")],
                notify: proposal.partner, on: tx)
            return try await PartnershipStore.find(id, on: tx)!
        }
    }

    public enum Answer: String, Sendable {
        case accept, decline, withdraw
    }

    /// The partner accepts (negotiating) or declines; the initiator withdraws. Only while invited.
    public func answer(_ answer: Answer, _ id: UUID, caller: Identity) async throws -> Partnership {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            let mine = caller.institutionID!
            let isPartner = locked.partner == mine
            try Self.requireStaff(caller, to: "\(answer.rawValue) messages of intent")
            switch answer {
            case .accept, .decline:
                guard isPartner else { throw Problem.forbidden("Only the institution the message of intent was sent to may \(answer.rawValue) it.") }
            case .withdraw:
                guard !isPartner else { throw Problem.forbidden("Only the institution that sent the message of intent may withdraw it.") }
            }
            let past = ["accept": "accepted", "decline": "declined", "withdraw": "withdrawn"][answer.rawValue]!
            guard locked.stage == .invited else { throw Self.wrongStage(locked.stage, past) }
            let stage: PartnershipStage = answer == .accept ? .negotiating : answer == .decline ? .declined : .withdrawn
            try await tx.query("UPDATE partnerships SET stage = \(stage.rawValue) WHERE id = \(id)")
            if answer == .accept { _ = try await tx.query("SELECT accord_open_partnership_room(\(id))") }
            try await PartnershipStore.record(
                "partnership.\(past)", in: id, by: caller, notify: isPartner ? locked.initiator : locked.partner, on: tx)
            return try await PartnershipStore.find(id, on: tx)!
        }
    }

    // MARK: Reading

    public func partnership(_ id: UUID, caller: Identity) async throws -> Partnership {
        try Self.requireMember(caller)
        guard let found = try await pool.withTenant(caller, { tx in try await PartnershipStore.find(id, on: tx) }) else { throw Self.notFound }
        return found
    }

    public func partnerships(
        stage: PartnershipStage?, modifiedSince: String?, dueForRenewal: Bool, limit: Int, cursor: String?, caller: Identity
    ) async throws -> Page<Partnership> {
        try Self.requireMember(caller)
        let after = try cursor.map { try Cursor.decode(CreatedPosition.self, from: $0) }
        let filter = PartnershipStore.Filter(stage: stage, modifiedSince: modifiedSince, dueForRenewal: dueForRenewal)
        let fetched = try await pool.withTenant(caller) { tx in
            try await PartnershipStore.list(filter, after: after, limit: limit + 1, on: tx)
        }
        return Page(fetched: fetched, limit: limit) { CreatedPosition(createdAt: $0.createdAt, id: $0.id) }
    }

    public func timeline(of id: UUID, after: Int64?, limit: Int, caller: Identity) async throws -> Page<TimelineEvent> {
        let fetched = try await asParty(id, caller: caller) { tx in
            try await PartnershipStore.timeline(of: id, after: after, limit: limit + 1, on: tx)
        }
        return Page(fetched: fetched, limit: limit) { TimelinePosition(after: $0.id) }
    }

    struct TimelinePosition: Codable { var after: Int64 }

    /// The `after` of a timeline cursor.
    public static func timelineAfter(_ cursor: String?) throws -> Int64? {
        try cursor.map { try Cursor.decode(TimelinePosition.self, from: $0).after }
    }

    // MARK: Agreement versions

    /// A new immutable version of the agreement's terms (admins and staff of a party, while
    /// negotiating or active).
    public func draft(
        _ terms: AgreementTerms, for id: UUID, caller: Identity, kind: String = "agreement.drafted"
    ) async throws -> AgreementVersion {
        try Self.requireMember(caller)
        let lists = try await reference.lists()
        return try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            try Self.requireStaff(caller, to: "draft agreements")
            guard locked.stage == .negotiating || locked.stage == .active else { throw Self.wrongStage(locked.stage, "given an agreement") }
            try terms.validate(parties: [locked.initiator, locked.partner], lists: lists)
            let normalised = terms.normalised
            let hash = terms.hash
            let version = (try await PartnershipStore.latestVersion(of: id, on: tx)?.version ?? 0) + 1
            try await PartnershipStore.insertVersion(normalised, hash: hash, version: version, of: id, caller: caller, on: tx)
            let other = locked.initiator == caller.institutionID ? locked.partner : locked.initiator
            try await PartnershipStore.record(
                kind, in: id, by: caller, detail: ["version": "\(version)", "hash": hash], notify: other, on: tx)
            return try await PartnershipStore.versions(of: id, only: version, on: tx)[0]
        }
    }

    public func versions(of id: UUID, caller: Identity) async throws -> [AgreementVersion] {
        try await asParty(id, caller: caller) { tx in
            try await PartnershipStore.versions(of: id, on: tx)
        }
    }

    /// An institution admin of a party approves the latest version by its hash; once both parties
    /// approved the same hash, that version is in effect and the partnership active.
    public func approve(_ request: ApprovalRequest, for id: UUID, caller: Identity) async throws -> Partnership {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            guard caller.role == .admin else { throw Problem.forbidden("Only your institution's admins may approve agreements.") }
            guard locked.stage == .negotiating || locked.stage == .active else { throw Self.wrongStage(locked.stage, "approved") }
            guard request.hash.range(of: "^[0-9a-fA-F]{64}$", options: .regularExpression) != nil else {
                throw Problem.invalid(field: "/hash", "must be the 64 hex digits of an agreement version's hash")
            }
            let hash = request.hash.lowercased()
            guard let latest = try await PartnershipStore.latestVersion(of: id, on: tx) else {
                throw Problem.conflict("The partnership has no agreement version to approve yet.")
            }
            guard latest.hash == hash else {
                throw Problem.conflict("That hash is not the latest version's (version \(latest.version), hash \(latest.hash)): read it again.")
            }
            let (approvers, fresh) = try await PartnershipStore.approve(version: latest.version, hash: hash, of: id, caller: caller, on: tx)
            let other = locked.initiator == caller.institutionID ? locked.partner : locked.initiator
            if fresh {
                try await PartnershipStore.record(
                    "agreement.approved", in: id, by: caller, detail: ["version": "\(latest.version)", "hash": hash], notify: other, on: tx)
            }
            if fresh, approvers.isSuperset(of: [locked.initiator, locked.partner]) {
                try await tx.query(
                    """
                    UPDATE partnerships SET stage = 'active', in_effect_version = \(latest.version),
                           ends_on = (SELECT (terms->>'endDate')::date FROM agreement_versions WHERE partnership_id = \(id) AND version = \(latest.version))
                    WHERE id = \(id)
                    """)
                try await PartnershipStore.record(
                    locked.stage == .active ? "agreement.in_effect" : "partnership.activated", in: id, by: caller,
                    detail: ["version": "\(latest.version)", "hash": hash], notify: other, on: tx)
            }
            return try await PartnershipStore.find(id, on: tx)!
        }
    }

    // MARK: Erasmus Without Paper

    /// The version in effect (else the latest draft) as an EWP IIAs v7 get-response document, the
    /// caller's institution first.
    public func ewpDocument(for id: UUID, caller: Identity) async throws -> String {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            guard let partnership = try await PartnershipStore.find(id, on: tx) else { throw Self.notFound }
            let versions = try await PartnershipStore.versions(of: id, on: tx)
            guard let version = versions.first(where: \.inEffect) ?? versions.last else {
                throw Problem.notFound("The partnership has no agreement version yet.")
            }
            let (mine, theirs) =
                partnership.initiator.id == caller.institutionID
                ? (partnership.initiator, partnership.partner) : (partnership.partner, partnership.initiator)
            return EWPExport.document(
                iiaID: id, first: .init(id: mine.id, schac: mine.schac), second: .init(id: theirs.id, schac: theirs.schac), terms: version.terms,
                inEffect: version.inEffect)
        }
    }

    // MARK: The room

    /// The caller joins the partnership's room (any user of either party; again: nothing changes).
    public func joinRoom(of id: UUID, caller: Identity) async throws -> UUID {
        try await asParty(id, caller: caller) { tx in
            guard try await tx.query("SELECT room_id FROM partnerships WHERE id = \(id)").scalar(UUID?.self) != nil else {
                throw Problem.conflict("The partnership has no room yet: it opens when the partner accepts.")
            }
            return try await tx.query("SELECT accord_join_partnership_room(\(id))").scalar(UUID.self)
        }
    }
}
