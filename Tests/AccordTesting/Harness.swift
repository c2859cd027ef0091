import AccordCore
import AccordCrypto
import AccordServer
import Directory
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTesting
import Institutions
import Logging
import NIOCore
import PGStore
import PGStoreTesting
import Rooms
import ServiceLifecycle
import Synchronization
import Testing
import Webhooks

/// Runs the real router against a fresh migrated database, with JSON helpers.
public struct Harness: Sendable {
    /// Sends a request and returns the response's status, headers and body.
    public let send: @Sendable (String, HTTPRequest.Method, HTTPFields, ByteBuffer?) async throws -> (HTTPResponse.Status, HTTPFields, ByteBuffer)
    public let database: TestDatabase
    public let pool: PGPool
    /// The identity cache, live (subscribed to the database's notifications) as in `accord serve`.
    public let identityCache: IdentityCache
    /// The directory index, live as in `accord serve`.
    public let directoryIndex: DirectoryIndex
    /// With `.sockets`: the port the server listens on (127.0.0.1).
    public let port: Int?
    /// The rooms' socket hub of the server under test.
    public let roomHub: RoomHub
    public let listener: PGListener
    /// With `listenThroughProxy`: what stands between the listener and the database.
    public let listenerProxy: TCPProxy?

    /// Fast hashing, and registrations unlimited per address (requests in `.router` tests all come
    /// from one unknown address); the throttling tests set their own limits.
    public static let identity = IdentityConfiguration(
        registrationsPerAddress: 10_000, passwordHasher: PasswordHasher(logN: 10), publicBaseURL: "https://accord.test")

    /// Rooms as the tests run them: a short ticket life is not needed, quick presence is.
    public static let rooms = RoomsConfiguration()

    /// The hub of a test instance: presence refreshed every second and offline after three.
    public static func roomHub(_ instance: String) -> RoomHub.Configuration {
        var configuration = RoomHub.Configuration(instance: instance)
        configuration.sweepInterval = .milliseconds(250)
        configuration.presenceInterval = .seconds(1)
        configuration.presenceTTL = .seconds(3)
        return configuration
    }

    /// The readiness check of a test server: patient (a loaded machine can keep the database from
    /// answering within the 3 s a probe gets); the readiness tests make their own.
    static func schemaCheck(_ pool: PGPool) throws -> SchemaCheck {
        SchemaCheck(migrations: try Migration.load(from: TestDatabase.schemaDirectory), pool: pool, timeout: .seconds(30))
    }

    /// How requests reach the router.
    public enum Transport: Sendable {
        /// Straight to the router, without a socket.
        case router
        /// Over TCP from 127.0.0.1 to a server listening on a free port, one connection per request
        /// (so concurrent requests are concurrent at the server), with a patient client (120 s: on
        /// two cores a whole test run starves single requests for seconds).
        case sockets
    }

