import AccordCore
import AccordCrypto
import Foundation
import PGStore

/// What the network allows of webhook URLs.
public struct WebhookPolicy: Sendable {
    /// Admits http and loopback addresses (tests and development; `ACCORD_WEBHOOKS_ALLOW_LOOPBACK`).
    public var allowLoopback: Bool
    /// Endpoints per institution.
    public var maxPerInstitution: Int

    public init(allowLoopback: Bool = false, maxPerInstitution: Int = 10) {
        self.allowLoopback = allowLoopback
        self.maxPerInstitution = maxPerInstitution
    }
}

/// An institution's webhook endpoints, managed by its admins (Schema/0018_webhooks.sql).
public struct WebhookService: Sendable {
    let pool: PGPool
    let policy: WebhookPolicy

    public init(pool: PGPool, policy: WebhookPolicy = WebhookPolicy()) {
        self.pool = pool
        self.policy = policy
    }

    /// The event families an endpoint may ask for (the kinds of the activity outbox).
    static let families: Set<String> = ["partnership", "agreement", "meeting", "kpi"]

    static let notAdmin = Problem.forbidden("Only the institution's admins manage its webhooks.")
    static let unknown = Problem.notFound("No such webhook.")

    func requireAdmin(of institution: UUID, _ caller: Identity) throws {
        guard caller.institutionID == institution, caller.role == .admin, !caller.isNetworkAdmin else { throw Self.notAdmin }
        try caller.requireAdmittedInstitution(notFound: Self.notAdmin, what: "it can register webhooks")
    }

    static func isEventPattern(_ text: String) -> Bool {
        if text == "*" { return true }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, families.contains(String(parts[0])) else { return false }
        return parts[1] == "*" || (!parts[1].isEmpty && parts[1].count <= 40 && parts[1].allSatisfy { $0.isLowercase || $0 == "_" })
    }

    static func newSecret() -> [UInt8] { Secrets.randomBytes(32) }

    /// Registers an endpoint: its secret is in this answer only.
    public func create(_ input: WebhookInput, for institution: UUID, caller: Identity) async throws -> Webhook {
        try requireAdmin(of: institution, caller)
        var v = Validator()
        v.check((1...20).contains(input.events.count), "/events", "must list 1 to 20 event kinds")
        for (index, event) in input.events.enumerated() where !Self.isEventPattern(event) {
            v.fail("/events/\(index)", "'\(event.prefix(60))' is not an event kind (such as partnership.accepted), a family (partnership.*) or *")
        }
        var url: URL?
        do {
            url = try await OutboundURL.check(input.url, allowLoopback: policy.allowLoopback)
        } catch {
            v.fail("/url", error.description)
        }
        try v.validate()
        let secret = Self.newSecret()
        let events = Array(Set(input.events)).sorted()
        return try await pool.withTenant(caller) { tx in
            let count = try await tx.query("SELECT count(*) FROM webhooks").scalar(Int.self)
            guard count < policy.maxPerInstitution else {
                throw Problem.conflict("An institution has at most \(policy.maxPerInstitution) webhooks; delete one first.")
            }
            let row = try await tx.query(
                """
                INSERT INTO webhooks (institution_id, url, events, secret, created_by)
                VALUES (\(institution), \(url!.absoluteString), \(events), \(Data(secret)), \(caller.accountID))
                RETURNING id, \(Timestamp.seconds("created_at"))
                """
            ).first((UUID, String).self)
            guard let row else { throw PGError(.invalidValue, message: "INSERT … RETURNING answered no row") }
            try await Audit.record(
                "webhook.created", institutionID: institution, actor: caller, targetType: "webhook", targetID: row.0.uuidString,
                detail: ["url": url!.absoluteString], on: tx)
            return Webhook(
                id: row.0, url: url!.absoluteString, events: events, status: "active", failingSince: nil, createdAt: row.1,
                secret: Base64URL.encode(secret))
        }
    }

