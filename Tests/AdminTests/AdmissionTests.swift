import AccordTesting
import Foundation
import HTTPTypes
import NIOCore
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
