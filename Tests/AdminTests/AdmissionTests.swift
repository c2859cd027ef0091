import AccordTesting
import Foundation
import HTTPTypes
import NIOCore
import PGStore
import Testing

@Suite("Admission, tiers and the audit log")
struct AdmissionTests {
    @Test func admissionDecisionsAndTheirEffectOnSessions() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "uclouvain.be")
            let userToken = try await h.signIn(email)

            // Only network admins.
            #expect(try await h.request(.get, "/v1/admin/institutions", token: userToken).status == .forbidden)
            let pending = try await h.request(.get, "/v1/admin/institutions?status=pending", token: admin)
            #expect(pending.status == .ok)
            #expect((pending["items"] as? [[String: Any]])?.map { $0["schac"] as? String } == ["uclouvain.be"])
            #expect(try await h.request(.get, "/v1/admin/institutions?status=bogus", token: admin).status == .unprocessableContent)

            // Reject needs a reason; suspend needs an active institution.
            #expect(try await h.request(.post, "/v1/admin/institutions/\(id)/reject", token: admin, json: [:]).status == .unprocessableContent)
            #expect(try await h.request(.post, "/v1/admin/institutions/\(id)/suspend", token: admin, json: ["reason": "x"]).status == .conflict)
            try await h.approve(id, adminToken: admin)

            // Suspension ends existing sessions at once and blocks sign-in.
            let suspended = try await h.request(.post, "/v1/admin/institutions/\(id)/suspend", token: admin, json: ["reason": "unpaid fees"])
            #expect(suspended.string("status") == "suspended")
            #expect(try await h.request(.get, "/v1/me", token: userToken).status == .unauthorized)
            #expect(try await h.request(.post, "/v1/sessions", json: ["email": email, "password": Harness.password]).status == .forbidden)
            #expect(
                try await h.request(.post, "/v1/admin/institutions/\(id)/reinstate", token: admin, json: ["reason": "paid"]).string("status")
                    == "active")
            _ = try await h.signIn(email)

            let tier = try await h.request(.patch, "/v1/admin/institutions/\(id)", token: admin, json: ["tier": "premium"])
            #expect(tier.string("tier") == "premium")
            let audit = try await h.request(.get, "/v1/admin/audit-events?limit=100", token: admin)
            let actions = (audit["items"] as? [[String: Any]])?.compactMap { $0["action"] as? String } ?? []
            for action in [
                "institution.registered", "institution.approve", "institution.suspend", "institution.reinstate", "institution.tier_changed",
            ] {
                #expect(actions.contains(action), "\(action) not audited")
            }

            // Filters: by institution, action (or a prefix), and time; unknown values are named.
            let filtered = try await h.request(.get, "/v1/admin/audit-events?institution=\(id)&action=institution.suspend", token: admin)
            #expect((filtered["items"] as? [[String: Any]])?.compactMap { $0["action"] as? String } == ["institution.suspend"])
            let prefixed = try await h.request(.get, "/v1/admin/audit-events?action=institution.*&institution=\(id)&limit=100", token: admin)
            #expect((prefixed["items"] as? [[String: Any]])?.allSatisfy { ($0["action"] as? String)?.hasPrefix("institution.") == true } == true)
            #expect((prefixed["items"] as? [Any])?.count == 5)
            let future = try await h.request(.get, "/v1/admin/audit-events?since=2999-01-01T00:00:00Z", token: admin)
            #expect((future["items"] as? [Any])?.isEmpty == true)
            let bad = try await h.request(.get, "/v1/admin/audit-events?since=yesterday&institution=x&action=DROP%20TABLE", token: admin)
            #expect(bad.status == .unprocessableContent)
            #expect(Set(bad.problemFields) == ["since", "institution", "action"])
            #expect(try await h.request(.get, "/v1/admin/audit-events?format=xml", token: admin).problemFields == ["format"])
            // CSV: the same events, one line each after the header.
            let (status, headers, body) = try await h.send(
                "/v1/admin/audit-events?format=csv&institution=\(id)&action=institution.*", .get, [.authorization: "Bearer \(admin)"], nil)
            #expect(status == .ok)
            #expect(headers[.contentType] == "text/csv; charset=utf-8")
            let csv = String(buffer: body).split(separator: "\r\n")
            #expect(csv.first == "id,occurredAt,action,institutionId,actorUserId,actorAdminId,targetType,targetId,detail,clientAddress")
            #expect(csv.count == 6)
            #expect(csv.dropFirst().allSatisfy { $0.contains(",institution.") && $0.contains(id.uuidString.lowercased()) })
        }
    }

    @Test func adminListsPageWithKeysetCursors() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            for schac in ["a.example.be", "b.example.be", "c.example.be"] { try await h.register(schac: schac) }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await h.request(.get, "/v1/admin/institutions?limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""), token: admin)
                #expect(page.status == .ok)
                seen += (page["items"] as? [[String: Any]] ?? []).compactMap { $0["schac"] as? String }
                cursor = page["nextCursor"] as? String
            } while cursor != nil && seen.count < 10
            #expect(seen == ["c.example.be", "b.example.be", "a.example.be"])
            #expect(try await h.request(.get, "/v1/admin/institutions?cursor=bm90LWEtY3Vyc29y", token: admin).status == .badRequest)
            #expect(try await h.request(.get, "/v1/admin/institutions?limit=0", token: admin).status == .unprocessableContent)
            let audit = try await h.request(.get, "/v1/admin/audit-events?limit=2", token: admin)
            #expect((audit["items"] as? [Any])?.count == 2)
            #expect(audit["nextCursor"] as? String != nil)
        }
    }

    @Test func theAuditLogIsAppendOnlyForTheServer() async throws {
        try await Harness.run { h in
            try await h.register(schac: "vub.be")
            let admin = try await h.networkAdmin()
            _ = admin
            for statement in ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
                await #expect(throws: (any Error).self) {
                    try await h.pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
                        try await tx.execute(unsafeSQL: statement)
                    }
                }
            }
            #expect(try await h.count("SELECT count(*) FROM audit_events") >= 1)
        }
    }
}

