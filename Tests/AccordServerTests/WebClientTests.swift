import AccordCore
import AccordServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PGStore
import PGStoreTesting
import Testing
import WebClient

@Suite("The web client's files")
struct WebClientTests {
    func withRouter(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let pool = PGPool(configuration: try PGConfiguration(url: "postgresql://nobody@127.0.0.1:1/none", maxConnections: 1))
        let router = buildRouter(pool: pool, schemaCheck: SchemaCheck(migrations: [], pool: pool))
        try await Application(router: router).test(.router, body)
    }

    @Test func theClientIsServedFromTheRootWithAPolicyThatForbidsInlineScripts() async throws {
        try await withRouter { client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                let policy = try #require(response.headers[HTTPField.Name("Content-Security-Policy")!])
                #expect(policy.contains("script-src 'self'"))
                #expect(!policy.contains("unsafe-inline"))
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                let html = String(buffer: response.body)
                #expect(html.contains("<script type=\"module\" src=\"/js/app.js\"></script>"))
                // No inline script: every <script> has a src.
                #expect(html.components(separatedBy: "<script").count - 1 == html.components(separatedBy: "<script type=\"module\" src=").count - 1)
            }
            try await client.execute(uri: "/js/app.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.contains("javascript") == true)
                let etag = try #require(response.headers[.eTag])
                try await client.execute(uri: "/js/app.js", method: .get, headers: [.ifNoneMatch: etag]) { again in
                    #expect(again.status == .notModified)
                }
            }
        }
    }

    @Test func noScriptOfTheClientSetsHTML() throws {
        let folder = try #require(WebClientMiddleware<BasicRequestContext>.folder)
        let files = try #require(FileManager.default.enumerator(atPath: folder.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".js") }
        #expect(files.count >= 5)
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                #expect(!text.contains(sink), "\(file) uses \(sink)")
            }
        }
    }

    @Test func theClientsRegionNamesAreTheDatabases() async throws {
        let folder = try #require(WebClientMiddleware<BasicRequestContext>.folder)
        let script = try String(contentsOf: folder.appendingPathComponent("js/dom.js"), encoding: .utf8)
        let block = try #require(
            script.range(of: "const m49 = {").flatMap { start in
                script[start.upperBound...].range(of: "};").map { script[start.upperBound..<$0.lowerBound] }
            })
        var names: [String: String] = [:]
        for match in block.matches(of: /"([0-9]{3})": "([^"]+)"/) { names[String(match.1)] = String(match.2) }
        try await TestDatabase.with { database in
            let pool = PGPool(configuration: try PGConfiguration(url: database.appURL, maxConnections: 1, connectTimeoutSeconds: 30))
            let lists = try await ReferenceData(pool: pool).lists()
            await pool.close()
            #expect(names == lists.regions)
        }
    }

    @Test func theAPIKeepsItsProblemsAndMethods() async throws {
        try await withRouter { client in
            try await client.execute(uri: "/v1/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            try await client.execute(uri: "/no-such-file.js", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            try await client.execute(uri: "/index.html", method: .post) { response in
                #expect(response.status != .ok)
            }
            try await client.execute(uri: "/js/../../openapi.yaml", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }
}
