import AccordCore
import AccordTesting
import Foundation
import HTTPTypes
import Institutions
import NIOCore
import PGStore
import PGStoreTesting
import Testing

@Suite("Identity cache")
struct IdentityCacheTests {
    @Test func repeatedRequestsAreServedFromMemoryAndChangesHereEndThemAtOnce() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "kuleuven.be")
            try await h.approve(id, adminToken: admin)
            let token = try await h.signIn(email)

            let first = try await h.request(.get, "/v1/me", token: token)
            #expect(first.status == .ok)
            let before = h.identityCache.statistics
            let again = try await h.request(.get, "/v1/me", token: token)
            #expect(again.status == .ok)
            #expect(NSDictionary(dictionary: again.body).isEqual(to: first.body))
            #expect(h.identityCache.statistics.hits == before.hits + 1, "the second /v1/me did not come from memory")
            // Other routes resolve the token from memory too.
            #expect(try await h.request(.get, "/v1/institutions/\(id)", token: token).status == .ok)
            #expect(h.identityCache.statistics.hits == before.hits + 2)

            // A role change made through this server is seen by the very next request.
            let invited = try await h.request(
                .post, "/v1/institutions/\(id)/invitations", token: token, json: ["email": "prof@kuleuven.be", "role": "faculty"])
            let acceptToken = try #require(invited.string("token"), "invitation failed: \(invited.body)")
            let accepted = try await h.request(.post, "/v1/invitations/\(acceptToken)/accept", json: ["name": "Jan", "password": Harness.password])
            let colleague = try #require(accepted.string("token"))
            let colleagueID = try #require((accepted["user"] as? [String: Any])?["id"] as? String)
            #expect(try await Self.role(h, colleague) == "faculty")
            #expect(try await h.request(.patch, "/v1/institutions/\(id)/members/\(colleagueID)", token: token, json: ["role": "staff"]).status == .ok)
            #expect(try await Self.role(h, colleague) == "staff")

            // So is a suspension, on every route, and a reinstatement.
            #expect(try await h.request(.post, "/v1/admin/institutions/\(id)/suspend", token: admin, json: ["reason": "unpaid fees"]).status == .ok)
            #expect(try await h.request(.get, "/v1/me", token: token).status == .unauthorized)
            #expect(try await h.request(.get, "/v1/institutions/\(id)", token: token).status == .unauthorized)
            #expect(try await h.request(.post, "/v1/admin/institutions/\(id)/reinstate", token: admin, json: ["reason": "paid"]).status == .ok)
            #expect(try await h.request(.get, "/v1/me", token: token).status == .ok)

            // And signing out.
            #expect(try await h.request(.delete, "/v1/sessions/current", token: token).status == .noContent)
            #expect(try await h.request(.get, "/v1/me", token: token).status == .unauthorized)
        }
    }

    @Test func changesMadeByAnyOtherProgramReachTheCacheThroughTheDatabase() async throws {
        try await Harness.run { h in
            let (id, email) = try await h.register(schac: "ugent.be")
            let token = try await h.signIn(email)
            #expect(try await Self.name(h, token) == "Ana Peeters")
            #expect(try await Self.name(h, token) == "Ana Peeters")  // now from memory

            // psql, another instance, `accord` on the command line: a change committed elsewhere.
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            let invalidations = h.identityCache.statistics.invalidations
            try await owner.query("UPDATE users SET name = 'Ana De Smet' WHERE institution_id = \(id)")
            try await Self.eventually { try await Self.name(h, token) == "Ana De Smet" }
            #expect(h.identityCache.statistics.invalidations > invalidations)

            // A contact changed elsewhere is part of /v1/me as well.
            try await owner.query(
                "INSERT INTO institution_contacts (institution_id, role, name, email) VALUES (\(id), 'Mobility', 'Piet', 'piet@ugent.be')")
            try await Self.eventually {
                let me = try await h.request(.get, "/v1/me", token: token)
                let contacts = (me["institution"] as? [String: Any])?["contacts"] as? [[String: String]] ?? []
                return contacts.contains { $0["name"] == "Piet" }
            }

            // A session revoked elsewhere stops working.
            #expect(try await h.request(.get, "/v1/institutions/\(id)", token: token).status == .ok)
            try await owner.query("DELETE FROM sessions WHERE institution_id = \(id)")
            try await Self.eventually { try await h.request(.get, "/v1/institutions/\(id)", token: token).status == .unauthorized }
            #expect(try await h.request(.get, "/v1/me", token: token).status == .unauthorized)
        }
    }

    @Test func withoutItsListeningConnectionTheCacheServesNothingAndAfterwardsForgetsEverything() async throws {
        try await Harness.run(listenThroughProxy: true) { h in
            let (id, email) = try await h.register(schac: "vub.be")
            let token = try await h.signIn(email)
            #expect(try await Self.name(h, token) == "Ana Peeters")
            #expect(try await Self.name(h, token) == "Ana Peeters")
            let epoch = try #require(h.listener.connectionEpoch)
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }

            // The listener's connection drops (the database stays up for everything else), and a
            // change commits while nobody listens: its notification is lost.
            let proxy = try #require(h.listenerProxy)
            proxy.stop()
            try await Self.eventually { h.listener.connectionEpoch == nil }
            #expect(!h.identityCache.isLive)
            try await owner.query("UPDATE users SET name = 'Ana Janssens' WHERE institution_id = \(id)")
            // Meanwhile every request asks the database.
            #expect(try await Self.name(h, token) == "Ana Janssens")

            // Another change while still deaf; then a new connection listens: nothing from before it
            // is served, and the cache serves again.
            try await owner.query("UPDATE users SET name = 'Ana Wouters' WHERE institution_id = \(id)")
            try proxy.start()
            try await Self.eventually(seconds: 20) { h.identityCache.isLive && h.listener.connectionEpoch != epoch }
            #expect(try await Self.name(h, token) == "Ana Wouters")
            let hits = h.identityCache.statistics.hits
            #expect(try await Self.name(h, token) == "Ana Wouters")
            #expect(h.identityCache.statistics.hits == hits + 1)
        }
    }

    @Test func signInsClearExpiredSessionsWithoutDisturbingTheCache() async throws {
        try await Harness.run { h in
            let (id, email) = try await h.register(schac: "ulb.be")
            let token = try await h.signIn(email)
            #expect(try await h.request(.get, "/v1/me", token: token).status == .ok)
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            let user = try await owner.query("SELECT id FROM users WHERE institution_id = \(id)").scalar(UUID.self)
            for n in 0..<3 {
                let hash = Data([UInt8](repeating: UInt8(n), count: 32))
                try await owner.query(
                    """
                    INSERT INTO sessions (token_hash, user_id, institution_id, expires_at)
                    VALUES (\(hash), \(user), \(id), now() - interval '1 hour')
                    """)
            }
            let invalidations = h.identityCache.statistics.invalidations
            _ = try await h.signIn(email)
            #expect(try await h.count("SELECT count(*) FROM sessions WHERE expires_at <= now()") == 0)
            #expect(try await h.count("SELECT count(*) FROM sessions") == 2)
            // Removing sessions that had expired changes no answer: nothing was forgotten.
            try await Task.sleep(for: .milliseconds(200))
            #expect(h.identityCache.statistics.invalidations == invalidations)
            let hits = h.identityCache.statistics.hits
            #expect(try await h.request(.get, "/v1/me", token: token).status == .ok)
            #expect(h.identityCache.statistics.hits == hits + 1)
        }
    }

    @Test func anExpiredSessionIsNotServedFromMemory() async throws {
        var identity = Harness.identity
        identity.sessionLifetime = 3
        try await Harness.run(identity: identity) { h in
            let (_, email) = try await h.register(schac: "uantwerpen.be")
            let before = Date()
            let token = try await h.signIn(email)
            let after = Date()  // the session expires between before + 3 s and after + 3 s
            let first = try await h.request(.get, "/v1/me", token: token).status
            let hits = h.identityCache.statistics.hits
            let second = try await h.request(.get, "/v1/me", token: token).status
            if Date() < before.addingTimeInterval(2.8) {  // a machine slow enough to outlive the session proves nothing here
                #expect(first == .ok && second == .ok)
                #expect(h.identityCache.statistics.hits == hits + 1, "the second /v1/me did not come from memory")
            }
            try await Task.sleep(for: .seconds(max(0, after.addingTimeInterval(3.3).timeIntervalSinceNow)))
            #expect(try await h.request(.get, "/v1/me", token: token).status == .unauthorized)
        }
    }

    @Test func entriesAreBoundedInAgeAndNumberAndARacingReadIsNotStored() async throws {
        try await Harness.run(cache: IdentityCache.Configuration(maxEntries: 2, maxBytes: 1024, maxAge: .seconds(1))) { h in
            let cache = h.identityCache
            let identity = Identity(
                accountID: UUID(), institutionID: UUID(), role: .staff, isNetworkAdmin: false, institutionStatus: .active, tokenHash: [])
            let entry = IdentityCache.Entry(identity: identity, me: ByteBuffer(string: "{}"), expiresAt: Date(timeIntervalSinceNow: 3600))
            func hash(_ n: UInt8) -> [UInt8] { [UInt8](repeating: n, count: 32) }
            func ticket(_ key: [UInt8]) throws -> IdentityCache.Ticket {
                guard case .miss(let ticket?) = cache.lookup(key) else { throw Failure("expected a miss with a ticket") }
                return ticket
            }
            func isHit(_ key: [UInt8]) -> Bool { if case .hit = cache.lookup(key) { true } else { false } }

            // A read that started before an invalidation is not stored after it.
            let stale = try ticket(hash(1))
            cache.invalidateAll()
            cache.store(hash(1), entry, ticket: stale)
            #expect(!isHit(hash(1)))
            cache.store(hash(1), entry, ticket: try ticket(hash(1)))
            guard case .hit(let found) = cache.lookup(hash(1)) else { throw Failure("expected a hit") }
            #expect(found.identity == identity && found.me == ByteBuffer(string: "{}"))

            // Never more than maxEntries, nor more than maxBytes of bodies.
            for n: UInt8 in 2...4 { cache.store(hash(n), entry, ticket: try ticket(hash(n))) }
            #expect(cache.statistics.entries <= 2)
            #expect(cache.statistics.bytes == cache.statistics.entries * 2)
            let big = IdentityCache.Entry(identity: identity, me: ByteBuffer(repeating: 32, count: 2048), expiresAt: Date(timeIntervalSinceNow: 3600))
            cache.store(hash(7), big, ticket: try ticket(hash(7)))
            #expect(!isHit(hash(7)), "a body over maxBytes was kept")
            #expect(cache.statistics.bytes <= 1024)

            // Never older than maxAge, nor past the session's expiry.
            cache.store(hash(5), entry, ticket: try ticket(hash(5)))
            #expect(isHit(hash(5)))
            try await Task.sleep(for: .milliseconds(1200))
            #expect(!isHit(hash(5)))
            let expired = IdentityCache.Entry(identity: identity, me: ByteBuffer(string: "{}"), expiresAt: Date(timeIntervalSinceNow: -1))
            cache.store(hash(6), expired, ticket: try ticket(hash(6)))
            #expect(!isHit(hash(6)))
        }
    }

    @Test func withoutAListeningConnectionNothingIsServedOrStored() async throws {
        let listener = PGListener(configuration: try PGConfiguration(url: try TestDatabase.environmentURL("ACCORD_DATABASE_URL")))
        defer { listener.shutdown() }
        let cache = IdentityCache(listener: listener)  // never subscribed
        #expect(!cache.isLive)
        guard case .miss(nil) = cache.lookup([UInt8](repeating: 7, count: 32)) else {
            Issue.record("a cache that is not subscribed handed out a ticket")
            return
        }
    }

    // MARK: Helpers

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func name(_ h: Harness, _ token: String) async throws -> String? {
        let me = try await h.request(.get, "/v1/me", token: token)
        return (me["user"] as? [String: Any])?["name"] as? String
    }

    static func role(_ h: Harness, _ token: String) async throws -> String? {
        (try await h.request(.get, "/v1/me", token: token)["roles"] as? [String])?.first
    }

    /// Polls `condition` until it holds (a notification is asynchronous), failing after `seconds`.
    static func eventually(seconds: Double = 5, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw Failure("the condition did not hold within \(seconds) s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
