import AccordCore
import AccordCrypto
import AccordServer
import AccordTesting
import Foundation
import HTTPTypes
import Institutions
import Logging
import PGStore
import Testing

/// Each test is an attack on identity, as one was tried against a running server: over real
/// sockets, with `X-Forwarded-For` believed from 127.0.0.1 so that each request can come from an
/// address of its own.
@Suite("Identity hardening")
struct HardeningTests {
    static func from(_ address: String) -> HTTPFields { [HTTPField.Name("X-Forwarded-For")!: address] }

    static func live(
        _ identity: IdentityConfiguration = Harness.identity, logger: Logger = Logger(label: "accord"),
        _ body: @Sendable (Harness) async throws -> Void
    ) async throws {
        try await Harness.run(identity: identity, transport: .sockets, trustedProxies: "127.0.0.1", logger: logger, body)
    }

    static func signIn(_ h: Harness, _ email: String, _ password: String, from address: String) async throws -> HTTPResponse.Status {
        try await h.request(.post, "/v1/sessions", json: ["email": email, "password": password], headers: Self.from(address)).status
    }

    @Test func concurrentFailedSignInsStopAtExactlyTheLimit() async throws {
        try await Self.live { h in
            let (_, email) = try await h.register(schac: "ulb.be")
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<8 { group.addTask { try await Self.signIn(h, email, "wrong-password-123", from: "198.51.100.7") } }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .unauthorized }.count == 5)
            #expect(statuses.filter { $0 == .tooManyRequests }.count == 3)
            // The lock is the attacker's address's alone: the owner signs in from theirs.
            #expect(try await Self.signIn(h, email, Harness.password, from: "203.0.113.20") == .created)
            #expect(try await Self.signIn(h, email, Harness.password, from: "198.51.100.7") == .tooManyRequests)
        }
    }

    @Test func aSuccessElsewhereResetsNobodyElsesCounter() async throws {
        var identity = Harness.identity
        identity.unknownEmailAttemptsPerAddress = 6
        try await Self.live(identity) { h in
            let (_, victim) = try await h.register(schac: "ulb.be")
            let (_, attacker) = try await h.register(schac: "evil.example")
            let attackerAddress = "198.51.100.7"
            for _ in 0..<5 { #expect(try await Self.signIn(h, victim, "guess-guess-guess", from: attackerAddress) == .unauthorized) }
            #expect(try await Self.signIn(h, victim, "guess-guess-guess", from: attackerAddress) == .tooManyRequests)
            // The attacker's own successful sign-in, from the same address, clears only its own counter.
            #expect(try await Self.signIn(h, attacker, Harness.password, from: attackerAddress) == .created)
            #expect(try await Self.signIn(h, victim, "guess-guess-guess", from: attackerAddress) == .tooManyRequests)

            // Unknown e-mail addresses from one address: limited, and a success there clears nothing.
            for index in 0..<6 {
                #expect(try await Self.signIn(h, "nobody\(index)@ulb.be", "guess-guess-guess", from: "192.0.2.1") == .unauthorized)
            }
            #expect(try await Self.signIn(h, "nobody6@ulb.be", "guess-guess-guess", from: "192.0.2.1") == .tooManyRequests)
            // An account that signed in from there before still can; one that never did waits too,
            // so the answer does not tell which e-mail addresses have accounts.
            #expect(try await Self.signIn(h, attacker, Harness.password, from: attackerAddress) == .created)
            #expect(try await Self.signIn(h, victim, Harness.password, from: "192.0.2.1") == .tooManyRequests)
            #expect(try await Self.signIn(h, "nobody7@ulb.be", "guess-guess-guess", from: "192.0.2.1") == .tooManyRequests)
        }
    }

    @Test func failuresFromEverywhereDelayStrangersButNotTheOwnersKnownAddress() async throws {
        try await Self.live { h in
            let (_, victim) = try await h.register(schac: "ulb.be")
            let home = "203.0.113.20"
            #expect(try await Self.signIn(h, victim, Harness.password, from: home) == .created)
            // A botnet: one guess from each of many addresses, past the free attempts.
            for index in 0..<Harness.identity.freeAttemptsPerEmail {
                #expect(try await Self.signIn(h, victim, "guess-guess-guess", from: "198.51.100.\(index + 1)") == .unauthorized)
            }
            // Past them, a stranger waits: 1 s after the first failure too many, then 2, 4, 8 … (a
            // loaded machine may take more than the first second between two attempts, so a few
            // more guesses may still be answered 401 before the delay outgrows an attempt).
            var delayed: Harness.Reply?
            for index in 0..<8 {
                let reply = try await h.request(
                    .post, "/v1/sessions", json: ["email": victim, "password": "guess-guess-guess"], headers: Self.from("198.51.100.\(200 + index)"))
                #expect(reply.status == .unauthorized || reply.status == .tooManyRequests)
                if reply.status == .tooManyRequests {
                    delayed = reply
                    break
                }
            }
            #expect(delayed != nil, "no guess was held back")
            #expect(delayed?.headers[.retryAfter] != nil)
            // The owner, from where they signed in before, is never held back.
            #expect(try await Self.signIn(h, victim, Harness.password, from: home) == .created)
        }
    }

    @Test func theDottedCapitalIIsAnotherAddress() async throws {
        try await Self.live { h in
            let (_, email) = try await h.register(schac: "ulb.be")
            #expect(email == "intl@ulb.be")
            #expect(try await Self.signIn(h, "İntl@ulb.be", Harness.password, from: "192.0.2.5") == .unauthorized)
            #expect(try await Self.signIn(h, "INTL@ULB.BE", Harness.password, from: "192.0.2.5") == .created)
            // The dotted form is no address Accord takes (addresses are ASCII: no look-alike accounts).
            let reply = try await h.request(
                .post, "/v1/registrations",
                json: [
                    "institution": ["names": [["lang": "en", "value": "X"]], "schac": "x.be", "country": "BE", "type": "university"],
                    "admin": ["email": "İntl@ulb.be", "password": Harness.password, "name": "X"],
                ])
            #expect(reply.problemFields == ["/admin/email"])
            #expect(try await h.count("SELECT count(*) FROM users") == 1)
        }
    }

    @Test func aClaimNeedsAVerifiedAddressAtTheDomain() async throws {
        try await Self.live { h in
            let admin = try await h.networkAdmin()
            let entry = try await h.importEntry(schac: "kuleuven.be", name: "KU Leuven")
            // Anyone may ask, from any address; nobody gets the entry without the proof.
            let (outsider, outsiderEmail) = try await h.register(schac: "kuleuven.be", email: "first@gmail.com")
            let (insider, insiderEmail) = try await h.register(schac: "kuleuven.be", email: "intl@intl.kuleuven.be")
            try await h.verifyEmail(of: outsiderEmail)
            let outsiderReview = try await h.request(.get, "/v1/admin/institutions/\(outsider)", token: admin)
            #expect(outsiderReview.string("domainProof") == "none")
            #expect(try await h.request(.post, "/v1/admin/institutions/\(outsider)/approve", token: admin, json: [:]).status == .conflict)
            #expect(try await h.request(.post, "/v1/admin/institutions/\(insider)/approve", token: admin, json: [:]).status == .conflict)
            // A verification link works once.
            let token = try await h.mailedToken(to: insiderEmail, kind: "verify-email")
            #expect(try await h.request(.post, "/v1/email-verifications/\(token)").status == .ok)
            #expect(try await h.request(.post, "/v1/email-verifications/\(token)").status == .notFound)
            #expect((try await h.request(.get, "/v1/admin/institutions/\(insider)", token: admin)).string("domainProof") == "verified")
            let approved = try await h.request(.post, "/v1/admin/institutions/\(insider)/approve", token: admin, json: [:])
            #expect(approved.status == .ok)
            #expect(approved.string("id") == entry.uuidString.lowercased())
            #expect((try await h.request(.get, "/v1/admin/institutions/\(outsider)", token: admin)).string("status") == "rejected")
        }
    }

    @Test func aRejectedRegistrationFreesItsCodeAndRegistrationsAreLimitedPerAddress() async throws {
        var identity = Harness.identity
        identity.registrationsPerAddress = 3
        try await Self.live(identity) { h in
            let admin = try await h.networkAdmin()
            let (first, _) = try await h.register(schac: "newcollege.edu", email: "a@newcollege.edu")
            let rejected = try await h.request(.post, "/v1/admin/institutions/\(first)/reject", token: admin, json: ["reason": "not a college"])
            #expect(rejected.status == .ok)
            let (second, _) = try await h.register(schac: "newcollege.edu", email: "b@newcollege.edu")
            #expect(try await h.request(.post, "/v1/admin/institutions/\(second)/approve", token: admin, json: [:]).status == .ok)
            // The harness's registrations all came from 127.0.0.1; a fourth from one address waits.
            let body: [String: Any] = [
                "institution": ["names": [["lang": "en", "value": "Y"]], "schac": "y.be", "country": "BE", "type": "university"],
                "admin": ["email": "y@y.be", "password": Harness.password, "name": "Y"],
            ]
            #expect(try await h.request(.post, "/v1/registrations", json: body, headers: Self.from("192.0.2.9")).status == .created)
            var last = HTTPResponse.Status.created
            for index in 0..<3 {
                var other = body
                other["admin"] = ["email": "y\(index)@y\(index).be", "password": Harness.password, "name": "Y"]
                other["institution"] = ["names": [["lang": "en", "value": "Y"]], "schac": "y\(index).be", "country": "BE", "type": "university"]
                last = try await h.request(.post, "/v1/registrations", json: other, headers: Self.from("192.0.2.9")).status
            }
            #expect(last == .tooManyRequests)
        }
    }

    @Test func anInvitationDiesWithItsInvitersAdminRole() async throws {
        try await Self.live { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "uva.nl", country: "NL")
            try await h.approve(id, adminToken: admin)
            let first = try await h.signIn(email)
            // A second admin, who then invites their own other address as admin.
            let invited = try await h.request(
                .post, "/v1/institutions/\(id)/invitations", token: first, json: ["email": "two@uva.nl", "role": "admin"])
            let second = try await h.request(
                .post, "/v1/invitations/\(invited.string("token")!)/accept", json: ["name": "Two", "password": Harness.password])
            #expect(second.status == .created)
            let secondToken = try #require(second.string("token"))
            let secondID = try #require((second["user"] as? [String: Any])?["id"] as? String)
            let backdoor = try await h.request(
                .post, "/v1/institutions/\(id)/invitations", token: secondToken, json: ["email": "backdoor@uva.nl", "role": "admin"])
            let demoted = try await h.request(
                .post, "/v1/institutions/\(id)/invitations", token: secondToken, json: ["email": "demoted@uva.nl", "role": "faculty"])
            // Demoted: their invitation no longer works.
            #expect(try await h.request(.patch, "/v1/institutions/\(id)/members/\(secondID)", token: first, json: ["role": "staff"]).status == .ok)
            let afterDemotion = try await h.request(
                .post, "/v1/invitations/\(demoted.string("token")!)/accept", json: ["name": "D", "password": Harness.password])
            #expect(afterDemotion.status == .notFound)
            // Removed: nor does the other.
            #expect(try await h.request(.delete, "/v1/institutions/\(id)/members/\(secondID)", token: first).status == .noContent)
            let afterRemoval = try await h.request(
                .post, "/v1/invitations/\(backdoor.string("token")!)/accept", json: ["name": "Back", "password": Harness.password])
            #expect(afterRemoval.status == .notFound)
            #expect(try await h.count("SELECT count(*) FROM users WHERE role = 'admin'") == 1)
        }
    }

    @Test func theLogHoldsNoToken() async throws {
        let store = RecordingLogHandler.Store()
        let logger = Logger(label: "accord") { _ in RecordingLogHandler(store: store) }
        try await Self.live(logger: logger) { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "uva.nl", country: "NL")
            try await h.approve(id, adminToken: admin)
            let token = try await h.signIn(email)
            let invitation = try await h.request(
                .post, "/v1/institutions/\(id)/invitations", token: token, json: ["email": "c@uva.nl", "role": "staff"])
            let secret = try #require(invitation.string("token"))
            let accepted = try await h.request(.post, "/v1/invitations/\(secret)/accept", json: ["name": "C", "password": Harness.password])
            #expect(accepted.status == .created)
            let again = try await h.request(.post, "/v1/invitations/\(secret)/accept", json: ["name": "C", "password": Harness.password])
            #expect(again.status == .notFound)
            #expect(again.string("instance") == "/v1/invitations/{token}/accept")
            let verification = try await h.mailedToken(to: email, kind: "verify-email")
            #expect(try await h.request(.post, "/v1/email-verifications/\(verification)").status == .ok)
            let lines = store.all
            #expect(lines.contains { $0.contains("/v1/invitations/{token}/accept") })
            #expect(lines.contains { $0.contains("/v1/email-verifications/{token}") })
            for line in lines {
                #expect(!line.contains(secret) && !line.contains(verification) && !line.contains(token), "a log line holds a token: \(line)")
            }
        }
    }

    @Test func aHostileBodyGetsASmallAnswer() async throws {
        try await Harness.run { h in
            let junk = Array(repeating: "x", count: 3000)
            let body: [String: Any] = [
                "institution": [
                    "names": [["lang": "en", "value": "X"]], "schac": "x.be", "country": "BE", "type": "university", "offers": junk, "seeks": junk,
                    "services": junk,
                ],
                "admin": ["email": "a@x.be", "password": Harness.password, "name": "A"],
            ]
            let size = try JSONSerialization.data(withJSONObject: body).count
            #expect(size > 25_000)
            let reply = try await h.request(.post, "/v1/registrations", json: body)
            #expect(reply.status == .unprocessableContent)
            #expect(try JSONSerialization.data(withJSONObject: reply.body).count < 2_000)
            let fields = reply.problemFields
            #expect(Set(fields) == ["/institution/offers", "/institution/seeks", "/institution/services"])
            // Many distinct bad fields: one entry each, capped.
            var names: [[String: String]] = []
            for _ in 0..<20 { names.append(["lang": "zz", "value": ""]) }
            var many = body
            many["institution"] = ["names": names, "schac": "x.be", "country": "BE", "type": "university"]
            let capped = try await h.request(.post, "/v1/registrations", json: many)
            #expect(capped.problemFields.count == Validator.maxErrors)
            #expect(try await h.count("SELECT count(*) FROM institutions") == 0)
        }
    }

    @Test func decomposedAccentsAreCountedAsTheDatabaseCountsThem() async throws {
        try await Harness.run { h in
            let decomposed = String(repeating: "e\u{0301}", count: 150)  // 150 characters, 300 code points
            let tooLong = try await h.request(
                .post, "/v1/registrations",
                json: [
                    "institution": [
                        "names": [["lang": "fr", "value": "Université"]], "schac": "x.be", "country": "BE", "type": "university", "city": decomposed,
                    ],
                    "admin": ["email": "a@x.be", "password": Harness.password, "name": "A"],
                ])
            #expect(tooLong.status == .unprocessableContent)
            #expect(tooLong.problemFields == ["/institution/city"])
            let fits = String(repeating: "e\u{0301}", count: 100)  // 200 code points: the limit
            let (id, email) = try await h.register(schac: "y.be", extra: ["city": fits])
            let token = try await h.signIn(email)
            let profile = try await h.request(.get, "/v1/institutions/\(id)", token: token)
            #expect(profile.string("city")?.unicodeScalars.count == 200)
        }
    }

    @Test func lineBreaksAndControlCharactersAreRefusedInOneLineTexts() async throws {
        try await Harness.run { h in
            let reply = try await h.request(
                .post, "/v1/registrations",
                json: [
                    "institution": [
                        "names": [["lang": "en", "value": "Evil U\r\nBcc: everyone@example.com"]], "schac": "x.be", "country": "BE",
                        "type": "university", "city": "Gent\u{7}", "acronym": "E\nU",
                    ],
                    "admin": ["email": "a@x.be", "password": Harness.password, "name": "A\u{2028}B"],
                ])
            #expect(reply.status == .unprocessableContent)
            #expect(Set(reply.problemFields) == ["/institution/names/0/value", "/institution/city", "/institution/acronym", "/admin/name"])
            #expect(try await h.count("SELECT count(*) FROM institutions") == 0)
            // Prose keeps its line breaks.
            let (id, email) = try await h.register(schac: "y.be")
            let token = try await h.signIn(email)
            let etag = try #require(try await h.request(.get, "/v1/institutions/\(id)", token: token).headers[.eTag])
            let patched = try await h.request(
                .patch, "/v1/institutions/\(id)", token: token, json: ["description": "Line one.\nLine two."], headers: [.ifMatch: etag])
            #expect(patched.status == .ok)
        }
    }

    @Test func aTamperedCursorIsA400() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let forged = Base64URL.encode(Array(#"{"createdAt":"9999-99-99T00:00:00Z","id":"5B0A4C1E-8F0B-4C5B-9E55-0A1B2C3D4E5F"}"#.utf8))
            for path in [
                "/v1/admin/institutions?cursor=\(forged)", "/v1/admin/institutions?cursor=%21%21", "/v1/admin/audit-events?cursor=\(forged)",
            ] {
                #expect(try await h.request(.get, path, token: admin).status == .badRequest, "\(path)")
            }
        }
    }

    @Test func usersSeeAndEndTheirSessionsAndAPasswordChangeEndsTheOthers() async throws {
        try await Harness.run { h in
            let (_, email) = try await h.register(schac: "ulb.be")
            let laptop = try await h.signIn(email)
            let phone = try await h.signIn(email)
            let tablet = try await h.signIn(email)
            let listed = try await h.request(.get, "/v1/me/sessions", token: laptop)
            let items = try #require(listed["items"] as? [[String: Any]])
            #expect(items.count == 3)
            #expect(items.filter { $0["current"] as? Bool == true }.count == 1)
            #expect(items.allSatisfy { $0["lastUsedAt"] is String && $0["createdAt"] is String && $0["id"] is String })
            // End the phone's session from the laptop.
            let phoneSessions = try #require((try await h.request(.get, "/v1/me/sessions", token: phone))["items"] as? [[String: Any]])
            let phoneID = try #require(phoneSessions.first { $0["current"] as? Bool == true }?["id"] as? String)
            #expect(try await h.request(.delete, "/v1/me/sessions/\(phoneID)", token: laptop).status == .noContent)
            #expect(try await h.request(.get, "/v1/me", token: phone).status == .unauthorized)
            // Another account's session is not there to end.
            let (_, otherEmail) = try await h.register(schac: "uva.nl", country: "NL")
            let other = try await h.signIn(otherEmail)
            let otherID = try #require(
                ((try await h.request(.get, "/v1/me/sessions", token: other))["items"] as? [[String: Any]])?.first?["id"] as? String)
            #expect(try await h.request(.delete, "/v1/me/sessions/\(otherID)", token: laptop).status == .notFound)
            #expect(try await h.request(.get, "/v1/me", token: other).status == .ok)

            // A wrong current password changes nothing; the right one ends every other session.
            let wrong = try await h.request(
                .put, "/v1/me/password", token: laptop, json: ["currentPassword": "not-my-password", "newPassword": "Another-Passphrase-77"])
            #expect(wrong.problemFields == ["/currentPassword"])
            let changed = try await h.request(
                .put, "/v1/me/password", token: laptop, json: ["currentPassword": Harness.password, "newPassword": "Another-Passphrase-77"])
            #expect(changed.status == .noContent)
            #expect(try await h.request(.get, "/v1/me", token: tablet).status == .unauthorized)
            #expect(try await h.request(.get, "/v1/me", token: laptop).status == .ok)
            #expect(try await h.request(.post, "/v1/sessions", json: ["email": email, "password": Harness.password]).status == .unauthorized)
            _ = try await h.signIn(email, password: "Another-Passphrase-77")
        }
    }

    @Test func storedHashesTakeTheConfiguredCostAtTheNextSignIn() async throws {
        try await Harness.run { h in
            let (_, email) = try await h.register(schac: "ulb.be")
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            let costlier = PasswordHasher(logN: 11).hash(Harness.password)
            try await owner.query("UPDATE users SET password_hash = \(costlier)")
            _ = try await h.signIn(email)
            let stored = try await owner.query("SELECT password_hash FROM users").scalar(String.self)
            await owner.close()
            #expect(stored.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
            #expect(!Harness.identity.passwordHasher.needsRehash(stored))
            _ = try await h.signIn(email)
        }
    }
}
