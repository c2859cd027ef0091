import AccordCore
import Foundation
import PGStore

/// The SQL of partnerships, each statement beside the decoding of its rows. Every function runs on
/// a transaction carrying the caller's tenant context: row-level security shows a partnership's
/// rows to its two parties only, so another institution's partnership is simply not found.
enum PartnershipStore {
    static let columns: PGQuery = """
        p.id, p.stage, p.initiator_id, a.name, a.schac, p.partner_id, b.name, b.schac, p.message, p.activities, p.in_effect_version,
        (SELECT max(v.version) FROM agreement_versions v WHERE v.partnership_id = p.id), p.ends_on::text, p.room_id,
        \(Timestamp.precise("p.created_at")), \(Timestamp.precise("p.updated_at"))
        FROM partnerships p
        CROSS JOIN LATERAL accord_partnership_institution(p.initiator_id) a
        CROSS JOIN LATERAL accord_partnership_institution(p.partner_id) b
        """

    static func partnership(_ row: PGRow) throws -> Partnership {
        let r = try row.decode(
            (UUID, String, UUID, String, String, UUID, String, String, String, [String], Int?, Int?, String?, UUID?, String, String).self)
        return Partnership(
            id: r.0, stage: PartnershipStage(rawValue: r.1) ?? .invited, initiator: Party(id: r.2, name: r.3, schac: r.4),
            partner: Party(id: r.5, name: r.6, schac: r.7), message: r.8, activities: r.9.compactMap(Activity.init(rawValue:)),
            inEffectVersion: r.10, latestVersion: r.11, endsOn: r.12, roomId: r.13, createdAt: r.14, updatedAt: r.15)
    }

    static func find(_ id: UUID, on tx: PGConnection) async throws -> Partnership? {
        try await tx.query("SELECT \(columns) WHERE p.id = \(id)").first.map(partnership)
    }

    /// The partnership's stage and parties, locked for a change; nil when the caller is no party.
    static func lock(_ id: UUID, on tx: PGConnection) async throws -> (stage: PartnershipStage, initiator: UUID, partner: UUID)? {
        try await tx.query("SELECT stage, initiator_id, partner_id FROM partnerships WHERE id = \(id) FOR UPDATE")
            .first((String, UUID, UUID).self).map { (PartnershipStage(rawValue: $0.0) ?? .invited, $0.1, $0.2) }
    }

    /// The name of a party that is suspended, if one is.
    static func suspendedParty(_ a: UUID, _ b: UUID, on tx: PGConnection) async throws -> String? {
        try await tx.query(
            """
            SELECT i.name FROM (VALUES (\(a)), (\(b))) AS v (id), LATERAL accord_partnership_institution(v.id) i
            WHERE i.status = 'suspended' LIMIT 1
            """
        ).first(String.self)
    }

    struct Filter {
        var stage: PartnershipStage?
        var modifiedSince: String?
        var dueForRenewal = false
    }

    /// The caller institution's partnerships, newest first, after `position`.
    static func list(_ filter: Filter, after position: CreatedPosition?, limit: Int, on tx: PGConnection) async throws -> [Partnership] {
        var query: PGQuery = "SELECT \(columns) WHERE true"
        if let stage = filter.stage { query.append(" AND p.stage = \(stage.rawValue)") }
        if let since = filter.modifiedSince { query.append(" AND p.updated_at >= \(since)::timestamptz") }
        if filter.dueForRenewal { query.append(" AND p.stage = 'active' AND p.ends_on <= current_date + 90") }
        if let position { query.append(" AND (p.created_at, p.id) < (\(position.createdAt)::timestamptz, \(position.id))") }
        query.append(" ORDER BY p.created_at DESC, p.id DESC LIMIT \(limit)")
        return try await tx.query(query).map(partnership)
    }

    /// An institution as a partnership may name it: (status, name), or nil when the caller may not.
    static func institution(_ id: UUID, on tx: PGConnection) async throws -> (status: String, name: String)? {
        try await tx.query("SELECT status, name FROM accord_partnership_institution(\(id))").first((String, String).self)
    }

    /// The caller's name, as the other party reads it in the timeline.
    static func userName(_ user: UUID, on tx: PGConnection) async throws -> String {
        try await tx.query("SELECT name FROM users WHERE id = \(user)").first(String.self) ?? "—"
    }

    // MARK: Timeline and activity

