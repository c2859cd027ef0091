import AccordCore
import Foundation
import PGStore

/// Network administration of member institutions: admission decisions, tiers, the audit log.
public struct AdmissionService: Sendable {
    let pool: PGPool
    /// Called after every committed decision, since statuses and tiers are part of what sessions
    /// resolve to (the server forgets the sessions it keeps in memory).
    let identitiesChanged: @Sendable () -> Void
    /// The country and region lists the filters are checked against (read once).
    let reference: ReferenceData
    /// The network's tiers.
    let tiers: Tiers
    /// Where the web client is served (links in mails start with it).
    let publicBaseURL: String

    public init(pool: PGPool, publicBaseURL: String = "http://127.0.0.1:8080", identitiesChanged: @escaping @Sendable () -> Void = {}) {
        self.pool = pool
        self.publicBaseURL = publicBaseURL
        self.identitiesChanged = identitiesChanged
        self.reference = ReferenceData(pool: pool)
        self.tiers = Tiers(pool: pool)
    }

    /// An admission decision and the status change it makes.
    public enum Decision: String, Sendable, CaseIterable {
        case approve, reject, suspend, reinstate

        /// The status an institution must have for this decision, and the one it gets.
        var transition: (from: InstitutionStatus, to: InstitutionStatus) {
            switch self {
            case .approve: (.pending, .active)
            case .reject: (.pending, .rejected)
            case .suspend: (.active, .suspended)
            case .reinstate: (.suspended, .active)
            }
        }

        var needsReason: Bool { self == .reject || self == .suspend }
    }

    static func requireNetworkAdmin(_ caller: Identity) throws {
        guard caller.isNetworkAdmin else { throw AdminContext.notNetworkAdmin }
    }

    /// Institutions, newest first, optionally of one status; keyset-paged.
    /// The network's institutions, newest (or oldest) first, filtered by status, tier, country,
    /// region and words of a name or SCHAC code; 422 naming each filter value that is not valid.
    public func list(parameters: [String: String], limit: Int, cursor: String?, caller: Identity) async throws -> Page<InstitutionSummary> {
        try Self.requireNetworkAdmin(caller)
        var v = Validator()
        var filter = AdmissionStore.ListFilter()
        if let text = parameters["status"] {
            filter.status = InstitutionStatus(rawValue: text)
            v.check(filter.status != nil, "status", "must be pending, active, rejected or suspended")
        }
        if let text = parameters["tier"] {
            filter.tier = text
            v.check(try await tiers.unknown([text]).isEmpty, "tier", "must be one of the network's tiers (GET /v1/admin/tiers)")
        }
        let lists = try await reference.lists()
        if let country = parameters["country"] {
            v.check(lists.countries.contains(country), "country", "must be an ISO 3166-1 alpha-2 code such as BE")
            filter.country = country
        }
        if let region = parameters["region"] {
            v.check(lists.regions[region] != nil, "region", "must be a UN M49 region code such as 150 (Europe)")
            filter.region = region
        }
        if let text = parameters["q"] {
            v.text(text, "q", 1...100)
            filter.query = text
        }
        if let sort = parameters["sort"] {
            v.check(sort == "newest" || sort == "oldest", "sort", "must be newest or oldest")
            filter.oldestFirst = sort == "oldest"
        }
        try v.validate()
        let after = try cursor.map { try Cursor.decode(CreatedPosition.self, from: $0) }
        let fetched = try await pool.withTenant(caller) { tx in
            try await AdmissionStore.list(filter, after: after, limit: limit + 1, on: tx)
        }
        return Page(fetched: fetched, limit: limit) { CreatedPosition(createdAt: $0.createdAt, id: $0.id) }
    }

    /// One institution as its reviewers see it: registrant, domain proof, competing registrations;
    /// its users, open partnerships, rooms and latest audit events.
    public func institution(_ id: UUID, caller: Identity) async throws -> InstitutionDetail {
        try Self.requireNetworkAdmin(caller)
        return try await pool.withTenant(caller) { tx in
            guard try await tx.query("SELECT 1 FROM institutions WHERE id = \(id)").first(Int.self) != nil else {
                throw Problem.notFound("No such institution.")
            }
            return try await InstitutionDetail.read(try await AdmissionStore.find(id, on: tx), on: tx)
        }
    }

