import AccordTesting
import Foundation
import HTTPTypes
import Institutions
import NIOCore
import Testing

@Suite("Registration and sessions")
struct IdentityTests {
    @Test func registrationCreatesAPendingInstitutionAndItsAdmin() async throws {
        try await Harness.run { h in
            let reply = try await h.request(
                .post, "/v1/registrations",
                json: [
                    "institution": [
                        "names": [["lang": "fr", "value": "Université Libre de Bruxelles"]], "schac": "ULB.be", "country": "BE",
                        "city": "Bruxelles", "type": "university", "acronym": "ULB", "subjectAreas": [["code": "0714", "strength": "strong"]],
                        "teachingLanguages": [["code": "fr", "level": "C2"], ["code": "en", "level": "B2"]], "offers": ["student_exchange"],
                        "contacts": [["role": "International office", "name": "Ana", "email": "intl@ulb.be"]],
                    ],
                    "admin": ["email": "intl@ulb.be", "password": Harness.password, "name": "Ana Peeters"],
                ])
            #expect(reply.status == .created)
            let institution = try #require(reply["institution"] as? [String: Any])
            #expect(institution["status"] as? String == "pending")
            #expect(institution["schac"] as? String == "ulb.be")
            #expect((institution["contacts"] as? [[String: String]])?.first?["name"] == "Ana")
            let user = try #require(reply["user"] as? [String: Any])
            #expect(user["role"] as? String == "admin")
            #expect(user["password_hash"] == nil && user["passwordHash"] == nil)
            #expect(try await h.count("SELECT count(*) FROM users WHERE password_hash LIKE '$scrypt$%'") == 1)

            // The same e-mail again, in any ASCII case: 409, nothing stored, and the answer does not
            // say what collided.
            let sameEmail = try await h.request(
                .post, "/v1/registrations",
                json: [
                    "institution": ["names": [["lang": "en", "value": "Other"]], "schac": "other.be", "country": "BE", "type": "university"],
                    "admin": ["email": "INTL@ulb.be", "password": Harness.password, "name": "X"],
                ])
            #expect(sameEmail.status == .conflict)
            #expect(try await h.count("SELECT count(*) FROM institutions") == 1)
            // The SCHAC code of an active, listed institution: the same answer.
            try await h.approve(try #require(UUID(uuidString: institution["id"] as! String)), adminToken: try await h.networkAdmin())
            let sameSchac = try await h.request(
                .post, "/v1/registrations",
                json: [
                    "institution": ["names": [["lang": "en", "value": "Other"]], "schac": "ulb.be", "country": "BE", "type": "university"],
                    "admin": ["email": "someone@else.be", "password": Harness.password, "name": "X"],
                ])
            #expect(sameSchac.status == .conflict)
            #expect(sameSchac.string("detail") == sameEmail.string("detail"))
            #expect(try await h.count("SELECT count(*) FROM institutions") == 1)
            #expect(try await h.count("SELECT count(*) FROM audit_events WHERE action = 'institution.registered'") == 1)
        }
    }

    @Test func invalidRegistrationsNameEveryBadFieldAndStoreNothing() async throws {
        try await Harness.run { h in
            let reply = try await h.request(
                .post, "/v1/registrations",
                json: [
                    "institution": [
                        "names": [["lang": "zz", "value": ""]], "schac": "not a domain", "country": "XX", "type": "castle",
                        "ror": "03vek6s53", "subjectAreas": [["code": "1234"]], "teachingLanguages": [["code": "en", "level": "D1"]],
                        "offers": ["teleportation"], "website": "ftp://x",
                    ],
                    "admin": ["email": "nope", "password": "1234567890", "name": ""],
                ])
            #expect(reply.status == .unprocessableContent)
            #expect(reply.headers[.contentType] == "application/problem+json")
            let fields = Set(reply.problemFields)
            for field in [
                "/institution/names/0/lang", "/institution/names/0/value", "/institution/schac", "/institution/country",
                "/institution/type", "/institution/ror", "/institution/subjectAreas/0/code", "/institution/teachingLanguages/0/level",
                "/institution/offers/0", "/institution/website", "/admin/email", "/admin/password", "/admin/name",
            ] {
                #expect(fields.contains(field), "missing \(field) in \(fields)")
            }
            // A wrong JSON type names its field too.
            let wrongType = try await h.request(.post, "/v1/registrations", json: ["institution": ["names": "x"], "admin": [:]])
            #expect(wrongType.status == .unprocessableContent)
            #expect(wrongType.problemFields == ["/institution/names"])
            // NUL cannot be stored in PostgreSQL text: a 422, not a 500.
            let nul = try await h.send(
                "/v1/sessions", .post, [.contentType: "application/json"],
                ByteBuffer(string: #"{"email": "a\u0000@b.be", "password": "x"}"#)
            ).0
            #expect(nul == .unprocessableContent)
            let escaped = try await h.send(
                "/v1/sessions", .post, [.contentType: "application/json"],
                ByteBuffer(string: #"{"email": "a\\u0000@b.be", "password": "Wrong-Passphrase-42"}"#)
            ).0
            #expect(escaped == .unauthorized, "an escaped backslash followed by u0000 is plain text")
            let malformed = try await h.send(
                "/v1/registrations", .post, [.contentType: "application/json"],
                ByteBuffer(string: "{not json")
            ).0
            #expect(malformed == .badRequest)
            let huge = try await h.send(
                "/v1/registrations", .post, [.contentType: "application/json"],
                ByteBuffer(string: "{\"x\": \"" + String(repeating: "a", count: 1_100_000) + "\"}")
            ).0
            #expect(huge == .contentTooLarge)
            #expect(try await h.count("SELECT count(*) FROM institutions") == 0)
        }
    }

    @Test func sessionsSignInMeAndSignOut() async throws {
        try await Harness.run { h in
            let (id, email) = try await h.register(schac: "kuleuven.be")
            let token = try await h.signIn(email.uppercased())
            #expect(token.count >= 43)
            // Only the hash is stored.
            #expect(try await h.count("SELECT count(*) FROM sessions WHERE length(token_hash) = 32") == 1)
            let me = try await h.request(.get, "/v1/me", token: token)
            #expect(me.status == .ok)
            #expect((me["institution"] as? [String: Any])?["id"] as? String == id.uuidString.lowercased())
            #expect(me["roles"] as? [String] == ["admin"])
            // PostgreSQL builds this document; it must have the documented shape, absent fields left out.
            #expect((me["institution"] as? [String: Any]).map { $0.keys.contains("ror") } == false)
            let typed = try JSONDecoder().decode(IdentityService.Me.self, from: JSONSerialization.data(withJSONObject: me.body))
            #expect(typed.user.email == email && typed.institution?.schac == "kuleuven.be" && typed.institution?.contacts == [])
            let adminMe = try await h.request(.get, "/v1/me", token: try await h.networkAdmin())
            let typedAdmin = try JSONDecoder().decode(IdentityService.Me.self, from: JSONSerialization.data(withJSONObject: adminMe.body))
            #expect(typedAdmin.roles == ["network_admin"] && typedAdmin.institution == nil)

            let wrong = try await h.request(.post, "/v1/sessions", json: ["email": email, "password": "Wrong-Passphrase-42"])
            let unknown = try await h.request(.post, "/v1/sessions", json: ["email": "nobody@nowhere.be", "password": "Wrong-Passphrase-42"])
            #expect(wrong.status == .unauthorized)
            #expect(unknown.status == .unauthorized)
            #expect(wrong.string("detail") == unknown.string("detail"))

            #expect(try await h.request(.get, "/v1/me").status == .unauthorized)
            #expect(try await h.request(.get, "/v1/me", token: "made-up-token-made-up-token-made-up-token").status == .unauthorized)
            #expect(try await h.request(.delete, "/v1/sessions/current", token: token).status == .noContent)
            #expect(try await h.request(.get, "/v1/me", token: token).status == .unauthorized)
        }
    }

    @Test func repeatedFailuresAreThrottled() async throws {
        try await Harness.run { h in
            let (_, email) = try await h.register(schac: "ugent.be")
            for _ in 0..<5 {
                #expect(
                    try await h.request(.post, "/v1/sessions", json: ["email": email, "password": "Wrong-Passphrase-42"]).status == .unauthorized)
            }
            let limited = try await h.request(.post, "/v1/sessions", json: ["email": email, "password": Harness.password])
            #expect(limited.status == .tooManyRequests)
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 > 0)
            #expect(try await h.count("SELECT count(*) FROM audit_events WHERE action = 'session.sign_in_failed'") == 5)
        }
    }
}
