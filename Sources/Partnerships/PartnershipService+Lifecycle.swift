import AccordCore
import Foundation
import PGStore

// Meetings, notes, assessment, renewal, termination, drafts and diffs, the activity feed.
extension PartnershipService {
    /// The other party of a locked partnership.
    static func other(of locked: (stage: PartnershipStage, initiator: UUID, partner: UUID), caller: Identity) -> UUID {
        locked.initiator == caller.institutionID ? locked.partner : locked.initiator
    }

    /// Runs `body` as the caller on a partnership the caller's institution is a party of (404
    /// otherwise), in one transaction.
    func asParty<Result: Sendable>(_ id: UUID, caller: Identity, _ body: (PGConnection) async throws -> Result) async throws -> Result {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            guard try await tx.query("SELECT 1 FROM partnerships WHERE id = \(id)").first(Int.self) != nil else { throw Self.notFound }
            return try await body(tx)
        }
    }

    /// 404 unless the caller's institution is a party of the partnership.
    public func requireParty(_ id: UUID, caller: Identity) async throws {
        try await asParty(id, caller: caller) { _ in }
    }

    /// Locks the partnership for a change by the caller; 404 for a non-party. A partnership of a
    /// suspended institution is frozen: no change by or towards it (409 naming the suspension)
    /// until the network's administrators reinstate it.
    func lock(_ id: UUID, on tx: PGConnection) async throws -> (stage: PartnershipStage, initiator: UUID, partner: UUID) {
        guard let locked = try await PartnershipStore.lock(id, on: tx) else { throw Self.notFound }
        if let suspended = try await PartnershipStore.suspendedParty(locked.initiator, locked.partner, on: tx) {
            throw Problem.conflict("\(suspended) is suspended by the network's administrators: the partnership is frozen until it is reinstated.")
        }
        return locked
    }

    // MARK: Meetings

    func validate(_ input: MeetingInput, parties: Set<UUID>, creating: Bool) throws {
        var v = Validator()
        if let startsAt = input.startsAt {
            v.check(Formats.isTimestamp(startsAt), "/startsAt", "must be an RFC 3339 time, such as 2027-03-01T10:00:00Z")
        } else if creating {
            v.fail("/startsAt", "is required")
        }
        if let agenda = input.agenda {
            v.text(agenda, "/agenda", 1...10_000, singleLine: false)
        } else if creating {
            v.fail("/agenda", "is required")
        }
        if let minutes = input.minutes { v.text(minutes, "/minutes", 0...50_000, singleLine: false) }
        if let participants = input.participants, v.list(participants.count, "/participants", 0...100) {
            for (n, p) in participants.enumerated() {
                v.check(parties.contains(p.institution), "/participants/\(n)/institution", "must be one of the partnership's two institutions")
                v.text(p.name, "/participants/\(n)/name", 1...200)
                if let role = p.role { v.text(role, "/participants/\(n)/role", 1...200) }
            }
        }
        try v.validate()
    }

    /// A meeting of the parties (admins and staff), once the message of intent is accepted.
    public func addMeeting(_ input: MeetingInput, to id: UUID, caller: Identity) async throws -> Meeting {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            try Self.requireStaff(caller, to: "plan meetings")
            guard locked.stage == .negotiating || locked.stage == .active else { throw Self.wrongStage(locked.stage, "given meetings") }
            try validate(input, parties: [locked.initiator, locked.partner], creating: true)
            let meeting = try await PartnershipStore.insertMeeting(
                of: id, startsAt: input.startsAt!, agenda: input.agenda!, participants: input.participants ?? [], minutes: input.minutes,
                caller: caller, on: tx)
            try await PartnershipStore.record(
                "meeting.planned", in: id, by: caller, detail: ["meeting": meeting.id.uuidString.lowercased(), "startsAt": meeting.startsAt],
                notify: Self.other(of: locked, caller: caller), on: tx)
            return meeting
        }
    }

    /// Changes a meeting: its time, agenda, participants or minutes.
    public func changeMeeting(_ meetingID: UUID, in id: UUID, _ input: MeetingInput, caller: Identity) async throws -> Meeting {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            try Self.requireStaff(caller, to: "change meetings")
            try validate(input, parties: [locked.initiator, locked.partner], creating: false)
            guard let meeting = try await PartnershipStore.updateMeeting(meetingID, of: id, with: input, on: tx) else {
                throw Problem.notFound("No such meeting.")
            }
            try await PartnershipStore.record(
                input.minutes != nil ? "meeting.minuted" : "meeting.changed", in: id, by: caller,
                detail: ["meeting": meetingID.uuidString.lowercased()], notify: Self.other(of: locked, caller: caller), on: tx)
            return meeting
        }
    }

    public func meetings(of id: UUID, caller: Identity) async throws -> [Meeting] {
        try await asParty(id, caller: caller) { tx in
            try await PartnershipStore.meetings(of: id, on: tx)
        }
    }

    // MARK: Notes

    /// An internal note of the caller's institution (any of its users); the other party never sees it.
    public func addNote(_ input: NoteInput, to id: UUID, caller: Identity) async throws -> Note {
        try Self.requireMember(caller)
        var v = Validator()
        v.text(input.body, "/body", 1...10_000, singleLine: false)
        try v.validate()
        return try await asParty(id, caller: caller) { tx in
            try await PartnershipStore.insertNote(input.body, in: id, caller: caller, on: tx)
        }
    }

    public func notes(of id: UUID, caller: Identity) async throws -> [Note] {
        try await asParty(id, caller: caller) { tx in
            try await PartnershipStore.notes(of: id, on: tx)
        }
    }

    // MARK: Assessment

    /// The terms in effect, or 409 when no version is.
    func termsInEffect(of id: UUID, on tx: PGConnection) async throws -> AgreementVersion {
        guard let version = try await PartnershipStore.versions(of: id, on: tx).first(where: \.inEffect) else {
            throw Problem.conflict("No agreement is in effect yet: both parties approve a version first.")
        }
        return version
    }

    /// A party's actual values for one period, for KPIs of the agreement in effect (admins and staff).
    public func report(_ input: KPIReportInput, for id: UUID, caller: Identity) async throws -> Assessment {
        try Self.requireMember(caller)
        return try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            try Self.requireStaff(caller, to: "report on partnerships")
            guard locked.stage == .active || locked.stage == .terminated || locked.stage == .expired else {
                throw Self.wrongStage(locked.stage, "assessed")
            }
            let version = try await termsInEffect(of: id, on: tx)
            let kpis = Dictionary((version.terms.kpis ?? []).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            var v = Validator()
            let academic = AgreementTerms.academicYear(input.period) != nil
            let calendar = input.period.count == 4 && Int(input.period) != nil
            v.check(academic || calendar, "/period", "must be an academic year (2027/2028) or a calendar year (2028)")
            if v.list(input.values.count, "/values", 1...50) {
                for (key, actual) in input.values.sorted(by: { $0.key < $1.key }) {
                    let field = "/values/\(key)"
                    guard let kpi = kpis[key] else {
                        v.fail(field, "is not a KPI of the agreement in effect (version \(version.version))")
                        continue
                    }
                    v.check(actual >= 0 && actual.isFinite && actual <= 1e12, field, "must be a number, 0 or more")
                    if academic { v.check(kpi.period == .academicYear, field, "is counted per calendar year; report it for a year such as 2028") }
                    if calendar { v.check(kpi.period == .calendarYear, field, "is counted per academic year; report it for one such as 2027/2028") }
                }
            }
            try v.validate()
            try await PartnershipStore.report(input.values, period: input.period, of: id, caller: caller, on: tx)
            try await PartnershipStore.record(
                "kpi.reported", in: id, by: caller, detail: ["period": input.period, "version": "\(version.version)"],
                notify: Self.other(of: locked, caller: caller), on: tx)
            return try await assessment(of: id, version: version, on: tx)
        }
    }

    /// Targets against actuals per KPI, period and party, for the agreement in effect; actuals below
    /// their target are flagged.
    public func assessment(of id: UUID, caller: Identity) async throws -> Assessment {
        try await asParty(id, caller: caller) { tx in
            try await assessment(of: id, version: try await termsInEffect(of: id, on: tx), on: tx)
        }
    }

    func assessment(of id: UUID, version: AgreementVersion, on tx: PGConnection) async throws -> Assessment {
        let reports = try await PartnershipStore.reports(of: id, on: tx)
        let kpis = (version.terms.kpis ?? []).map { kpi in
            KPIAssessment(
                key: kpi.key, label: kpi.label, target: kpi.target, period: kpi.period,
                reports: reports.filter { $0.key == kpi.key }.map {
                    KPIActual(
                        institution: $0.institution, period: $0.period, actual: $0.actual, belowTarget: $0.actual < kpi.target, reportedAt: $0.at)
                })
        }
        return Assessment(version: version.version, kpis: kpis)
    }

    // MARK: Renewal, termination, drafts

    /// Starts the next agreement from the one in effect: a new version with the new dates and every
    /// academic year moved by as many years as the start; both parties approve it as any other.
    public func renew(_ input: RenewalInput, _ id: UUID, caller: Identity) async throws -> AgreementVersion {
        try Self.requireMember(caller)
        let current = try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            guard locked.stage == .active else { throw Self.wrongStage(locked.stage, "renewed") }
            return try await termsInEffect(of: id, on: tx)
        }
        var v = Validator()
        let start = AgreementTerms.date(input.startDate)
        v.check(start != nil, "/startDate", "must be a date (YYYY-MM-DD)")
        v.check(AgreementTerms.date(input.endDate) != nil, "/endDate", "must be a date (YYYY-MM-DD)")
        try v.validate()
        let shift = AgreementTerms.year(of: input.startDate) - AgreementTerms.year(of: current.terms.startDate)
        var terms = current.terms
        terms.startDate = input.startDate
        terms.endDate = input.endDate
        terms.cooperationConditions = terms.cooperationConditions.map { condition in
            var condition = condition
            condition.academicYears = .init(
                first: AgreementTerms.shifted(condition.academicYears.first, by: shift),
                last: AgreementTerms.shifted(condition.academicYears.last, by: shift))
            return condition
        }
        return try await draft(terms, for: id, caller: caller, kind: "agreement.renewal_drafted")
    }

    /// Either party ends the partnership with a reason (admins): an agreement approved by both is
    /// kept, never deleted.
    public func terminate(_ input: TerminationInput, _ id: UUID, caller: Identity) async throws -> Partnership {
        try Self.requireMember(caller)
        var v = Validator()
        v.text(input.reason, "/reason", 1...2000, singleLine: false)
        try v.validate()
        return try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            guard caller.role == .admin else { throw Problem.forbidden("Only your institution's admins may terminate partnerships.") }
            guard locked.stage == .negotiating || locked.stage == .active else { throw Self.wrongStage(locked.stage, "terminated") }
            try await tx.query("UPDATE partnerships SET stage = 'terminated', ended_reason = \(input.reason) WHERE id = \(id)")
            try await PartnershipStore.record(
                "partnership.terminated", in: id, by: caller, detail: ["reason": input.reason], notify: Self.other(of: locked, caller: caller),
                on: tx)
            return try await PartnershipStore.find(id, on: tx)!
        }
    }

    /// Deletes a draft no party approved (admins and staff of a party).
    public func deleteDraft(_ version: Int, of id: UUID, caller: Identity) async throws {
        try Self.requireMember(caller)
        try await pool.withTenant(caller) { tx in
            let locked = try await lock(id, on: tx)
            try Self.requireStaff(caller, to: "delete drafts")
            guard let found = try await PartnershipStore.versions(of: id, only: version, on: tx).first else {
                throw Problem.notFound("No such agreement version.")
            }
            guard found.approvals.isEmpty else {
                throw Problem.conflict("Version \(version) was approved by a party: it is kept, and a new version replaces it.")
            }
            try await tx.query("DELETE FROM agreement_versions WHERE partnership_id = \(id) AND version = \(version)")
            try await PartnershipStore.record(
                "agreement.draft_deleted", in: id, by: caller, detail: ["version": "\(version)"], notify: Self.other(of: locked, caller: caller),
                on: tx)
        }
    }

    public func version(_ version: Int, of id: UUID, caller: Identity) async throws -> AgreementVersion {
        try await asParty(id, caller: caller) { tx in try await Self.version(version, of: id, on: tx) }
    }

    static func version(_ version: Int, of id: UUID, on tx: PGConnection) async throws -> AgreementVersion {
        guard let found = try await PartnershipStore.versions(of: id, only: version, on: tx).first else {
            throw Problem.notFound("No such agreement version.")
        }
        return found
    }

    /// Two versions compared field by field (both read in one transaction).
    public func diff(_ from: Int, _ to: Int, of id: UUID, caller: Identity) async throws -> AgreementDiff {
        let (a, b) = try await asParty(id, caller: caller) { tx in
            (try await Self.version(from, of: id, on: tx), try await Self.version(to, of: id, on: tx))
        }
        let decoder = JSONDecoder()
        let left = try decoder.decode(JSONValue.self, from: Data(AgreementTerms.canonicalJSON(a.terms).utf8))
        let right = try decoder.decode(JSONValue.self, from: Data(AgreementTerms.canonicalJSON(b.terms).utf8))
        var changes: [AgreementDiff.Change] = []
        Self.compare(left, right, at: "", into: &changes)
        return AgreementDiff(from: from, to: to, changes: changes)
    }

    static func compare(_ a: JSONValue?, _ b: JSONValue?, at path: String, into changes: inout [AgreementDiff.Change]) {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            for key in Set(x.keys).union(y.keys).sorted() { compare(x[key], y[key], at: path + "/" + key, into: &changes) }
        case (.array(let x), .array(let y)):
            for index in 0..<max(x.count, y.count) {
                compare(index < x.count ? x[index] : nil, index < y.count ? y[index] : nil, at: path + "/\(index)", into: &changes)
            }
        default:
            if a != b { changes.append(.init(path: path.isEmpty ? "/" : path, before: a, after: b)) }
        }
    }

    // MARK: Activity

    /// What the other parties of the caller institution's partnerships did, newest first.
    public func activity(limit: Int, cursor: String?, caller: Identity) async throws -> Page<ActivityEntry> {
        try Self.requireMember(caller)
        let before = try cursor.map { try Cursor.decode(ActivityPosition.self, from: $0).before }
        let fetched = try await pool.withTenant(caller) { tx in try await PartnershipStore.activity(after: before, limit: limit + 1, on: tx) }
        return Page(fetched: fetched, limit: limit) { ActivityPosition(before: $0.id) }
    }

    struct ActivityPosition: Codable { var before: Int64 }
}

extension AgreementTerms {
    /// "2027/2028" moved by `years`.
    static func shifted(_ year: String, by years: Int) -> String {
        guard let first = academicYear(year) else { return year }
        return "\(first + years)/\(first + years + 1)"
    }
}
