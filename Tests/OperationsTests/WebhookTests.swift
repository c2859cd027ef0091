import AccordCore
import AccordCrypto
import AccordTesting
import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PGStore
import Synchronization
import Testing
import Webhooks

/// A webhook receiver on a local port: `/ok` answers 204, `/beside-slow` too once `/slow` has a
/// request in hand (30 s at most), `/fail` 500 while `failing` is on, `/slow` does not answer for
/// five minutes. It keeps what it received.
final class Receiver: Sendable {
    struct Received: Sendable {
        let path: String
        let headers: HTTPFields
        let body: String
    }

    let received = Mutex<[Received]>([])
    let failing = Mutex(true)
    let port: Int
    let task: Task<Void, any Error>

    private init(port: Int, task: Task<Void, any Error>) {
        self.port = port
        self.task = task
    }

    static func start() async throws -> Receiver {
        let box = Mutex<Receiver?>(nil)
        let router = Router()
        for path in ["ok", "beside-slow", "fail", "slow"] {
            router.post(RouterPath(stringLiteral: path)) { request, _ -> HTTPResponse.Status in
                let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
                let receiver = box.withLock { $0 }
                receiver?.received.withLock { $0.append(Received(path: path, headers: request.headers, body: body)) }
                switch path {
                case "fail": return receiver?.failing.withLock({ $0 }) == true ? .internalServerError : .noContent
                case "slow":
                    try await Task.sleep(for: .seconds(300))
                    return .noContent
                case "beside-slow":
                    // Answered only while the slow one is in hand: delivered one after the other,
                    // with the slow one after it, this one would time out.
                    let deadline = ContinuousClock.now + .seconds(30)
                    while receiver?.bodies("slow").isEmpty != false, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    return .noContent
                default: return .noContent
                }
            }
        }
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                sink.yield(channel.localAddress?.port ?? 0)
                sink.finish()
            })
        let task = Task { try await app.runService() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let receiver = Receiver(port: port, task: task)
        box.withLock { $0 = receiver }
        return receiver
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }
    func bodies(_ path: String) -> [String] { received.withLock { $0.filter { $0.path == path }.map(\.body) } }
    func stop() { task.cancel() }
}

struct WebhookNetwork {
    let admin: String
    let a: UUID
    let b: UUID
    let ana: String
    let bram: String

    static func make(_ h: Harness) async throws -> WebhookNetwork {
        let admin = try await h.networkAdmin()
        let (a, emailA) = try await h.register(schac: "ulb.be")
        let (b, emailB) = try await h.register(schac: "uva.nl", country: "NL")
        try await h.approve(a, adminToken: admin)
        try await h.approve(b, adminToken: admin)
        return WebhookNetwork(admin: admin, a: a, b: b, ana: try await h.signIn(emailA), bram: try await h.signIn(emailB))
    }

    /// Bram proposes a partnership to Ana's institution: one event for A.
    func propose(_ h: Harness) async throws -> String {
        let reply = try await h.request(
            .post, "/v1/partnerships", token: bram,
            json: ["partner": a.uuidString.lowercased(), "message": "Shall we?", "activities": ["student_exchange"]])
        try #require(reply.status == .created)
        return try #require(reply.string("id"))
    }
}

@Suite("Webhooks")
struct WebhookTests {
    static func delivery(_ h: Harness, timeout: Duration = .seconds(10)) -> WebhookDelivery {
        var configuration = WebhookDelivery.Configuration()
        configuration.allowLoopback = true
        configuration.timeout = timeout
        configuration.publicBaseURL = "https://accord.test"
        return WebhookDelivery(pool: h.pool, configuration: configuration)
    }

