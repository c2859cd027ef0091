import AccordCore
import Foundation
import PGStore

/// Which audit events to read: by institution, action, actor and time. The API
/// (`GET /v1/admin/audit-events`) and the CLI (`accord admin audit`) read the same filters.
public struct AuditFilter: Sendable {
    public var institution: UUID?
    /// An action (`institution.approve`), or a prefix of actions ending in `*` (`institution.*`).
    public var action: String?
    /// A user or a network administrator.
    public var actor: UUID?
    /// RFC 3339 times: events at or after `since`, before `until`.
    public var since: String?
    public var until: String?

    public init() {}

    /// The filter from text values (query parameters or command-line options), 422 naming each one
    /// that is not valid.
    public static func parse(institution: String?, action: String?, actor: String?, since: String?, until: String?) throws -> AuditFilter {
        var v = Validator()
        var filter = AuditFilter()
        if let institution {
            filter.institution = UUID(uuidString: institution)
            v.check(filter.institution != nil, "institution", "must be an institution's id")
        }
        if let actor {
            filter.actor = UUID(uuidString: actor)
            v.check(filter.actor != nil, "actor", "must be a user's or a network administrator's id")
        }
        if let action {
            v.check(
                action.range(of: #"^[a-z_]+(\.[a-z_]+)*(\.\*)?$|^[a-z_]+\*$"#, options: .regularExpression) != nil && action.count <= 100, "action",
                "must be an action such as institution.approve, or a prefix such as institution.*")
            filter.action = action
        }
        for (name, value) in [("since", since), ("until", until)] {
            if let value { v.check(Formats.isTimestamp(value), name, "must be an RFC 3339 time, such as 2027-01-31T00:00:00Z") }
        }
        filter.since = since
        filter.until = until
        try v.validate()
        return filter
    }
}

/// The audit log's reading: the events a filter selects, and their CSV form.
public enum AuditLog {
    /// Up to `limit` events matching `filter` before the event `before`, newest first.
    public static func events(_ filter: AuditFilter, before: Int, limit: Int, on tx: PGConnection) async throws -> [AuditEvent] {
        var query: PGQuery = """
            SELECT id, \(Timestamp.precise("occurred_at")), action, institution_id,
                   actor_user_id, actor_admin_id, target_type, target_id, detail, client_address
            FROM audit_events WHERE id < \(before)
            """
        if let institution = filter.institution { query.append(" AND institution_id = \(institution)") }
        if let actor = filter.actor { query.append(" AND (actor_user_id = \(actor) OR actor_admin_id = \(actor))") }
        if let action = filter.action {
            if action.hasSuffix("*") {
                let prefix = String(action.dropLast()).replacingOccurrences(of: "_", with: "\\_")
                query.append(" AND action LIKE \(prefix + "%")")
            } else {
                query.append(" AND action = \(action)")
            }
        }
        if let since = filter.since { query.append(" AND occurred_at >= \(since)::timestamptz") }
        if let until = filter.until { query.append(" AND occurred_at < \(until)::timestamptz") }
        query.append(" ORDER BY id DESC LIMIT \(limit)")
        return try await tx.query(query).map { row in
            let r = try row.decode((Int, String, String, UUID?, UUID?, UUID?, String?, String?, PGJSONB<[String: String]>, String?).self)
            return AuditEvent(
                id: r.0, occurredAt: r.1, action: r.2, institutionId: r.3, actorUserId: r.4, actorAdminId: r.5, targetType: r.6,
                targetId: r.7, detail: r.8.value, clientAddress: r.9)
        }
    }

    public static let csvHeader = "id,occurredAt,action,institutionId,actorUserId,actorAdminId,targetType,targetId,detail,clientAddress"

    /// RFC 4180 CSV, a header line first. A cell that a spreadsheet would take for a formula
    /// (`=`, `+`, `-`, `@`) is prefixed with `'`.
    public static func csv(_ events: [AuditEvent]) -> String {
        var lines = [csvHeader]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for e in events {
            let detail = (try? encoder.encode(e.detail)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            let cells = [
                "\(e.id)", e.occurredAt, e.action, e.institutionId?.uuidString.lowercased() ?? "", e.actorUserId?.uuidString.lowercased() ?? "",
                e.actorAdminId?.uuidString.lowercased() ?? "", e.targetType ?? "", e.targetId ?? "", detail, e.clientAddress ?? "",
            ]
            lines.append(cells.map(cell).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func cell(_ value: String) -> String {
        var text = value
        if let first = text.first, "=+-@".contains(first) { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