    /// With `transport: .sockets`, requests come from 127.0.0.1, which `trustedProxies` can name
    /// so that `X-Forwarded-For` sets each request's client address; `logger` receives what the
    /// server logs.
    public static func run(
        identity: IdentityConfiguration = Harness.identity, cache: IdentityCache.Configuration = IdentityCache.Configuration(),
        listenThroughProxy: Bool = false, transport: Transport = .router, trustedProxies: String = "",
        roomLimits: RoomSocketLimits = RoomSocketLimits(), logger: Logger = Logger(label: "accord"),
        _ body: @Sendable (Harness) async throws -> Void
    ) async throws {
        try await TestDatabase.with { database in
            let pool = try database.pool(maxConnections: 4)
            let proxy = listenThroughProxy ? try TCPProxy(targetPort: Int(PGConfiguration.option("port", in: database.appURL) ?? "5432")!) : nil
            defer { proxy?.stop() }
            let listenerURL =
                try proxy.map {
                    try PGConfiguration.url(database.appURL, replacingDatabase: database.name) + " host='127.0.0.1' port='\($0.port)'"
                } ?? database.appURL
            let listener = PGListener(configuration: try PGConfiguration(url: listenerURL, connectTimeoutSeconds: 2))
            let identityCache = IdentityCache(listener: listener, configuration: cache)
            let directoryIndex = DirectoryIndex(pool: pool, listener: listener)
            var hubConfiguration = Self.roomHub("instance-1")
            hubConfiguration.limits = roomLimits
            let hub = RoomHub(pool: pool, listener: listener, configuration: hubConfiguration, logger: logger)
            let subscription = Task { try await identityCache.run() }
            let indexing = Task { try await directoryIndex.run() }
            let rooms = Task { try await hub.run() }
            defer {
                subscription.cancel()
                indexing.cancel()
                rooms.cancel()
                listener.shutdown()
            }
            try await Self.waitUntilLive(identityCache)
            let sockets = buildRoomSockets(
                pool: pool, hub: hub, identity: identity, identityCache: identityCache, rooms: Self.rooms,
                allowedOrigins: ["https://accord.test", "ws://127.0.0.1"],
                logger: logger)
            let router = buildRouter(
                pool: pool, schemaCheck: try Self.schemaCheck(pool),
                identity: identity, identityCache: identityCache, directoryIndex: directoryIndex,
                trustedProxies: try TrustedProxies(parsing: trustedProxies), rooms: Self.rooms, roomSockets: sockets,
                metrics: ServerMetrics(sources: .init(pool: pool, listener: listener, directoryIndex: directoryIndex, roomHub: hub)),
                webhooks: WebhookPolicy(allowLoopback: true), logger: logger)
            @Sendable func test(_ client: any HarnessClient) async throws {
                let harness = Harness(
                    send: client.send, database: database, pool: pool, identityCache: identityCache, directoryIndex: directoryIndex,
                    port: (client as? SocketClient)?.port, roomHub: hub, listener: listener, listenerProxy: proxy)
                try await harness.waitUntilDirectoryIndexIsCurrent()
                do {
                    try await body(harness)
                } catch let error as PGError {
                    // A test's own failure names the error's kind only (PGError hides its message
                    // from descriptions): say which connection and why.
                    Issue.record("\(String(reflecting: error))")
                    throw error
                }
            }
            switch transport {
            case .router: try await Application(router: router, logger: logger).test(.router) { try await test(RouterClient(client: $0)) }
            case .sockets: try await SocketClient.serve(router, server: webSocketServer(sockets, hub: hub), logger: logger, test)
            }
            await pool.close()
        }
    }