    /// An admin registers an endpoint (its secret shown once); each event that concerns the
    /// institution is POSTed with ids only, signed with HMAC-SHA-256 over the time and the body;
    /// the delivery log shows it; the secret rotates; the endpoint is deleted.
    @Test func eventsArePostedSignedWithIdsOnly() async throws {
        let receiver = try await Receiver.start()
        defer { receiver.stop() }
        try await Harness.run { h in
            let n = try await WebhookNetwork.make(h)
            let created = try await h.request(
                .post, "/v1/institutions/\(n.a)/webhooks", token: n.ana, json: ["url": receiver.url("ok"), "events": ["partnership.*"]])
            #expect(created.status == .created && created.headers[.cacheControl] == "no-store")
            let secret = try #require(created.string("secret").flatMap(Base64URL.decode))
            #expect(secret.count == 32 && created.string("status") == "active")
            let id = try #require(created.string("id"))
            let other = try await h.request(
                .post, "/v1/institutions/\(n.a)/webhooks", token: n.ana, json: ["url": receiver.url("ok"), "events": ["agreement.approved"]])
            #expect(other.status == .created)

            let partnership = try await n.propose(h)
            let delivery = Self.delivery(h)
            #expect(await delivery.deliverDue() == 1, "only the endpoint that asked for partnership.* gets partnership.proposed")
            let received = try #require(receiver.received.withLock { $0.first })
            let body = try #require(try JSONSerialization.jsonObject(with: Data(received.body.utf8)) as? [String: String])
            #expect(body["kind"] == "partnership.proposed" && body["partnership"] == partnership.lowercased())
            #expect(body["institution"] == n.a.uuidString.lowercased() && body["actor"] == n.b.uuidString.lowercased())
            #expect(body["id"] != nil && body["occurredAt"]?.hasSuffix("Z") == true && body.count == 6, "ids only")
            let signature = try #require(received.headers[HTTPField.Name("Accord-Signature")!])
            let parts = Dictionary(
                uniqueKeysWithValues: signature.split(separator: ",").map { part in
                    let pair = part.split(separator: "=", maxSplits: 1)
                    return (String(pair[0]), String(pair[1]))
                })
            let timestamp = try #require(parts["t"].flatMap(Int.init))
            #expect(abs(timestamp - Int(Date().timeIntervalSince1970)) < 60)
            let expected = Secrets.hex(Secrets.hmac(.sha256, key: secret, message: Array("\(timestamp).\(received.body)".utf8)))
            #expect(parts["v1"] == expected)
            #expect(await delivery.deliverDue() == 0, "delivered once")
            // The institution's admins got mail too: about their admission, and about the proposal.
            let mails = try await h.count(
                "SELECT count(*) FROM mail_outbox WHERE recipient = 'intl@ulb.be' AND subject = 'Your institution is now a member of the Accord network'"
            )
            #expect(mails == 1)
            let proposal = try await h.count(
                """
                SELECT count(*) FROM mail_outbox WHERE recipient = 'intl@ulb.be' AND subject LIKE 'Accord: % sent your institution a message of intent'
                  AND body LIKE '%https://accord.test/#/partnerships/\(partnership.lowercased())%'
                """)
            #expect(proposal == 1)

            let log = try await h.request(.get, "/v1/institutions/\(n.a)/webhooks/\(id)/deliveries", token: n.ana)
            let lines = try #require(log["items"] as? [[String: Any]])
            #expect(lines.count == 1 && lines[0]["status"] as? String == "delivered" && lines[0]["lastStatus"] as? Int == 204)
            let listed = try await h.request(.get, "/v1/institutions/\(n.a)/webhooks", token: n.ana)
            let items = try #require(listed["items"] as? [[String: Any]])
            #expect(items.count == 2 && items.allSatisfy { $0["secret"] == nil })

            let rotated = try await h.request(.post, "/v1/institutions/\(n.a)/webhooks/\(id)/rotate-secret", token: n.ana)
            #expect(rotated.status == .ok && rotated.string("secret") != nil && rotated.string("secret").flatMap(Base64URL.decode) != secret)
            #expect(try await h.request(.delete, "/v1/institutions/\(n.a)/webhooks/\(id)", token: n.ana).status == .noContent)
            #expect(try await h.request(.delete, "/v1/institutions/\(n.a)/webhooks/\(id)", token: n.ana).status == .notFound)
            #expect(try await h.count("SELECT count(*) FROM webhook_deliveries") == 0)
            let audit = try await h.request(.get, "/v1/admin/audit-events?action=webhook.*&institution=\(n.a)", token: n.admin)
            #expect((audit["items"] as? [[String: Any]])?.compactMap { $0["action"] as? String }.first == "webhook.deleted")
        }
    }

