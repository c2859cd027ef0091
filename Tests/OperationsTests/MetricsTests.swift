import AccordServer
import AccordTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PGStore
import Testing

@Suite("Metrics")
struct MetricsTests {
    /// The value of the first sample of `name` whose labels include `labels`, from Prometheus text.
    static func sample(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        let pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/
        for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
            let rest = line.dropFirst(name.count)
            guard rest.first == "{" || rest.first == " " else { continue }
            var found: [String: String] = [:]
            if rest.first == "{", let end = rest.lastIndex(of: "}") {
                for match in rest[..<end].matches(of: pair) { found[String(match.output.1)] = String(match.output.2) }
            }
            guard labels.allSatisfy({ found[$0.key] == $0.value }) else { continue }
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// A scrape shows requests by route template, method and status with their durations, and the
    /// pool, the LISTEN connection, the directory index and the rooms as they are.
    @Test func aScrapeShowsRequestsAndEveryComponent() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (id, _) = try await h.register(schac: "metrics.test")
            for _ in 1...3 { _ = try await h.request(.get, "/v1/admin/institutions/\(id)", token: admin) }
            _ = try await h.request(.get, "/v1/admin/institutions/\(UUID())", token: admin)
            let (status, headers, body) = try await h.send("/metrics", .get, [:], nil)
            #expect(status == .ok && headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(buffer: body)
            let route = ["http_route": "/v1/admin/institutions/{id}", "http_request_method": "GET"]
            #expect((Self.sample(text, "hb_requests", route.merging(["http_response_status_code": "200"]) { $1 }) ?? 0) >= 3)
            #expect((Self.sample(text, "hb_requests", route.merging(["http_response_status_code": "404"]) { $1 }) ?? 0) >= 1)
            #expect((Self.sample(text, "http_server_request_duration_count", route.merging(["http_response_status_code": "200"]) { $1 }) ?? 0) >= 3)
            #expect(text.contains("http_server_request_duration_bucket{"))
            #expect(!text.contains("/v1/admin/institutions/\(id)"), "paths are templates, never ids")
            #expect(Self.sample(text, "accord_db_pool_connections", ["state": "open"]).map { $0 >= 1 } == true)
            #expect(Self.sample(text, "accord_db_pool_waiting") == 0)
            #expect(Self.sample(text, "accord_db_pool_timeouts_total") != nil)
            #expect(Self.sample(text, "accord_db_listener_up") == 1)
            #expect(Self.sample(text, "accord_directory_index_serving") == 1)
            #expect(Self.sample(text, "accord_directory_index_version_lag") == 0)
            #expect(Self.sample(text, "accord_directory_index_entries") != nil)
            #expect(Self.sample(text, "accord_room_sockets") == 0)
            #expect(Self.sample(text, "accord_room_slow_consumer_closes_total") != nil)
            #expect(text.contains("# HELP accord_db_pool_wait_seconds_total"))
            // The registration's verification mail waits in the outbox (no SMTP here).
            #expect((Self.sample(text, "accord_outbox_mail_pending") ?? 0) >= 1)
            #expect((Self.sample(text, "accord_outbox_mail_oldest_age_seconds") ?? -1) >= 0)
        }
    }

    /// With a token, a scrape without it (or with another) is a 401.
    @Test func aTokenGuardsTheMetrics() async throws {
        let configuration = try PGConfiguration(url: "postgresql://nobody@127.0.0.1:1/none", maxConnections: 1)
        let pool = PGPool(configuration: configuration)
        let metrics = ServerMetrics(sources: .init(pool: pool), token: "a-metrics-token-of-some-length")
        let router = Router()
        metrics.addRoute(to: router)
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer wrong-token-of-some-length"]) {
                #expect($0.status == .unauthorized)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer a-metrics-token-of-some-length"]) {
                #expect($0.status == .ok && String(buffer: $0.body).contains("accord_db_pool_connections"))
            }
        }
    }
}

@Suite("JSON logs")
struct JSONLogTests {
    final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
    }

    /// One JSON object per line: time, level, logger, message and the metadata's keys.
    @Test func eachLineIsOneJSONObject() throws {
        let lines = Lines()
        var logger = Logger(label: "accord.test") { JSONLogHandler(label: $0, write: { lines.append($0) }) }
        logger[metadataKey: "request_id"] = "r-1"
        logger.info("request", metadata: ["status": .stringConvertible(201), "route": "/v1/rooms/{id}", "nested": ["a": "b"]])
        logger.debug("not at info")
        #expect(lines.lines.count == 1)
        let line = try #require(lines.lines.first)
        #expect(line.hasSuffix("\n") && line.dropLast().contains("\n") == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info" && object["logger"] as? String == "accord.test" && object["message"] as? String == "request")
        #expect(object["request_id"] as? String == "r-1" && object["status"] as? String == "201" && object["route"] as? String == "/v1/rooms/{id}")
        #expect(object["nested"] as? [String: String] == ["a": "b"])
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }
}

@Suite("Request bodies")
struct RequestBodyTests {
    /// A body declared as something else than JSON is a 415; JSON, with parameters or as a +json
    /// type, is read.
    @Test func onlyJSONBodiesAreRead() async throws {
        try await Harness.run { h in
            let body = ByteBuffer(string: #"{"email": "nobody@example.org", "password": "Not-The-Password-1"}"#)
            let (plain, headers, problem) = try await h.send("/v1/sessions", .post, [.contentType: "text/plain"], body)
            #expect(plain == .unsupportedMediaType && headers[.contentType] == "application/problem+json")
            #expect(String(buffer: problem).contains("urn:accord:problem:unsupported-media-type"))
            #expect(try await h.send("/v1/sessions", .post, [.contentType: "application/json; charset=utf-8"], body).0 == .unauthorized)
            #expect(try await h.send("/v1/sessions", .post, [.contentType: "application/merge-patch+json"], body).0 == .unauthorized)
        }
    }
}

@Suite("Ids on the wire")
struct WireIDTests {
    /// Every id the API writes is in lower case (RFC 9562); ids are read in any case.
    @Test func idsAreWrittenInLowerCaseAndReadInAnyCase() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "ulb.be")
            try await h.approve(id, adminToken: admin)
            let ana = try await h.signIn(email)
            let room = try await h.request(.post, "/v1/rooms", token: ana, json: ["title": "Ids"])
            let uuid = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/
            for path in ["/v1/me", "/v1/institutions/\(id)", "/v1/directory?q=ulb", "/v1/rooms", "/v1/admin/institutions/\(id)"] {
                let token = path.hasPrefix("/v1/admin") ? admin : ana
                let (status, _, body) = try await h.send(path, .get, [.authorization: "Bearer \(token)"], nil)
                let text = String(buffer: body)
                let ids = text.matches(of: uuid).map { String($0.output) }
                #expect(status == .ok && !ids.isEmpty, "\(path)")
                #expect(ids.allSatisfy { $0 == $0.lowercased() }, "\(path): \(ids.filter { $0 != $0.lowercased() })")
            }
            let roomID = try #require(room.string("id"))
            #expect(roomID == roomID.lowercased())
            #expect(try await h.request(.get, "/v1/rooms/\(roomID.uppercased())", token: ana).status == .ok)
            #expect(try await h.request(.get, "/v1/institutions/\(id.uuidString.lowercased())", token: ana).status == .ok)
        }
    }
}