    /// Appends to the timeline and, when `notify` names the other party, to its activity feed.
    static func record(
        _ kind: String, in id: UUID, by caller: Identity, detail: [String: String] = [:], notify other: UUID?, on tx: PGConnection
    ) async throws {
        let name = try await userName(caller.accountID, on: tx)
        try await tx.query(
            """
            INSERT INTO partnership_events (partnership_id, actor_id, actor_name, actor_institution_id, kind, detail)
            VALUES (\(id), \(caller.accountID), \(name), \(caller.institutionID!), \(kind), \(PGJSONB(detail)))
            """)
        try await tx.query("UPDATE partnerships SET updated_at = now() WHERE id = \(id)")
        if let other {
            try await tx.query(
                """
                INSERT INTO partnership_activity (institution_id, partnership_id, kind, actor_institution_id)
                VALUES (\(other), \(id), \(kind), \(caller.institutionID!))
                """)
        }
    }

    static func timeline(of id: UUID, after: Int64?, limit: Int, on tx: PGConnection) async throws -> [TimelineEvent] {
        try await tx.query(
            """
            SELECT id, \(Timestamp.precise("at")), actor_id, actor_name, actor_institution_id, kind, detail::text
            FROM partnership_events WHERE partnership_id = \(id) AND id > \(after ?? 0) ORDER BY id LIMIT \(limit)
            """
        ).map { row in
            let r = try row.decode((Int64, String, UUID?, String, UUID, String, String).self)
            let detail = (try? JSONDecoder().decode([String: String].self, from: Data(r.6.utf8))) ?? [:]
            return TimelineEvent(id: r.0, at: r.1, actor: TimelineActor(id: r.2, name: r.3, institution: r.4), kind: r.5, detail: detail)
        }
    }

    // MARK: Agreement versions

    static func latestVersion(of id: UUID, on tx: PGConnection) async throws -> (version: Int, hash: String)? {
        try await tx.query("SELECT version, hash FROM agreement_versions WHERE partnership_id = \(id) ORDER BY version DESC LIMIT 1")
            .first((Int, String).self)
    }

    static func insertVersion(
        _ terms: AgreementTerms, hash: String, version: Int, of id: UUID, caller: Identity, on tx: PGConnection
    ) async throws {
        try await tx.query(
            """
            INSERT INTO agreement_versions (partnership_id, version, terms, hash, created_by, created_by_institution)
            VALUES (\(id), \(version), \(PGJSONB(terms)), \(hash), \(caller.accountID), \(caller.institutionID!))
            """)
    }

    static func versions(of id: UUID, only version: Int? = nil, on tx: PGConnection) async throws -> [AgreementVersion] {
        var query: PGQuery = """
            SELECT v.version, v.hash, v.terms::text, \(Timestamp.precise("v.created_at")), v.created_by_institution,
                   coalesce((SELECT json_agg(json_build_object('institution', a.institution_id,
                                     'approvedAt', to_char(a.approved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                                     ORDER BY a.approved_at)
                             FROM agreement_approvals a WHERE a.partnership_id = v.partnership_id AND a.version = v.version)::text, '[]'),
                   v.version IS NOT DISTINCT FROM p.in_effect_version
            FROM agreement_versions v JOIN partnerships p ON p.id = v.partnership_id
            WHERE v.partnership_id = \(id)
            """
        if let version { query.append(" AND v.version = \(version)") }
        query.append(" ORDER BY v.version")
        let decoder = JSONDecoder()
        return try await tx.query(query).map { row in
            let r = try row.decode((Int, String, String, String, UUID, String, Bool).self)
            return AgreementVersion(
                version: r.0, hash: r.1, terms: try decoder.decode(AgreementTerms.self, from: Data(r.2.utf8)), createdAt: r.3,
                createdByInstitution: r.4, approvals: try decoder.decode([Approval].self, from: Data(r.5.utf8)), inEffect: r.6)
        }
    }

    /// Records the caller institution's approval of a version (again: nothing changes); the
    /// institutions that approved it.
    static func approve(version: Int, hash: String, of id: UUID, caller: Identity, on tx: PGConnection) async throws -> (Set<UUID>, fresh: Bool) {
        let inserted = try await tx.query(
            """
            INSERT INTO agreement_approvals (partnership_id, version, institution_id, hash, approved_by)
            VALUES (\(id), \(version), \(caller.institutionID!), \(hash), \(caller.accountID))
            ON CONFLICT DO NOTHING RETURNING version
            """
        ).first(Int.self)
        let approvers = try await tx.query(
            "SELECT institution_id FROM agreement_approvals WHERE partnership_id = \(id) AND version = \(version) AND hash = \(hash)"
        ).decode(UUID.self)
        return (Set(approvers), inserted != nil)
    }
}

// MARK: Meetings, notes, KPI reports, activity

extension PartnershipStore {
    static let meetingColumns: PGQuery = """
        id, \(Timestamp.seconds("starts_at")), agenda, participants::text, minutes, \(Timestamp.precise("created_at"))
        """