    /// Applies an admission decision. Approving a claim merges it into the imported entry it
    /// claims (the registrant's users, sessions and invitations move there), and only once the
    /// registrant proved the domain (`DomainProof.verified`); approving any registration rejects
    /// the other pending registrations of its SCHAC code.
    public func decide(_ decision: Decision, on id: UUID, reason: String?, caller: Identity) async throws -> InstitutionSummary {
        try Self.requireNetworkAdmin(caller)
        let reason = reason?.trimmingCharacters(in: .whitespacesAndNewlines)
        if decision.needsReason, reason?.isEmpty ?? true { throw Problem.invalid(field: "/reason", "is required to \(decision.rawValue)") }
        if let reason {
            var v = Validator()
            v.text(reason, "/reason", 0...2000, singleLine: false)
            try v.validate()
        }
        defer { identitiesChanged() }  // after the transaction: this instance serves the change at once
        do {
            return try await pool.withTenant(caller) { tx in
                guard let current = try await AdmissionStore.lockStatus(id, on: tx) else { throw Problem.notFound("No such institution.") }
                let (from, to) = decision.transition
                guard current.status == from.rawValue else {
                    throw Problem.conflict("Cannot \(decision.rawValue) an institution that is \(current.status).")
                }
                var target = id
                if decision == .approve, let entry = current.claimOf {
                    let proof = try await AdmissionStore.find(id, on: tx).domainProof
                    guard proof == .verified else {
                        throw Problem.conflict(
                            "This registration claims the directory entry \(current.schac); it can be approved only once its registrant's "
                                + "e-mail address at \(current.schac) (or a subdomain) is verified, and it is \(proof == .unverified ? "not verified yet" : "elsewhere")."
                        )
                    }
                    try await AdmissionStore.mergeClaim(id, into: entry, on: tx)
                    target = entry
                } else {
                    try await AdmissionStore.setStatus(id, to: to, reason: reason, on: tx)
                }
                try await Audit.record(
                    "institution.\(decision.rawValue)", institutionID: target, actor: caller, targetType: "institution",
                    targetID: target.uuidString, detail: ["reason": reason ?? "", "from": from.rawValue, "to": to.rawValue], on: tx)
                try await AdmissionStore.mailAdmins(of: target, Self.mail(for: decision, reason: reason, baseURL: publicBaseURL), on: tx)
                if decision == .approve {
                    let losing = "Another registration of \(current.schac) was approved."
                    for other in try await AdmissionStore.rejectCompeting(schac: current.schac, except: id, reason: losing, on: tx) {
                        try await Audit.record(
                            "institution.reject", institutionID: other, actor: caller, targetType: "institution", targetID: other.uuidString,
                            detail: ["reason": losing, "from": "pending", "to": "rejected"], on: tx)
                        try await AdmissionStore.mailAdmins(of: other, Self.mail(for: .reject, reason: losing, baseURL: publicBaseURL), on: tx)
                    }
                }
                return try await AdmissionStore.find(target, on: tx)
            }
        } catch let error as PGError where error.isUniqueViolation {
            throw Problem.conflict(
                "Another active or suspended institution holds this SCHAC code (see schacHeldBy); reject this registration, or deal with that institution first."
            )
        }
    }

    /// Gives an institution another tier.
    public func setTier(_ tier: String, on id: UUID, caller: Identity) async throws -> InstitutionSummary {
        try Self.requireNetworkAdmin(caller)
        guard try await tiers.unknown([tier]).isEmpty else {
            throw Problem.invalid(field: "/tier", "must be one of the network's tiers (GET /v1/admin/tiers)")
        }
        defer { identitiesChanged() }  // after the transaction: this instance serves the change at once
        return try await pool.withTenant(caller) { tx in
            guard let old = try await AdmissionStore.lockTier(id, on: tx) else { throw Problem.notFound("No such institution.") }
            try await AdmissionStore.setTier(id, to: tier, on: tx)
            try await Audit.record(
                "institution.tier_changed", institutionID: id, actor: caller, targetType: "institution", targetID: id.uuidString,
                detail: ["from": old, "to": tier], on: tx)
            return try await AdmissionStore.find(id, on: tx)
        }
    }

    /// A position in the audit log: the last event id seen.
    struct AuditPosition: Codable {
        var id: Int
    }

    /// The audit log, newest first; keyset-paged.
    public func auditEvents(_ filter: AuditFilter, limit: Int, cursor: String?, caller: Identity) async throws -> Page<AuditEvent> {
        try Self.requireNetworkAdmin(caller)
        var before = Int.max
        if let cursor {
            let position = try Cursor.decode(AuditPosition.self, from: cursor)
            guard position.id > 0 else { throw Cursor.invalid }
            before = position.id
        }
        let fetched = try await pool.withTenant(caller) { tx in try await AuditLog.events(filter, before: before, limit: limit + 1, on: tx) }
        return Page(fetched: fetched, limit: limit) { AuditPosition(id: $0.id) }
    }

    /// The mail an institution's admins get about a decision on their institution.
    static func mail(for decision: Decision, reason: String?, baseURL: String) -> (subject: String, body: String) {
        let because = reason.flatMap { $0.isEmpty ? nil : "\n\nThe network's administrators wrote: \($0)" } ?? ""
        switch decision {
        case .approve:
            return (
                "Your institution is now a member of the Accord network",
                "Your institution's registration was approved: it is listed in the network's directory, and its people can find partners, propose partnerships and meet in rooms.\(because)\n\nSign in at \(baseURL)\n"
            )
        case .reject:
            return (
                "Your registration with the Accord network was not approved",
                "Your institution's registration with the Accord network was not approved.\(because)\n"
            )
        case .suspend:
            return (
                "Your institution's membership of the Accord network is suspended",
                "Your institution's membership is suspended: its people cannot sign in, it is not listed, and its partnerships are frozen until it is reinstated. Nothing is deleted.\(because)\n"
            )
        case .reinstate:
            return (
                "Your institution's membership of the Accord network is restored",
                "Your institution's membership is restored: its people can sign in again, and its partnerships continue where they stood.\(because)\n\nSign in at \(baseURL)\n"
            )
        }
    }
}
