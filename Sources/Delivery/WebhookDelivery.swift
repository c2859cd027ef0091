import AccordCore
import AccordCrypto
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PGStore
import ServiceLifecycle
import Synchronization

/// Sends the activity outbox to the institutions' webhooks (Schema/0018_webhooks.sql): every
/// `interval` it copies new events into deliveries (and into mail for the institution's admins,
/// which `MailDelivery` sends), then POSTs the deliveries that are due, each
/// under a lease, several at once, so that a slow or failing receiver never holds up the others.
/// Each POST is signed: `Accord-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256 of "t.body">`.
public final class WebhookDelivery: Service, Sendable {
    public struct Configuration: Sendable {
        public var interval: Duration = .seconds(2)
        /// Deliveries leased per round, and POSTed at once.
        public var batch = 32
        /// How long a receiver may take to answer.
        public var timeout: Duration = .seconds(10)
        /// Attempts before a delivery fails (about a day of backoff) and its endpoint is marked failing.
        public var maxAttempts = 16
        /// Admits http and loopback receivers (tests; `ACCORD_WEBHOOKS_ALLOW_LOOPBACK`).
        public var allowLoopback = false
        /// Where the web client is served: the mails about events link there.
        public var publicBaseURL = "http://127.0.0.1:8080"

        public init() {}
    }

    public struct Counts: Sendable {
        public var delivered: Int
        public var failures: Int
    }

    let pool: PGPool
    let configuration: Configuration
    let logger: Logger
    let client: HTTPClient
    private let counts = Mutex(Counts(delivered: 0, failures: 0))

    public init(pool: PGPool, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "accord.webhooks")) {
        self.pool = pool
        self.configuration = configuration
        self.logger = logger
        var http = HTTPClient.Configuration()
        http.redirectConfiguration = .disallow
        http.timeout = .init(connect: .seconds(5), read: .seconds(Int64(configuration.timeout.components.seconds)))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    deinit { try? client.syncShutdown() }

    public var statistics: Counts { counts.withLock { $0 } }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.deliverDue()
                try? await Task.sleep(for: self.configuration.interval)
            }
        }
        try? await client.shutdown()
    }

    /// One round: new events into deliveries, then the due deliveries POSTed. How many were POSTed.
    @discardableResult
    public func deliverDue() async -> Int {
        do {
            while try await pool.query("SELECT accord_activity_dispatch(500, \(ClientLink.root(configuration.publicBaseURL)))").scalar(Int.self)
                == 500
            {}
            let leased = try await pool.query(
                """
                SELECT id, url, secret, payload::text, attempts
                FROM accord_webhook_deliveries_lease(\(configuration.batch)::integer, interval '2 minutes')
                """
            ).decode((Int64, String, Data, String, Int).self)
            await withTaskGroup(of: Void.self) { group in
                for delivery in leased {
                    group.addTask { await self.post(id: delivery.0, url: delivery.1, secret: Array(delivery.2), body: delivery.3) }
                }
            }
            return leased.count
        } catch {
            logger.warning("webhook deliveries could not be read", metadata: ["error": "\(String(reflecting: error))"])
            return 0
        }
    }

    /// The signature header of a body at a time.
    public static func signature(secret: [UInt8], timestamp: Int, body: String) -> String {
        "t=\(timestamp),v1=" + Secrets.hex(Secrets.hmac(.sha256, key: secret, message: Array("\(timestamp).\(body)".utf8)))
    }

    private func post(id: Int64, url: String, secret: [UInt8], body: String) async {
        var status: Int?
        var failure: String?
        do {
            // Checked again at each delivery: the name may resolve elsewhere now.
            let target = try await OutboundURL.check(url, allowLoopback: configuration.allowLoopback)
            var request = HTTPClientRequest(url: target.absoluteString)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "Accord-Webhooks/1")
            request.headers.add(name: "Accord-Delivery", value: "\(id)")
            request.headers.add(
                name: "Accord-Signature", value: Self.signature(secret: secret, timestamp: Int(Date().timeIntervalSince1970), body: body))
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await client.execute(request, timeout: .seconds(Int64(configuration.timeout.components.seconds)))
            status = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if !(200...299).contains(status!) { failure = "the receiver answered \(status!)" }
        } catch let refusal as OutboundURL.Refusal {
            failure = "the URL \(refusal.description)"
        } catch {
            failure = "\(error)"
        }
        do {
            try await pool.query(
                "SELECT accord_webhook_delivery_done(\(id), \(status)::integer, \(failure), \(configuration.maxAttempts)::integer)")
        } catch {
            logger.warning("a webhook delivery's outcome was not recorded", metadata: ["delivery": "\(id)", "error": "\(error)"])
        }
        counts.withLock { failure == nil ? ($0.delivered += 1) : ($0.failures += 1) }
        if let failure { logger.info("webhook not delivered", metadata: ["delivery": "\(id)", "error": "\(failure)"]) }
    }
}