    static func meeting(_ row: PGRow) throws -> Meeting {
        let r = try row.decode((UUID, String, String, String, String?, String).self)
        return Meeting(
            id: r.0, startsAt: r.1, agenda: r.2, participants: (try? JSONDecoder().decode([Participant].self, from: Data(r.3.utf8))) ?? [],
            minutes: r.4, createdAt: r.5)
    }

    static func insertMeeting(
        of id: UUID, startsAt: String, agenda: String, participants: [Participant], minutes: String?, caller: Identity, on tx: PGConnection
    ) async throws -> Meeting {
        try await tx.query(
            """
            INSERT INTO partnership_meetings (partnership_id, starts_at, agenda, participants, minutes, created_by)
            VALUES (\(id), \(startsAt)::timestamptz, \(agenda), \(PGJSONB(participants)), \(minutes), \(caller.accountID))
            RETURNING \(meetingColumns)
            """
        ).first.map(meeting)!
    }

    static func updateMeeting(
        _ meetingID: UUID, of id: UUID, with input: MeetingInput, on tx: PGConnection
    ) async throws -> Meeting? {
        try await tx.query(
            """
            UPDATE partnership_meetings SET
                starts_at = coalesce(\(input.startsAt)::timestamptz, starts_at), agenda = coalesce(\(input.agenda), agenda),
                participants = coalesce(\(input.participants.map { PGJSONB($0) }), participants),
                minutes = coalesce(\(input.minutes), minutes), version = version + 1
            WHERE id = \(meetingID) AND partnership_id = \(id)
            RETURNING \(meetingColumns)
            """
        ).first.map(meeting)
    }

    static func meetings(of id: UUID, on tx: PGConnection) async throws -> [Meeting] {
        try await tx.query("SELECT \(meetingColumns) FROM partnership_meetings WHERE partnership_id = \(id) ORDER BY starts_at, id").map(meeting)
    }

    static func insertNote(_ body: String, in id: UUID, caller: Identity, on tx: PGConnection) async throws -> Note {
        try await tx.query(
            """
            INSERT INTO partnership_notes (partnership_id, institution_id, author_id, body)
            VALUES (\(id), \(caller.institutionID!), \(caller.accountID), \(body))
            RETURNING id, body, author_id, \(Timestamp.precise("created_at"))
            """
        ).first((UUID, String, UUID?, String).self).map { Note(id: $0.0, body: $0.1, authorId: $0.2, createdAt: $0.3) }!
    }

    /// The caller institution's notes (row-level security shows no other party's).
    static func notes(of id: UUID, on tx: PGConnection) async throws -> [Note] {
        try await tx.query(
            """
            SELECT id, body, author_id, \(Timestamp.precise("created_at")) FROM partnership_notes
            WHERE partnership_id = \(id) ORDER BY created_at, id
            """
        ).decode((UUID, String, UUID?, String).self).map { Note(id: $0.0, body: $0.1, authorId: $0.2, createdAt: $0.3) }
    }

    /// Stores (or replaces) the caller institution's actual values for a period.
    static func report(_ values: [String: Double], period: String, of id: UUID, caller: Identity, on tx: PGConnection) async throws {
        for (key, actual) in values.sorted(by: { $0.key < $1.key }) {
            try await tx.query(
                """
                INSERT INTO kpi_reports (partnership_id, institution_id, period, key, actual, reported_by)
                VALUES (\(id), \(caller.institutionID!), \(period), \(key), \(actual), \(caller.accountID))
                ON CONFLICT (partnership_id, institution_id, period, key)
                DO UPDATE SET actual = excluded.actual, reported_by = excluded.reported_by, reported_at = now()
                """)
        }
    }

    static func reports(
        of id: UUID, on tx: PGConnection
    ) async throws -> [(institution: UUID, period: String, key: String, actual: Double, at: String)] {
        try await tx.query(
            """
            SELECT institution_id, period, key, actual::float8, \(Timestamp.precise("reported_at")) FROM kpi_reports
            WHERE partnership_id = \(id) ORDER BY key, period, institution_id
            """
        ).decode((UUID, String, String, Double, String).self).map { ($0.0, $0.1, $0.2, $0.3, $0.4) }
    }

    static func activity(after: Int64?, limit: Int, on tx: PGConnection) async throws -> [ActivityEntry] {
        var query: PGQuery = """
            SELECT id, partnership_id, kind, actor_institution_id, \(Timestamp.precise("at")) FROM partnership_activity WHERE true
            """
        if let after { query.append(" AND id < \(after)") }
        query.append(" ORDER BY id DESC LIMIT \(limit)")
        return try await tx.query(query).decode((Int64, UUID, String, UUID, String).self).map {
            ActivityEntry(id: $0.0, partnershipId: $0.1, kind: $0.2, actorInstitution: $0.3, at: $0.4)
        }
    }
}
