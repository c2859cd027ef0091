import AccordCore
import AccordServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Institutions
import Logging
import PGStore
import PGStoreTesting
import Rooms
import Testing

@Suite("HTTP server: health, readiness, errors, request ids")
struct ServerTests {
    func withRouter(
        database: TestDatabase?, url: String? = nil,
        _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        // Generous limits: on a loaded CI machine a first connection may take seconds, and a
        // readiness check that ran out of time would answer "unreachable" instead of what is tested.
        let pool = PGPool(configuration: try PGConfiguration(url: url ?? database!.appURL, maxConnections: 2, connectTimeoutSeconds: 15))
        let migrations = try Migration.load(from: TestDatabase.schemaDirectory)
        let router = buildRouter(pool: pool, schemaCheck: SchemaCheck(migrations: migrations, pool: pool, timeout: .seconds(20)))
        let app = Application(router: router)
        try await app.test(.router) { client in try await body(client) }
        await pool.close()
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any])
    }

    @Test func healthAndReadinessOnACurrentSchema() async throws {
        try await TestDatabase.with { database in
            try await withRouter(database: database) { client in
                try await client.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try json(response.body)
                    #expect(body["status"] as? String == "ok")
                }
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try json(response.body)
                    #expect(body["status"] as? String == "ready")
                    #expect(body["migrations"] as? Int == (try Migration.load(from: TestDatabase.schemaDirectory)).count)
                }
            }
        }
    }

    @Test func notReadyWhenTheSchemaIsBehind() async throws {
        try await TestDatabase.with(migrated: false) { database in
            try await withRouter(database: database) { client in
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.contentType] == "application/problem+json")
                    let body = try json(response.body)
                    #expect(body["type"] as? String == "urn:accord:problem:unavailable")
                    #expect((body["detail"] as? String)?.contains("accord migrate") == true)
                }
            }
        }
    }

    @Test func notReadyWhenTheDatabaseIsUnreachable() async throws {
        try await withRouter(database: nil, url: "postgresql://accord_app@127.0.0.1:1/accord") { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try json(response.body)
                #expect(body["detail"] as? String == "Not ready: the database is unreachable.")
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func unknownRoutesAreProblemJSONWithTheRequestID() async throws {
        try await TestDatabase.with(migrated: false) { database in
            try await withRouter(database: database) { client in
                try await client.execute(uri: "/v1/nothing-here", method: .get, headers: [HTTPField.Name("X-Request-ID")!: "trace-42"]) { response in
                    #expect(response.status == .notFound)
                    #expect(response.headers[.contentType] == "application/problem+json")
                    #expect(response.headers[HTTPField.Name("X-Request-ID")!] == "trace-42")
                    let body = try json(response.body)
                    #expect(body["type"] as? String == "urn:accord:problem:not-found")
                    #expect(body["status"] as? Int == 404)
                    #expect(body["requestId"] as? String == "trace-42")
                    #expect(body["instance"] as? String == "/v1/nothing-here")
                }
                // A known path with a method it does not have: 405 with Allow.
                try await client.execute(uri: "/healthz", method: .delete) { response in
                    #expect(response.status == .methodNotAllowed)
                    #expect(response.headers[.allow] == "GET")
                    #expect(response.headers[.contentType] == "application/problem+json")
                }
                try await client.execute(uri: "/v1/institutions/9c4e1f0e-0000-4000-8000-000000000000/members/x", method: .post) { response in
                    #expect(response.status == .methodNotAllowed)
                    #expect(response.headers[.allow] == "DELETE, PATCH")
                }
                // An unreasonable request id is replaced by a fresh one.
                try await client.execute(uri: "/healthz", method: .get, headers: [HTTPField.Name("X-Request-ID")!: "bad id\u{7f}"]) { response in
                    let id = response.headers[HTTPField.Name("X-Request-ID")!] ?? ""
                    #expect(id.count == 36)
                }
            }
        }
    }
}

@Suite("Recovery when the database goes away and comes back")
struct RecoveryTests {
    @Test func readinessRecoversOnItsOwn() async throws {
        try await TestDatabase.with { database in
            let port = Int(PGConfiguration.option("port", in: database.appURL) ?? "5432")!
            let proxy = try TCPProxy(targetPort: port)
            let url =
                try PGConfiguration.url(database.appURL, replacingDatabase: database.name)
                + " host='127.0.0.1' port='\(proxy.port)'"
            // A database that went away refuses at once; one that came back may be slow to connect
            // on a loaded machine.
            let pool = PGPool(configuration: try PGConfiguration(url: url, maxConnections: 2, connectTimeoutSeconds: 15))
            let router = buildRouter(
                pool: pool, schemaCheck: SchemaCheck(migrations: try Migration.load(from: TestDatabase.schemaDirectory), pool: pool))
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
                proxy.stop()  // the database goes away: open connections drop, new ones are refused
                try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
                try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
                try proxy.start()  // and comes back
                var status = HTTPResponse.Status.serviceUnavailable
                let deadline = ContinuousClock.now + .seconds(60)
                while status != .ok, ContinuousClock.now < deadline {
                    status = try await client.execute(uri: "/readyz", method: .get).status
                    if status != .ok { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(status == .ok, "ready again within a minute, without a restart")
            }
            proxy.stop()
            await pool.close()
        }
    }
}

@Suite("The OpenAPI contract")
struct ContractTests {
    /// (METHOD, /path/{param}) pairs of the document, read line by line.
    static func documentedOperations() throws -> Set<String> {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        var operations = Set<String>()
        var inPaths = false
        var currentPath: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") {
                inPaths = true
                continue
            }
            if inPaths, let first = line.first, first != " ", first != "#" { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast()).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            } else if let path = currentPath, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "patch", "delete"].contains(String(key)) { operations.insert("\(key.uppercased()) \(path)") }
            }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedOperationExists() async throws {
        let configuration = try PGConfiguration(url: "postgresql://nobody@127.0.0.1:1/none", maxConnections: 1)
        let pool = PGPool(configuration: configuration)
        // Composed as `accord serve` composes it: room sockets included (nothing connects).
        let listener = PGListener(configuration: configuration)
        defer { listener.shutdown() }
        let sockets = buildRoomSockets(
            pool: pool, hub: RoomHub(pool: pool, listener: listener), identity: IdentityConfiguration(), identityCache: nil,
            rooms: RoomsConfiguration(), allowedOrigins: [])
        let router = buildRouter(
            pool: pool, schemaCheck: SchemaCheck(migrations: [], pool: pool), roomSockets: sockets, metrics: ServerMetrics(sources: .init(pool: pool))
        )
        let routes = Set(
            router.routes.map { route -> String in
                let path = route.path.description.split(separator: "/").map { part -> String in
                    part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                }.joined(separator: "/")
                return "\(route.method.rawValue) /\(path)"
            })
        let documented = try Self.documentedOperations()
        #expect(routes.count >= 20)
        for route in routes.sorted() { #expect(documented.contains(route), "\(route) is not in docs/openapi.yaml") }
        for operation in documented.sorted() { #expect(routes.contains(operation), "\(operation) is documented but not routed") }
    }

    @Test func theServerServesItsContract() async throws {
        let pool = PGPool(configuration: try PGConfiguration(url: "postgresql://nobody@127.0.0.1:1/none", maxConnections: 1))
        let router = buildRouter(pool: pool, schemaCheck: SchemaCheck(migrations: [], pool: pool))
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/openapi.yaml", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/yaml")
                #expect(String(buffer: response.body).hasPrefix("openapi: 3.1"))
            }
        }
    }

    /// The quoted values of the `enum:` line of the schema `name` in docs/openapi.yaml.
    static func documentedEnum(_ name: String) throws -> [String] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        let start = try #require(lines.firstIndex(of: "    \(name):"), "no schema \(name)")
        let line = try #require(lines[start...].prefix(6).first { $0.hasPrefix("      enum: [") })
        return line.split(separator: "'").enumerated().filter { $0.offset % 2 == 1 }.map {
            String($0.element).replacingOccurrences(of: "''", with: "'")
        }
    }

    @Test func theContractsVocabulariesAreTheDatabasesReferenceLists() async throws {
        try await TestDatabase.with { database in
            let pool = PGPool(configuration: try PGConfiguration(url: database.appURL, maxConnections: 1, connectTimeoutSeconds: 30))
            let lists = try await ReferenceData(pool: pool).lists()
            await pool.close()
            #expect(Set(try Self.documentedEnum("CountryCode")) == lists.countries)
            #expect(Set(try Self.documentedEnum("LanguageCode")) == lists.languages)
            #expect(Set(try Self.documentedEnum("RegionCode")) == Set(lists.regions.keys))
            #expect(Set(try Self.documentedEnum("RegionName")) == Set(lists.regions.values))
        }
    }
}
