import AccordTesting
import Foundation
import HTTPTypes
import Testing

@Suite("Profiles, members, invitations, isolation")
struct MembershipTests {
    @Test func profileVisibilityAndOptimisticConcurrency() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (a, emailA) = try await h.register(schac: "ulb.be", extra: ["contacts": [["role": "Office", "name": "Ana", "email": "ana@ulb.be"]]])
            let (b, emailB) = try await h.register(schac: "unibo.it", country: "IT")
            let tokenA = try await h.signIn(emailA)
            let tokenB = try await h.signIn(emailB)

            // Pending: invisible to other members.
            #expect(try await h.request(.get, "/v1/institutions/\(a)", token: tokenB).status == .notFound)
            let own = try await h.request(.get, "/v1/institutions/\(a)", token: tokenA)
            #expect(own.status == .ok)
            #expect((own["contacts"] as? [[String: String]])?.count == 1)
            let etag = try #require(own.headers[.eTag])

            // If-Match: required, and must be current.
            #expect(try await h.request(.patch, "/v1/institutions/\(a)", token: tokenA, json: ["city": "Ixelles"]).status == .preconditionRequired)
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)", token: tokenA, json: ["city": "Ixelles"], headers: [.ifMatch: "\"v999\""]).status
                    == .preconditionFailed)
            let patched = try await h.request(
                .patch, "/v1/institutions/\(a)", token: tokenA, json: ["city": "Ixelles", "studentCount": 35000], headers: [.ifMatch: etag])
            #expect(patched.status == .ok)
            #expect(patched.string("city") == "Ixelles")
            #expect(patched.headers[.eTag] != etag)
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)", token: tokenA, json: ["city": "X"], headers: [.ifMatch: etag]).status
                    == .preconditionFailed)
            let invalid = try await h.request(
                .patch, "/v1/institutions/\(a)", token: tokenA, json: ["country": "ZZ"], headers: [.ifMatch: patched.headers[.eTag]!])
            #expect(invalid.status == .unprocessableContent)
            #expect(invalid.problemFields == ["/country"])
            // `*` matches whatever is current (RFC 9110); a list matches when it names the current version.
            let any = try await h.request(.patch, "/v1/institutions/\(a)", token: tokenA, json: ["city": "Etterbeek"], headers: [.ifMatch: "*"])
            #expect(any.status == .ok && any.string("city") == "Etterbeek")
            let listed = try await h.request(
                .patch, "/v1/institutions/\(a)", token: tokenA, json: ["city": "Uccle"], headers: [.ifMatch: "\"v1\", \(any.headers[.eTag]!)"])
            #expect(listed.status == .ok)

            // Another institution cannot change it, nor learn it exists, whatever its If-Match.
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)", token: tokenB, json: ["city": "X"], headers: [.ifMatch: "\"v2\""]).status
                    == .notFound)
            #expect(try await h.request(.patch, "/v1/institutions/\(a)", token: tokenB, json: ["city": "X"]).status == .notFound)
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)", token: tokenB, json: ["city": "X"], headers: [.ifMatch: "*"]).status == .notFound
            )

            // Active and listed: the published profile, without contacts.
            try await h.approve(a, adminToken: admin)
            let published = try await h.request(.get, "/v1/institutions/\(a)", token: tokenB)
            #expect(published.status == .ok)
            #expect(published["contacts"] == nil)
            #expect(published.string("city") == "Uccle")
            // The network admin sees everything.
            #expect((try await h.request(.get, "/v1/institutions/\(b)", token: admin))["contacts"] != nil)
            #expect(try await h.request(.get, "/v1/institutions/not-a-uuid", token: tokenA).status == .notFound)
        }
    }

    @Test func membersRolesAndTheLastAdmin() async throws {
        try await Harness.run { h in
            let (a, emailA) = try await h.register(schac: "uva.nl", country: "NL")
            let (_, emailB) = try await h.register(schac: "tudelft.nl", country: "NL")
            let tokenA = try await h.signIn(emailA)
            let tokenB = try await h.signIn(emailB)
            // Not admitted yet: no invitation, no mail.
            let early = try await h.request(
                .post, "/v1/institutions/\(a)/invitations", token: tokenA, json: ["email": "colleague@uva.nl", "role": "staff"])
            #expect(early.status == .forbidden)
            #expect(try await h.count("SELECT count(*) FROM mail_outbox WHERE recipient = 'colleague@uva.nl'") == 0)
            try await h.approve(a, adminToken: try await h.networkAdmin())
            let members = try await h.request(.get, "/v1/institutions/\(a)/members", token: tokenA)
            let items = try #require(members["items"] as? [[String: Any]])
            #expect(items.count == 1)
            let adminID = try #require(items[0]["id"] as? String)

            // The last admin can be neither demoted nor removed.
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)/members/\(adminID)", token: tokenA, json: ["role": "staff"]).status == .conflict)
            #expect(try await h.request(.delete, "/v1/institutions/\(a)/members/\(adminID)", token: tokenA).status == .conflict)
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)/members/\(adminID)", token: tokenA, json: ["role": "wizard"]).status
                    == .unprocessableContent)

            // Another institution's members are invisible.
            #expect(try await h.request(.get, "/v1/institutions/\(a)/members", token: tokenB).status == .notFound)
            #expect(try await h.request(.delete, "/v1/institutions/\(a)/members/\(adminID)", token: tokenB).status == .notFound)

            // Invite a colleague as staff; they accept and sign in.
            let invitation = try await h.request(
                .post, "/v1/institutions/\(a)/invitations", token: tokenA, json: ["email": "colleague@uva.nl", "role": "staff"])
            #expect(invitation.status == .created)
            let token = try #require(invitation.string("token"))
            #expect(invitation.string("acceptUrl") == "https://accord.test/#/invitations/\(token)")
            #expect(try await h.count("SELECT count(*) FROM mail_outbox WHERE recipient = 'colleague@uva.nl'") == 1)
            #expect(try await h.count("SELECT count(*) FROM invitations WHERE length(token_hash) = 32") == 1)
            #expect(try await h.request(.get, "/v1/institutions/\(a)/invitations", token: tokenB).status == .notFound)

            let accepted = try await h.request(.post, "/v1/invitations/\(token)/accept", json: ["name": "Colleague", "password": Harness.password])
            #expect(accepted.status == .created)
            let staffToken = try #require(accepted.string("token"))
            #expect((accepted["user"] as? [String: Any])?["role"] as? String == "staff")
            #expect(
                try await h.request(.post, "/v1/invitations/\(token)/accept", json: ["name": "Again", "password": Harness.password]).status
                    == .notFound)

            // Staff may not administer.
            #expect(
                try await h.request(.post, "/v1/institutions/\(a)/invitations", token: staffToken, json: ["email": "x@uva.nl", "role": "staff"])
                    .status == .forbidden)
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)", token: staffToken, json: ["city": "X"], headers: [.ifMatch: "\"v1\""]).status
                    == .forbidden)

            // Now there are two members: promote the colleague, then the first admin may step down.
            let colleague = try #require((accepted["user"] as? [String: Any])?["id"] as? String)
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)/members/\(colleague)", token: tokenA, json: ["role": "admin"]).string("role")
                    == "admin")
            #expect(
                try await h.request(.patch, "/v1/institutions/\(a)/members/\(adminID)", token: tokenA, json: ["role": "faculty"]).string("role")
                    == "faculty")
            #expect(try await h.count("SELECT count(*) FROM audit_events WHERE action = 'user.role_changed'") == 2)

            // Revoked invitations cannot be accepted.
            let second = try await h.request(
                .post, "/v1/institutions/\(a)/invitations", token: staffToken, json: ["email": "third@uva.nl", "role": "faculty"])
            let secondID = try #require(second.string("id"))
            #expect(try await h.request(.delete, "/v1/institutions/\(a)/invitations/\(secondID)", token: staffToken).status == .noContent)
            #expect(
                try await h.request(.post, "/v1/invitations/\(second.string("token")!)/accept", json: ["name": "T", "password": Harness.password])
                    .status == .notFound)
        }
    }

    @Test func claimingAnImportedEntry() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let entry = try await h.importEntry(schac: "uantwerpen.be", name: "University of Antwerp")
            let (claim, email) = try await h.register(schac: "uantwerpen.be")
            #expect(claim != entry)
            // A competing claim is taken too: a pending claim blocks no one.
            let (second, _) = try await h.register(schac: "uantwerpen.be", email: "other@uantwerpen.be")
            let review = try await h.request(.get, "/v1/admin/institutions/\(claim)", token: admin)
            #expect(review.string("domainProof") == "unverified")
            #expect((review["registrant"] as? [String: Any])?["email"] as? String == email)
            #expect(review["competingRegistrations"] as? [String] == [second.uuidString.lowercased()])
            #expect(review.string("claimOf") == entry.uuidString.lowercased())

            // The registrant is signed in before the decision and stays signed in after it.
            let token = try await h.signIn(email)
            try await h.verifyEmail(of: email)
            let approved = try await h.request(.post, "/v1/admin/institutions/\(claim)/approve", token: admin, json: ["reason": "domain verified"])
            #expect(approved.string("id") == entry.uuidString.lowercased())
            #expect(approved["claimed"] as? Bool == true)
            let me = try await h.request(.get, "/v1/me", token: token)
            #expect(me.status == .ok)
            #expect((me["institution"] as? [String: Any])?["id"] as? String == entry.uuidString.lowercased())
            #expect(try await h.count("SELECT count(*) FROM institutions WHERE schac = 'uantwerpen.be' AND status = 'active'") == 1)
            // The competing claim lost.
            let lost = try await h.request(.get, "/v1/admin/institutions/\(second)", token: admin)
            #expect(lost.string("status") == "rejected")
        }
    }
}