@Suite("Network statistics")
struct NetworkStatsTests {
    @Test func theStatisticsMatchCountsMadeIndependently() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (a, emailA) = try await h.register(schac: "ulb.be")
            let (b, emailB) = try await h.register(schac: "uva.nl", country: "NL")
            let (c, _) = try await h.register(schac: "unibo.it", country: "IT")
            try await h.approve(a, adminToken: admin)
            try await h.approve(b, adminToken: admin)
            _ = c  // stays pending
            _ = try await h.request(.patch, "/v1/admin/institutions/\(b)", token: admin, json: ["tier": "premium"])
            let ana = try await h.signIn(emailA)
            let bram = try await h.signIn(emailB)
            let proposed = try await h.request(
                .post, "/v1/partnerships", token: ana,
                json: ["partner": b.uuidString.lowercased(), "message": "Hello", "activities": ["summer_school"]])
            _ = try await h.request(.post, "/v1/partnerships/\(proposed.string("id")!)/accept", token: bram)
            let room = try await h.request(.post, "/v1/rooms", token: ana, json: ["title": "Summer school 2027"])
            for n in 1...3 {
                _ = try await h.request(
                    .post, "/v1/rooms/\(room.string("id")!)/messages", token: ana, json: ["clientId": "m\(n)", "body": "note \(n)"])
            }
            _ = try await h.request(.post, "/v1/admin/institutions/\(a)/suspend", token: admin, json: ["reason": "audit"])

