import AccordCore
import AccordCrypto
import AccordServer
import Directory
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Institutions
import NIOCore
import PGStore
import PGStoreTesting
import Testing

/// Runs the real router against a fresh migrated database, with JSON helpers.
public struct Harness {
    public let client: any TestClientProtocol
    public let database: TestDatabase
    public let pool: PGPool
    /// The identity cache, live (subscribed to the database's notifications) as in `accord serve`.
    public let identityCache: IdentityCache
    /// The directory index, live as in `accord serve`.
    public let directoryIndex: DirectoryIndex
    public let listener: PGListener
    /// With `listenThroughProxy`: what stands between the listener and the database.
    public let listenerProxy: TCPProxy?

    public static let identity = IdentityConfiguration(passwordHasher: PasswordHasher(logN: 10), publicBaseURL: "https://accord.test")

    public static func run(
        identity: IdentityConfiguration = Harness.identity, cache: IdentityCache.Configuration = IdentityCache.Configuration(),
        listenThroughProxy: Bool = false,
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
            let subscription = Task { try await identityCache.run() }
            let indexing = Task { try await directoryIndex.run() }
            defer {
                subscription.cancel()
                indexing.cancel()
                listener.shutdown()
            }
            try await Self.waitUntilLive(identityCache)
            let router = buildRouter(
                pool: pool, schemaCheck: SchemaCheck(migrations: try Migration.load(from: TestDatabase.schemaDirectory), pool: pool),
                identity: identity, identityCache: identityCache, directoryIndex: directoryIndex)
            try await Application(router: router).test(.router) { client in
                let harness = Harness(
                    client: client, database: database, pool: pool, identityCache: identityCache, directoryIndex: directoryIndex,
                    listener: listener, listenerProxy: proxy)
                try await harness.waitUntilDirectoryIndexIsCurrent()
                try await body(harness)
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
        return try await client.execute(uri: uri, method: method, headers: fields, body: buffer) { response in
            let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
            return Reply(status: response.status, headers: response.headers, body: object)
        }
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

    /// Counts rows as the owner (bypassing nothing: the owner's own policies allow it).
    public func count(_ sql: String) async throws -> Int {
        let owner = try database.pool(asOwner: true, maxConnections: 1)
        defer { Task { await owner.close() } }
        return try await owner.query(PGQuery(unsafeSQL: sql)).scalar(Int.self)
    }
}
