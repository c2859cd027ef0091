import AccordCrypto
import Delivery
import Directory
import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import PGStore
import Prometheus
import Rooms
import Synchronization

/// The server's metrics in Prometheus text format (`GET /metrics`; what each means is in
/// docs/operations.md). HTTP requests are counted by Hummingbird's `MetricsMiddleware` through
/// swift-metrics into the process's registry; the pool, the LISTEN connection, the directory
/// index, the rooms and the outbox are read from their components at each scrape into this
/// server's own registry.
public final class ServerMetrics: Sendable {
    /// What the metrics are read from.
    public struct Sources: Sendable {
        public var pool: PGPool
        public var listener: PGListener?
        public var directoryIndex: DirectoryIndex?
        public var roomHub: RoomHub?
        /// Mail delivery, when SMTP is configured (the outbox is measured either way).
        public var mail: MailDelivery?
        public var webhooks: WebhookDelivery?

        public init(
            pool: PGPool, listener: PGListener? = nil, directoryIndex: DirectoryIndex? = nil, roomHub: RoomHub? = nil, mail: MailDelivery? = nil,
            webhooks: WebhookDelivery? = nil
        ) {
            self.webhooks = webhooks
            self.pool = pool
            self.listener = listener
            self.directoryIndex = directoryIndex
            self.roomHub = roomHub
            self.mail = mail
        }
    }

    /// The registry swift-metrics writes to in this process, bootstrapped on first use (once per
    /// process, as swift-metrics allows).
    static let processRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Makes sure swift-metrics writes to `processRegistry` (call before any request is served).
    public static func bootstrap() { _ = processRegistry }

    let sources: Sources
    /// `ACCORD_METRICS_TOKEN`: when set, a scrape must carry it as a bearer token.
    let token: String?
    private let registry = PrometheusCollectorRegistry()
    /// Counter values at the last scrape, so that each scrape adds what is new.
    private let counted = Mutex<[String: Double]>([:])

    public init(sources: Sources, token: String? = nil) {
        Self.bootstrap()
        self.sources = sources
        self.token = token
    }

    /// Adds the `GET /metrics` route.
    public func addRoute<Context: RequestContext>(to router: Router<Context>) {
        router.get("metrics") { request, _ -> Response in
            if let token = self.token {
                let sent = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""
                guard Secrets.constantTimeEquals(Array(sent.utf8), Array(token.utf8)) else {
                    return Response(
                        status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"metrics\"", .contentType: "text/plain; charset=utf-8"],
                        body: .init(
                            byteBuffer: ByteBuffer(string: "This endpoint needs the metrics token (ACCORD_METRICS_TOKEN) as a bearer token.\n")))
                }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: await self.render())))
        }
    }

    /// The text of a scrape: this server's components, then the process's HTTP metrics.
    public func render() async -> [UInt8] {
        await sample()
        var buffer = registry.emitToBuffer()
        Self.processRegistry.emit(into: &buffer)
        return buffer
    }

    private func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        registry.makeGauge(name: name, labels: labels, help: help).set(value)
    }

    /// Adds to a counter what its source counted since the last scrape.
    private func counter(_ name: String, _ help: String, total: Double) {
        let counter = registry.makeCounter(name: name, labels: [], help: help)
        let delta = counted.withLock { counted -> Double in
            let delta = total - (counted[name] ?? 0)
            counted[name] = total
            return delta
        }
        if delta > 0 { counter.increment(by: delta) }
    }

    private func sample() async {
        let pool = sources.pool.metrics
        for (state, value) in [("open", pool.open), ("leased", pool.leased), ("idle", pool.idle)] {
            gauge("accord_db_pool_connections", "Database connections of the pool, by state.", Double(value), labels: [("state", state)])
        }
        gauge("accord_db_pool_waiting", "Callers waiting for a database connection now.", Double(pool.waiting))
        counter("accord_db_pool_waits_total", "Callers that had to wait for a database connection.", total: Double(pool.waits))
        counter("accord_db_pool_wait_seconds_total", "Time callers spent waiting for a database connection.", total: pool.waitSeconds)
        counter("accord_db_pool_timeouts_total", "Callers that found no free database connection in time.", total: Double(pool.timeouts))
        if let listener = sources.listener {
            gauge(
                "accord_db_listener_up", "Whether the LISTEN connection is connected and listening (1) or not (0).",
                listener.connectionEpoch != nil ? 1 : 0)
            counter(
                "accord_db_listener_reconnects_total", "Times the LISTEN connection was opened again after it was lost.",
                total: Double(listener.reconnectCount))
        }
        if let index = sources.directoryIndex {
            let statistics = index.statistics
            gauge("accord_directory_index_serving", "Whether the directory index answers searches (1) or SQL does (0).", statistics.serving ? 1 : 0)
            gauge("accord_directory_index_entries", "Institutions listed in the directory index.", Double(statistics.entries))
            if let version = try? await sources.pool.query("SELECT version FROM directory_version").scalar(Int64.self) {
                gauge(
                    "accord_directory_index_version_lag", "Directory changes not yet applied to the index.",
                    Double(max(0, version - statistics.version)))
            }
        }
        if let row = try? await sources.pool.query("SELECT pending, oldest_seconds, failing, abandoned FROM accord_mail_outbox_stats()").first(
            (Int, Double, Int, Int).self)
        {
            gauge("accord_outbox_mail_pending", "Mail waiting in the outbox to be sent.", Double(row.0))
            gauge("accord_outbox_mail_oldest_age_seconds", "How long the oldest mail waiting has waited.", row.1)
            gauge("accord_outbox_mail_failing", "Mail waiting whose last attempt failed.", Double(row.2))
            gauge("accord_outbox_mail_abandoned", "Mail given up on (refused for good, or attempts spent).", Double(row.3))
        }
        if let mail = sources.mail {
            let statistics = mail.statistics
            counter("accord_outbox_mail_sent_total", "Mail the SMTP server accepted.", total: Double(statistics.sent))
            counter("accord_outbox_mail_failures_total", "Attempts to send mail that failed.", total: Double(statistics.failures))
        }
        if let webhooks = sources.webhooks {
            let statistics = webhooks.statistics
            counter("accord_outbox_webhooks_delivered_total", "Webhook deliveries the receiver accepted (2xx).", total: Double(statistics.delivered))
            counter("accord_outbox_webhooks_failures_total", "Webhook delivery attempts that failed.", total: Double(statistics.failures))
        }
        if let hub = sources.roomHub {
            gauge("accord_room_sockets", "Room sockets open on this instance.", Double(hub.socketCount))
            counter(
                "accord_room_messages_total", "New room messages handed to this instance's sockets.",
                total: Double(hub.counters.messages.load(ordering: .relaxed)))
            counter(
                "accord_room_slow_consumer_closes_total", "Room sockets closed because their client could not keep up.",
                total: Double(hub.counters.slowConsumerCloses.load(ordering: .relaxed)))
            counter(
                "accord_room_ephemeral_dropped_total", "Typing and presence events dropped for sockets under pressure.",
                total: Double(hub.counters.ephemeralDropped.load(ordering: .relaxed)))
        }
    }
}