            let stats = try await h.request(.get, "/v1/admin/stats", token: admin)
            try #require(stats.status == .ok, "\(stats.body)")
            let institutions = try #require(stats["institutions"] as? [String: Any])
            // Counted independently, as the owner.
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            func counts(_ sql: String) async throws -> [String: Int] {
                Dictionary(uniqueKeysWithValues: try await owner.query(PGQuery(unsafeSQL: sql)).decode((String, Int).self))
            }
            #expect(institutions["byStatus"] as? [String: Int] == (try await counts("SELECT status, count(*)::int FROM institutions GROUP BY 1")))
            #expect(institutions["byTier"] as? [String: Int] == (try await counts("SELECT tier, count(*)::int FROM institutions GROUP BY 1")))
            #expect(
                institutions["byCountry"] as? [String: Int] == (try await counts("SELECT country::text, count(*)::int FROM institutions GROUP BY 1")))
            #expect(
                institutions["byRegion"] as? [String: Int]
                    == (try await counts(
                        "SELECT coalesce(c.region, 'Unknown'), count(*)::int FROM institutions i LEFT JOIN countries c ON c.code = i.country GROUP BY 1"
                    )))
            #expect(institutions["total"] as? Int == 3)
            #expect((stats["partnerships"] as? [String: Any])?["byStage"] as? [String: Int] == ["negotiating": 1])
            let rooms = try #require(stats["rooms"] as? [String: Any])
            #expect(rooms["total"] as? Int == (try await counts("SELECT 'rooms', count(*)::int FROM rooms"))["rooms"])  // the partnership's room too
            #expect(rooms["activeLast30Days"] as? Int == 1)
            #expect((rooms["messagesPerDay"] as? [[String: Any]])?.last?["messages"] as? Int == 3)
            let months = try #require(stats["perMonth"] as? [[String: Any]])
            #expect(months.count == 24)
            #expect(months.last?["registrations"] as? Int == 3)
            #expect(months.last?["admissions"] as? Int == 2)
            #expect(
                (stats["directory"] as? [String: Any])?["entries"] as? Int
                    == (try await counts("SELECT 'd', count(*)::int FROM directory_entries"))["d"])
            await owner.close()

            // CSV, and who may not.
            let (status, headers, body) = try await h.send("/v1/admin/stats?format=csv", .get, [.authorization: "Bearer \(admin)"], nil)
            #expect(status == .ok)
            #expect(headers[.contentType] == "text/csv; charset=utf-8")
            let csv = String(buffer: body)
            #expect(csv.hasPrefix("metric,key,value\r\n"))
            #expect(csv.contains("institutions.byStatus,pending,1\r\n"))
            #expect(csv.contains("partnerships.byStage,negotiating,1\r\n"))
            #expect(try await h.request(.get, "/v1/admin/stats?format=xml", token: admin).problemFields == ["format"])
            #expect(try await h.request(.get, "/v1/admin/stats", token: bram).status == .forbidden)
            #expect(try await h.request(.get, "/v1/admin/stats").status == .unauthorized)
        }
    }
}