    /// Waits (up to 10 s) until the cache serves entries: subscribed, on a listening connection.
    public static func waitUntilLive(_ cache: IdentityCache) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !cache.isLive {
            try #require(ContinuousClock.now < deadline, "the identity cache did not go live")
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits (up to 30 s) until the directory index serves and has applied every change committed
    /// so far (directory_version): from then on, searches with q are answered from it.
    public func waitUntilDirectoryIndexIsCurrent() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        let version = try await pool.query("SELECT version FROM directory_version").scalar(Int64.self)
        while true {
            let statistics = directoryIndex.statistics
            if statistics.serving && statistics.version >= version { return }
            try #require(ContinuousClock.now < deadline, "the directory index did not catch up with version \(version): \(statistics)")
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    public struct Reply: @unchecked Sendable {
        public let status: HTTPResponse.Status
        public let headers: HTTPFields
        public let body: [String: Any]
        public var string: (String) -> String? { { self.body[$0] as? String } }
        public subscript(_ key: String) -> Any? { body[key] }
        public var problemFields: [String] { (body["errors"] as? [[String: String]] ?? []).compactMap { $0["field"] } }
    }

    @discardableResult
    public func request(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: Any? = nil, headers: HTTPFields = [:]
    ) async throws -> Reply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        var buffer: ByteBuffer?
        if let json {
            fields[.contentType] = "application/json"
            buffer = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        }
        let (status, headers, body) = try await send(uri, method, fields, buffer)
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        return Reply(status: status, headers: headers, body: object)
    }

    public static let password = "Sturdy-Passphrase-42"

    /// Registers an institution; returns (institution id, admin e-mail).
    @discardableResult
    public func register(schac: String, country: String = "BE", email: String? = nil, extra: [String: Any] = [:]) async throws -> (UUID, String) {
        let email = email ?? "intl@\(schac)"
        var institution: [String: Any] = [
            "names": [["lang": "fr", "value": "Université \(schac)"]], "schac": schac, "country": country,
            "city": "Bruxelles", "type": "university",
        ]
        institution.merge(extra) { $1 }
        let reply = try await request(
            .post, "/v1/registrations",
            json: [
                "institution": institution, "admin": ["email": email, "password": Self.password, "name": "Ana Peeters"],
            ])
        try #require(reply.status == .created, "registration failed: \(reply.body)")
        let created = reply["institution"] as! [String: Any]
        return (UUID(uuidString: created["id"] as! String)!, email)
    }

    public func signIn(_ email: String, password: String = Harness.password) async throws -> String {
        let reply = try await request(.post, "/v1/sessions", json: ["email": email, "password": password])
        try #require(reply.status == .created, "sign-in failed: \(reply.body)")
        return reply.string("token")!
    }

    /// A network admin (created as the server does from ACCORD_ADMIN_EMAIL) and their token.
    public func networkAdmin() async throws -> String {
        let service = IdentityService(pool: pool, configuration: Self.identity, reference: ReferenceData(pool: pool))
        _ = try await service.bootstrapNetworkAdmin(email: "admin@network.test", password: Self.password)
        return try await signIn("admin@network.test")
    }

    public func approve(_ id: UUID, adminToken: String) async throws {
        let reply = try await request(.post, "/v1/admin/institutions/\(id)/approve", token: adminToken, json: ["reason": "verified"])
        try #require(reply.status == .ok, "approve failed: \(reply.body)")
    }

    /// The token of the last link of `kind` (`verify-email`, `invitations`) mailed to `recipient`,
    /// read from the outbox as the mail would carry it.
    public func mailedToken(to recipient: String, kind: String) async throws -> String {
        let owner = try database.pool(asOwner: true, maxConnections: 1)
        defer { Task { await owner.close() } }
        let body = try #require(
            try await owner.query(
                "SELECT body FROM mail_outbox WHERE recipient = \(recipient) AND body LIKE \("%/\(kind)/%") ORDER BY id DESC LIMIT 1"
            )
            .first(String.self), "no \(kind) mail to \(recipient)")
        let link = try #require(body.split(whereSeparator: \.isWhitespace).first { $0.contains("/\(kind)/") })
        return String(link.split(separator: "/").last!)
    }

    /// Follows the verification link mailed to `email`.
    public func verifyEmail(of email: String) async throws {
        let token = try await mailedToken(to: email, kind: "verify-email")
        let reply = try await request(.post, "/v1/email-verifications/\(token)")
        try #require(reply.status == .ok, "verification failed: \(reply.body)")
    }

    /// An unclaimed, active directory entry, as `accord import universities` creates it.
    public func importEntry(schac: String, name: String, country: String = "BE") async throws -> UUID {
        let owner = try database.pool(asOwner: true, maxConnections: 1)
        defer { Task { await owner.close() } }
        let id = UUID()
        try await owner.query(
            """
            INSERT INTO institutions (id, schac, names, country, type, status, claimed)
            VALUES (\(id), \(schac), \(PGJSONB([LocalizedName(lang: "en", value: name)])), \(country), 'university', 'active', false)
            """)
        return id
    }