    static let columns: PGQuery = """
        id, url, events, \(Timestamp.seconds("failing_since")), \(Timestamp.seconds("created_at")) FROM webhooks
        """

    static func webhook(_ row: PGRow) throws -> Webhook {
        let r = try row.decode((UUID, String, [String], String?, String).self)
        return Webhook(id: r.0, url: r.1, events: r.2, status: r.3 == nil ? "active" : "failing", failingSince: r.3, createdAt: r.4, secret: nil)
    }

    public func list(for institution: UUID, caller: Identity) async throws -> Page<Webhook> {
        try requireAdmin(of: institution, caller)
        let items = try await pool.withTenant(caller) { tx in
            try await tx.query("SELECT \(Self.columns) ORDER BY created_at, id").map(Self.webhook)
        }
        return Page(items: items, nextCursor: nil)
    }

    public func delete(_ id: UUID, for institution: UUID, caller: Identity) async throws {
        try requireAdmin(of: institution, caller)
        try await pool.withTenant(caller) { tx in
            guard try await tx.query("DELETE FROM webhooks WHERE id = \(id)").affectedRows == 1 else { throw Self.unknown }
            try await Audit.record(
                "webhook.deleted", institutionID: institution, actor: caller, targetType: "webhook", targetID: id.uuidString, on: tx)
        }
    }

    /// A new secret (the old one stops signing at once); the endpoint is no longer failing.
    public func rotateSecret(_ id: UUID, for institution: UUID, caller: Identity) async throws -> Webhook {
        try requireAdmin(of: institution, caller)
        let secret = Self.newSecret()
        return try await pool.withTenant(caller) { tx in
            guard try await tx.query("SELECT accord_webhook_set_secret(\(id), \(Data(secret)))").scalar(Bool.self),
                var webhook = try await tx.query("SELECT \(Self.columns) WHERE id = \(id)").first.map(Self.webhook)
            else { throw Self.unknown }
            try await Audit.record(
                "webhook.secret_rotated", institutionID: institution, actor: caller, targetType: "webhook", targetID: id.uuidString, on: tx)
            webhook.secret = Base64URL.encode(secret)
            return webhook
        }
    }

    struct DeliveryPosition: Codable {
        var id: Int
    }

    /// An endpoint's delivery log, newest first.
    public func deliveries(
        of id: UUID, for institution: UUID, limit: Int, cursor: String?, caller: Identity
    ) async throws -> Page<WebhookDeliveryLine> {
        try requireAdmin(of: institution, caller)
        let before = try cursor.map { try Cursor.decode(DeliveryPosition.self, from: $0).id } ?? Int.max
        let fetched = try await pool.withTenant(caller) { tx in
            guard try await tx.query("SELECT 1 FROM webhooks WHERE id = \(id)").first != nil else { throw Self.unknown }
            return try await tx.query(
                """
                SELECT id, event_id::text, kind,
                       CASE WHEN delivered_at IS NOT NULL THEN 'delivered' WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END,
                       attempts, last_status, last_error,
                       CASE WHEN delivered_at IS NULL AND failed_at IS NULL THEN \(Timestamp.seconds("next_attempt_at")) END,
                       \(Timestamp.seconds("delivered_at")), \(Timestamp.seconds("created_at"))
                FROM webhook_deliveries WHERE webhook_id = \(id) AND id < \(before) ORDER BY id DESC LIMIT \(limit + 1)
                """
            ).map { row in
                let r = try row.decode((Int, String, String, String, Int, Int?, String?, String?, String?, String).self)
                return WebhookDeliveryLine(
                    id: r.0, eventId: r.1, kind: r.2, status: r.3, attempts: r.4, lastStatus: r.5, lastError: r.6, nextAttemptAt: r.7,
                    deliveredAt: r.8, createdAt: r.9)
            }
        }
        return Page(fetched: fetched, limit: limit) { DeliveryPosition(id: $0.id) }
    }
}