    /// Bad URLs and event kinds are 422 naming the field; only the institution's admins may act.
    @Test func badEndpointsAndOtherCallersAreRefused() async throws {
        try await Harness.run { h in
            let n = try await WebhookNetwork.make(h)
            let path = "/v1/institutions/\(n.a)/webhooks"
            let privateURL = try await h.request(.post, path, token: n.ana, json: ["url": "https://10.1.2.3/hook", "events": ["*"]])
            #expect(privateURL.status == .unprocessableContent && privateURL.problemFields == ["/url"])
            let ftp = try await h.request(.post, path, token: n.ana, json: ["url": "ftp://example.org/hook", "events": ["*"]])
            #expect(ftp.problemFields == ["/url"])
            let events = try await h.request(
                .post, path, token: n.ana, json: ["url": "http://127.0.0.1:9/x", "events": ["rooms.*", "partnership.accepted"]])
            #expect(events.problemFields == ["/events/0"])
            #expect(try await h.request(.post, path, token: n.ana, json: ["url": "http://127.0.0.1:9/x", "events": []]).problemFields == ["/events"])
            #expect(try await h.request(.post, path, token: n.bram, json: ["url": "http://127.0.0.1:9/x", "events": ["*"]]).status == .forbidden)
            #expect(try await h.request(.get, path, token: n.admin).status == .forbidden)
            #expect(try await h.request(.get, path).status == .unauthorized)
            #expect(try await h.count("SELECT count(*) FROM webhooks") == 0, "a refused request stores nothing")

            // Without the test switch: https only, and never loopback or private addresses.
            for (url, refusal) in [
                ("http://example.org/x", OutboundURL.Refusal.scheme), ("https://127.0.0.1/x", .privateAddress("127.0.0.1")),
                ("https://[::1]/x", .privateAddress("0:0:0:0:0:0:0:1")), ("https://user:pw@example.org/x", .credentials),
                ("https://169.254.169.254/latest", .privateAddress("169.254.169.254")),
                ("https://[::ffff:192.168.1.1]/", .privateAddress("0:0:0:0:0:ffff:c0a8:101")),
            ] {
                await #expect(throws: refusal, "\(url)") { try await OutboundURL.check(url, allowLoopback: false) }
            }
            #expect(OutboundURL.isPublic([93, 184, 216, 34]) && !OutboundURL.isPublic([172, 20, 0, 1]) && !OutboundURL.isPublic([100, 64, 0, 1]))
        }
    }

    /// A receiver that fails is tried again later and never holds up the others; one that times
    /// out neither; after the last attempt the endpoint is marked failing, and a success clears it.
    @Test func failingReceiversAreRetriedWithoutBlockingOthers() async throws {
        let receiver = try await Receiver.start()
        defer { receiver.stop() }
        try await Harness.run { h in
            let n = try await WebhookNetwork.make(h)
            var ids: [String: String] = [:]
            for path in ["beside-slow", "fail", "slow"] {
                let created = try await h.request(
                    .post, "/v1/institutions/\(n.a)/webhooks", token: n.ana, json: ["url": receiver.url(path), "events": ["*"]])
                ids[path] = created.string("id")
            }
            _ = try await n.propose(h)
            // Each POST has 10 s; the slow receiver would take five minutes: the round ends at the
            // timeout, with the others delivered.
            let delivery = Self.delivery(h, timeout: .seconds(10))
            #expect(await delivery.deliverDue() == 3)
            #expect(receiver.bodies("beside-slow").count == 1 && receiver.bodies("fail").count == 1)
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            let states = try await owner.query(
                """
                SELECT w.url, d.delivered_at IS NOT NULL, d.attempts, coalesce(d.last_status, 0), d.next_attempt_at > now()
                FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                """
            ).decode((String, Bool, Int, Int, Bool).self)
            for (url, delivered, attempts, status, later) in states {
                if url.hasSuffix("/beside-slow") { #expect(delivered && attempts == 1 && status == 204) }
                if url.hasSuffix("/fail") { #expect(!delivered && attempts == 1 && status == 500 && later) }
                if url.hasSuffix("/slow") { #expect(!delivered && attempts == 1 && status == 0 && later) }
            }
            #expect(await delivery.deliverDue() == 0, "not before the backoff")

            // The last attempt fails: the endpoint is failing; then a success clears it.
            try await owner.query(
                "UPDATE webhook_deliveries SET next_attempt_at = now(), attempts = 15 WHERE delivered_at IS NULL AND webhook_id = \(UUID(uuidString: ids["fail"]!)!)"
            )
            #expect(await delivery.deliverDue() == 1)
            let failing = try await h.request(.get, "/v1/institutions/\(n.a)/webhooks", token: n.ana)
            let row = (failing["items"] as? [[String: Any]])?.first { $0["id"] as? String == ids["fail"] }
            #expect(row?["status"] as? String == "failing" && row?["failingSince"] != nil)
            let log = try await h.request(.get, "/v1/institutions/\(n.a)/webhooks/\(ids["fail"]!)/deliveries", token: n.ana)
            #expect((log["items"] as? [[String: Any]])?.first?["status"] as? String == "failed")
            receiver.failing.withLock { $0 = false }
            let partnership = try #require(try await owner.query("SELECT id FROM partnerships").first(UUID.self))
            #expect(try await h.request(.post, "/v1/partnerships/\(partnership)/withdraw", token: n.bram).status == .ok)
            try await owner.query("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE delivered_at IS NULL AND failed_at IS NULL")
            _ = await delivery.deliverDue()
            let cleared = try await h.request(.get, "/v1/institutions/\(n.a)/webhooks", token: n.ana)
            #expect((cleared["items"] as? [[String: Any]])?.first { $0["id"] as? String == ids["fail"] }?["status"] as? String == "active")
        }
    }
}