    /// Another server instance on the same database, with nothing in memory shared with the first
    /// (its own pool, listener, identity cache and room hub), listening on 127.0.0.1.
    public func startInstance(_ name: String) async throws -> TestInstance {
        let logger = Logger(label: "accord.\(name)")
        let pool = try database.pool(maxConnections: 4)
        let listener = PGListener(configuration: try PGConfiguration(url: database.appURL, connectTimeoutSeconds: 2))
        let cache = IdentityCache(listener: listener)
        let hub = RoomHub(pool: pool, listener: listener, configuration: Self.roomHub(name), logger: logger)
        let sockets = buildRoomSockets(
            pool: pool, hub: hub, identity: Self.identity, identityCache: cache, rooms: Self.rooms, allowedOrigins: [], logger: logger)
        let router = buildRouter(
            pool: pool, schemaCheck: try Self.schemaCheck(pool),
            identity: Self.identity, identityCache: cache, roomSockets: sockets, logger: logger)
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router, server: webSocketServer(sockets, hub: hub),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: name),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [pool, listener, cache, application, hub], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await Self.waitUntilLive(cache)
        return TestInstance(port: port, hub: hub, group: group, task: task)
    }

    /// Counts rows as the owner (bypassing nothing: the owner's own policies allow it).
    public func count(_ sql: String) async throws -> Int {
        let owner = try database.pool(asOwner: true, maxConnections: 1)
        defer { Task { await owner.close() } }
        return try await owner.query(PGQuery(unsafeSQL: sql)).scalar(Int.self)
    }
}

/// Keeps every message logged through it, with its metadata, for tests that check what a log holds.
public struct RecordingLogHandler: LogHandler {
    public final class Store: Sendable {
        let lines = Mutex<[String]>([])
        public init() {}
        public var all: [String] { lines.withLock { $0 } }
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    let store: Store
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public init(store: Store) { self.store = store }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        store.append("\(event.level) \(event.message) \(merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    }
}

/// What the harness sends its requests through.
protocol HarnessClient: Sendable {
    func send(
        _ uri: String, _ method: HTTPRequest.Method, _ headers: HTTPFields, _ body: ByteBuffer?
    ) async throws -> (
        HTTPResponse.Status, HTTPFields, ByteBuffer
    )
}

/// Hummingbird's router test client.
struct RouterClient: HarnessClient {
    let client: any TestClientProtocol

    func send(
        _ uri: String, _ method: HTTPRequest.Method, _ headers: HTTPFields, _ body: ByteBuffer?
    ) async throws -> (
        HTTPResponse.Status, HTTPFields, ByteBuffer
    ) {
        try await client.execute(uri: uri, method: method, headers: headers, body: body) { ($0.status, $0.headers, $0.body) }
    }
}

/// A client that sends each request over a TCP connection of its own to a server on 127.0.0.1.
struct SocketClient: HarnessClient {
    let port: Int

    static let timeout = Duration.seconds(120)

    /// Serves `router` on a free port of 127.0.0.1 while `test` runs.
    static func serve(
        _ router: Router<AccordRequestContext>, server: HTTPServerBuilder = .http1(), logger: Logger,
        _ test: @Sendable (any HarnessClient) async throws -> Void
    ) async throws {
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "accord-test"),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            },
            logger: logger)
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do {
                try await test(SocketClient(port: port))
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    func send(
        _ uri: String, _ method: HTTPRequest.Method, _ headers: HTTPFields, _ body: ByteBuffer?
    ) async throws -> (
        HTTPResponse.Status, HTTPFields, ByteBuffer
    ) {
        let request = TestClient.Request(uri, method: method, authority: "127.0.0.1", headers: headers, body: body)
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: .init(timeout: Self.timeout)) { client in
            try await client.execute(request)
        }
        return (response.head.status, response.head.headerFields, response.body ?? ByteBuffer())
    }
}

/// A second server instance started by `Harness.startInstance`.
public struct TestInstance: Sendable {
    public let port: Int
    public let hub: RoomHub
    let group: ServiceGroup
    let task: Task<Void, any Error>

    /// Stops it abruptly: its tasks are cancelled, its sockets cut (no close handshake owed).
    public func kill() async {
        task.cancel()
        _ = try? await task.value
    }

    /// Stops it gracefully: sockets get 1001 once what they are owed is written.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