@Suite("The administrators' list of institutions")
struct AdminInstitutionListTests {
    @Test func filtersByStatusTierCountryRegionAndWords() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (ulb, _) = try await h.register(schac: "ulb.be", extra: ["names": [["lang": "fr", "value": "Université Libre de Bruxelles"]]])
            let (uva, _) = try await h.register(
                schac: "uva.nl", country: "NL", extra: ["names": [["lang": "en", "value": "University of Amsterdam"]]])
            let (usp, _) = try await h.register(
                schac: "usp.br", country: "BR", extra: ["names": [["lang": "pt", "value": "Universidade de São Paulo"]]])
            try await h.approve(uva, adminToken: admin)
            try await h.approve(usp, adminToken: admin)
            _ = try await h.request(.patch, "/v1/admin/institutions/\(usp)", token: admin, json: ["tier": "premium"])
            func ids(_ query: String) async throws -> [String] {
                let reply = try await h.request(.get, "/v1/admin/institutions?\(query)", token: admin)
                #expect(reply.status == .ok, "\(query): \(reply.body)")
                return (reply["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            }
            #expect(try await ids("status=pending") == [ulb.uuidString.lowercased()])
            #expect(try await ids("tier=premium") == [usp.uuidString.lowercased()])
            #expect(try await ids("country=NL") == [uva.uuidString.lowercased()])
            #expect(try await ids("region=150") == [uva.uuidString.lowercased(), ulb.uuidString.lowercased()])  // Europe, newest first
            #expect(try await ids("region=150&sort=oldest") == [ulb.uuidString.lowercased(), uva.uuidString.lowercased()])
            #expect(try await ids("region=419") == [usp.uuidString.lowercased()])  // Latin America and the Caribbean
            #expect(try await ids("q=amsterdam") == [uva.uuidString.lowercased()])
            #expect(try await ids("q=USP.BR") == [usp.uuidString.lowercased()])
            #expect(try await ids("q=100%25") == [])
            #expect(try await ids("status=active&country=BR&tier=premium&q=paulo") == [usp.uuidString.lowercased()])
            // Every filter value that does not exist is named.
            let bad = try await h.request(.get, "/v1/admin/institutions?status=gone&tier=gold&country=XX&region=999&sort=name", token: admin)
            #expect(bad.status == .unprocessableContent)
            #expect(Set(bad.problemFields) == ["status", "tier", "country", "region", "sort"])
        }
    }
}

@Suite("User accounts")
struct AdminUserTests {
    @Test func searchDisableAndEnableAccounts() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (a, emailA) = try await h.register(schac: "ulb.be")
            let (b, emailB) = try await h.register(schac: "uva.nl", country: "NL")
            try await h.approve(a, adminToken: admin)
            try await h.approve(b, adminToken: admin)
            let bram = try await h.signIn(emailB)
            // Search by words of an e-mail address or name, institution, role, status.
            let found = try await h.request(.get, "/v1/admin/users?q=UVA.NL", token: admin)
            let items = try #require(found["items"] as? [[String: Any]])
            #expect(items.compactMap { $0["email"] as? String } == [emailB])
            let user = try #require(items.first)
            #expect(Set(user.keys).isSuperset(of: ["id", "email", "name", "institution", "role", "status"]))
            #expect(
                user["institution"] as? String == b.uuidString.lowercased() && user["role"] as? String == "admin"
                    && user["status"] as? String == "active")
            #expect((try await h.request(.get, "/v1/admin/users?institution=\(a)", token: admin)["items"] as? [[String: Any]])?.count == 1)
            let bad = try await h.request(.get, "/v1/admin/users?role=dean&status=gone&institution=x", token: admin)
            #expect(Set(bad.problemFields) == ["role", "status", "institution"])

            // Disabling ends the account's sessions and sign-ins; enabling restores sign-in.
            let id = try #require(user["id"] as? String)
            let disabled = try await h.request(.post, "/v1/admin/users/\(id)/disable", token: admin)
            #expect(disabled.string("status") == "disabled")
            #expect(try await h.request(.get, "/v1/me", token: bram).status == .unauthorized)
            #expect(try await h.request(.post, "/v1/sessions", json: ["email": emailB, "password": Harness.password]).status == .forbidden)
            #expect((try await h.request(.get, "/v1/admin/users?status=disabled", token: admin)["items"] as? [Any])?.count == 1)
            let enabled = try await h.request(.post, "/v1/admin/users/\(id)/enable", token: admin)
            #expect(enabled.string("status") == "active")
            _ = try await h.signIn(emailB)
            #expect(try await h.request(.post, "/v1/admin/users/\(UUID())/disable", token: admin).status == .notFound)
            // Only network administrators.
            let ana = try await h.signIn(emailA)
            #expect(try await h.request(.get, "/v1/admin/users", token: ana).status == .forbidden)
            #expect(try await h.request(.post, "/v1/admin/users/\(id)/disable", token: ana).status == .forbidden)
            #expect(try await h.request(.get, "/v1/admin/users").status == .unauthorized)
            let audit = try await h.request(.get, "/v1/admin/audit-events?action=account.*&institution=\(b)", token: admin)
            #expect((audit["items"] as? [[String: Any]])?.compactMap { $0["action"] as? String } == ["account.enabled", "account.disabled"])
        }
    }
}
