import AccordCrypto
import AccordTesting
import Foundation
import HTTPTypes
import PGStore
import Testing

@Suite("Tiers")
struct TierTests {
    /// The network defines its tiers; an institution gets one of them, and the administrators'
    /// list and the directory filter by it; anything else is a 422 naming the field.
    @Test func theNetworkDefinesItsTiers() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "ulb.be")
            try await h.approve(id, adminToken: admin)
            let listed = try await h.request(.get, "/v1/admin/tiers", token: admin)
            #expect((listed["items"] as? [[String: Any]])?.compactMap { $0["code"] as? String } == ["member", "partner", "premium"])
            let created = try await h.request(.post, "/v1/admin/tiers", token: admin, json: ["code": "associate", "label": "Associate member"])
            #expect(created.status == .created && created.string("code") == "associate" && created.string("label") == "Associate member")
            #expect(try await h.request(.post, "/v1/admin/tiers", token: admin, json: ["code": "associate", "label": "Again"]).status == .conflict)
            let bad = try await h.request(.post, "/v1/admin/tiers", token: admin, json: ["code": "Gold Tier", "label": ""])
            #expect(bad.status == .unprocessableContent && Set(bad.problemFields) == ["/code", "/label"])
            #expect(try await h.count("SELECT count(*) FROM tiers") == 4)

            let changed = try await h.request(.patch, "/v1/admin/institutions/\(id)", token: admin, json: ["tier": "associate"])
            #expect(changed.status == .ok && changed.string("tier") == "associate")
            let unknown = try await h.request(.patch, "/v1/admin/institutions/\(id)", token: admin, json: ["tier": "gold"])
            #expect(unknown.status == .unprocessableContent && unknown.problemFields == ["/tier"])
            #expect(try await h.count("SELECT count(*) FROM institutions WHERE tier = 'associate'") == 1)
            let filtered = try await h.request(.get, "/v1/admin/institutions?tier=associate", token: admin)
            #expect((filtered["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id.uuidString.lowercased()])
            #expect(try await h.request(.get, "/v1/admin/institutions?tier=gold", token: admin).problemFields == ["tier"])

            let ana = try await h.signIn(email)
            let directory = try await h.request(.get, "/v1/directory?tier=associate", token: ana)
            #expect(directory.status == .ok && (directory["items"] as? [[String: Any]])?.compactMap { $0["tier"] as? String } == ["associate"])
            let notATier = try await h.request(.get, "/v1/directory?tier=gold", token: ana)
            #expect(notATier.status == .unprocessableContent && notATier.problemFields == ["tier"])

            #expect(try await h.request(.get, "/v1/admin/tiers", token: ana).status == .forbidden)
            #expect(try await h.request(.post, "/v1/admin/tiers", token: ana, json: ["code": "x", "label": "X"]).status == .forbidden)
            #expect(try await h.request(.get, "/v1/admin/tiers").status == .unauthorized)
            let audit = try await h.request(.get, "/v1/admin/audit-events?action=tier.created", token: admin)
            #expect((audit["items"] as? [[String: Any]])?.count == 1)
        }
    }
}

@Suite("Network administrators")
struct NetworkAdminTests {
    /// Administrators add each other (the new one chooses a password through the mailed link) and
    /// remove each other, never the last one.
    @Test func administratorsAddAndRemoveEachOtherButNeverTheLast() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let added = try await h.request(.post, "/v1/admin/network-admins", token: admin, json: ["email": "Bo@Network.test", "name": "Bo Lind"])
            #expect(added.status == .created && added.string("email") == "Bo@Network.test" && added["secondFactor"] as? Bool == false)
            let id = try #require(added.string("id"))
            #expect(
                try await h.request(.post, "/v1/admin/network-admins", token: admin, json: ["email": "bo@network.test", "name": "Bo"]).status
                    == .conflict)
            let invalid = try await h.request(.post, "/v1/admin/network-admins", token: admin, json: ["email": "nobody", "name": ""])
            #expect(Set(invalid.problemFields) == ["/email", "/name"])
            // No password until the link is followed.
            let early = try await h.request(.post, "/v1/sessions", json: ["email": "bo@network.test", "password": "!"])
            #expect(early.status == .unauthorized || early.status == .unprocessableContent)
            let token = try await h.mailedToken(to: "Bo@Network.test", kind: "reset-password")
            #expect(try await h.request(.post, "/v1/password-resets/\(token)", json: ["password": "Another-Passphrase-7"]).status == .noContent)
            let bo = try await h.signIn("bo@network.test", password: "Another-Passphrase-7")
            let list = try await h.request(.get, "/v1/admin/network-admins", token: bo)
            #expect((list["items"] as? [[String: Any]])?.compactMap { $0["email"] as? String } == ["admin@network.test", "Bo@Network.test"])

            // Removing one ends their sessions; the last one stays.
            let me = try #require((try await h.request(.get, "/v1/me", token: admin)["user"] as? [String: Any])?["id"] as? String)
            #expect(try await h.request(.delete, "/v1/admin/network-admins/\(id)", token: admin).status == .noContent)
            #expect(try await h.request(.get, "/v1/me", token: bo).status == .unauthorized)
            let last = try await h.request(.delete, "/v1/admin/network-admins/\(me)", token: admin)
            #expect(last.status == .conflict)
            #expect(try await h.count("SELECT count(*) FROM network_admins") == 1)
            #expect(try await h.request(.delete, "/v1/admin/network-admins/\(UUID())", token: admin).status == .notFound)

            let (institution, email) = try await h.register(schac: "ulb.be")
            try await h.approve(institution, adminToken: admin)
            let ana = try await h.signIn(email)
            #expect(try await h.request(.get, "/v1/admin/network-admins", token: ana).status == .forbidden)
            #expect(
                try await h.request(.post, "/v1/admin/network-admins", token: ana, json: ["email": "x@y.test", "name": "X"]).status == .forbidden)
            let audit = try await h.request(.get, "/v1/admin/audit-events?action=network_admin.*", token: admin)
            #expect(
                (audit["items"] as? [[String: Any]])?.compactMap { $0["action"] as? String }.prefix(2) == [
                    "network_admin.removed", "network_admin.created",
                ])
        }
    }

    /// An administrator's session ends after 8 hours unused, and each use moves that on.
    @Test func anAdministratorsSessionEndsWhenIdle() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            let hours = try await owner.query(
                "SELECT extract(epoch FROM idle_timeout)::int / 3600, round(extract(epoch FROM expires_at - now()) / 3600)::int FROM sessions WHERE admin_id IS NOT NULL"
            ).first((Int, Int).self)
            #expect(hours?.0 == 8 && hours?.1 == 8)
            // Used after two idle hours: eight more from now.
            try await owner.query(
                "UPDATE sessions SET last_used_at = now() - interval '2 hours', expires_at = now() + interval '6 hours' WHERE admin_id IS NOT NULL")
            #expect(try await h.request(.get, "/v1/admin/stats", token: admin).status == .ok)
            let deadline = ContinuousClock.now + .seconds(10)
            while try await h.count("SELECT count(*) FROM sessions WHERE admin_id IS NOT NULL AND expires_at > now() + interval '7 hours 59 minutes'")
                == 0
            {
                try #require(ContinuousClock.now < deadline, "the session's use did not move its expiry on")
                try await Task.sleep(for: .milliseconds(20))
            }
            // Idle past its timeout: gone.
            try await owner.query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE admin_id IS NOT NULL")
            #expect(try await h.request(.get, "/v1/admin/stats", token: admin).status == .unauthorized)
        }
    }
}

@Suite("Second factor")
struct SecondFactorTests {
    static func secret(_ base32: String) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var bits = 0
        var buffer: UInt32 = 0
        var bytes: [UInt8] = []
        for character in base32 {
            buffer = (buffer << 5) | UInt32(alphabet.firstIndex(of: character)!)
            bits += 5
            if bits >= 8 {
                bytes.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits - 8)))
                bits -= 8
            }
        }
        return bytes
    }

    /// Enrolment, then sign-in needs a code (a step used once is not taken again) or a recovery
    /// code (each once); wrong codes count on the throttle; the factor is turned off with a code.
    @Test func anEnrolledAdministratorSignsInWithACode() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let enrolment = try await h.request(.post, "/v1/me/totp", token: admin)
            #expect(enrolment.status == .created)
            let text = try #require(enrolment.string("secret"))
            #expect(enrolment.string("uri")?.hasPrefix("otpauth://totp/Accord%3Aadmin@network.test?secret=\(text)") == true)
            let secret = Self.secret(text)
            #expect(secret.count == 20)
            #expect(try await h.request(.post, "/v1/me/totp/confirm", token: admin, json: ["code": "000000x"]).problemFields == ["/code"])
            let step = TOTP.step(at: Date())
            let confirmed = try await h.request(.post, "/v1/me/totp/confirm", token: admin, json: ["code": TOTP.code(secret: secret, step: step)])
            #expect(confirmed.status == .ok)
            let codes = try #require(confirmed["recoveryCodes"] as? [String])
            #expect(codes.count == 10 && Set(codes).count == 10)
            #expect(try await h.count("SELECT count(*) FROM network_admin_recovery_codes") == 10)
            #expect(try await h.request(.post, "/v1/me/totp", token: admin).status == .conflict)

            let password = ["email": "admin@network.test", "password": Harness.password]
            let missing = try await h.request(.post, "/v1/sessions", json: password)
            #expect(missing.status == .unauthorized && missing.problemFields == ["/totp"])
            let replayed = try await h.request(.post, "/v1/sessions", json: password.merging(["totp": TOTP.code(secret: secret, step: step)]) { $1 })
            #expect(replayed.status == .unauthorized && replayed.problemFields == ["/totp"])
            // The next step's code (or the current one's, when a loaded machine took longer than a step).
            let nextStep = max(step + 1, TOTP.step(at: Date()))
            let next = try await h.request(.post, "/v1/sessions", json: password.merging(["totp": TOTP.code(secret: secret, step: nextStep)]) { $1 })
            #expect(next.status == .created)
            let recovered = try await h.request(.post, "/v1/sessions", json: password.merging(["recoveryCode": codes[0].uppercased()]) { $1 })
            #expect(recovered.status == .created)
            let again = try await h.request(.post, "/v1/sessions", json: password.merging(["recoveryCode": codes[0]]) { $1 })
            #expect(again.status == .unauthorized && again.problemFields == ["/recoveryCode"])
            // Attempts without the right code stay counted: codes cannot be guessed faster than passwords.
            #expect(try await h.count("SELECT count(*) FROM sign_in_throttle WHERE key LIKE 'pair:admin@network.test %' AND failures = 1") == 1)
            for _ in 1...4 {
                #expect(try await h.request(.post, "/v1/sessions", json: password.merging(["totp": "000000"]) { $1 }).status == .unauthorized)
            }
            #expect(try await h.request(.post, "/v1/sessions", json: password.merging(["totp": "000000"]) { $1 }).status == .tooManyRequests)
            #expect(try await h.request(.delete, "/v1/admin/throttles?email=admin@network.test", token: admin).status == .ok)
            #expect(try await h.count("SELECT count(*) FROM audit_events WHERE action = 'session.second_factor_failed'") == 6)

            // Turned off with a recovery code; then the password alone signs in.
            #expect(try await h.request(.delete, "/v1/me/totp", token: admin, json: ["code": "nonsense-code"]).problemFields == ["/code"])
            #expect(try await h.request(.delete, "/v1/me/totp", token: admin, json: ["code": codes[1]]).status == .noContent)
            #expect(try await h.count("SELECT count(*) FROM network_admin_recovery_codes") == 0)
            #expect(try await h.request(.post, "/v1/sessions", json: password).status == .created)

            // Only for network administrators.
            let (id, email) = try await h.register(schac: "ulb.be")
            try await h.approve(id, adminToken: admin)
            let ana = try await h.signIn(email)
            #expect(try await h.request(.post, "/v1/me/totp", token: ana).status == .forbidden)
        }
    }
}

@Suite("Sign-in throttles")
struct ThrottleTests {
    /// Administrators see the counters of failed sign-ins and clear those of an address.
    @Test func administratorsSeeAndClearThrottles() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "ulb.be")
            try await h.approve(id, adminToken: admin)
            for _ in 1...3 {
                #expect(try await h.request(.post, "/v1/sessions", json: ["email": email, "password": "wrong-password-1"]).status == .unauthorized)
            }
            let listed = try await h.request(.get, "/v1/admin/throttles", token: admin)
            let items = try #require(listed["items"] as? [[String: Any]])
            let mine = items.filter { $0["email"] as? String == email }
            #expect(Set(mine.compactMap { $0["kind"] as? String }) == ["pair", "email"])
            #expect(mine.first { $0["kind"] as? String == "pair" }?["failures"] as? Int == 3)
            #expect(mine.first { $0["kind"] as? String == "pair" }?["address"] as? String != nil)
            #expect(items.contains { $0["kind"] as? String == "registration" && $0["address"] != nil }, "the registration counted too")
            let paged = try await h.request(.get, "/v1/admin/throttles?limit=1", token: admin)
            #expect((paged["items"] as? [Any])?.count == 1 && paged.string("nextCursor") != nil)

            #expect(try await h.request(.delete, "/v1/admin/throttles", token: admin).problemFields == ["email"])
            #expect(
                try await h.request(.delete, "/v1/admin/throttles?email=a%00b&address=%C2%82", token: admin).problemFields.sorted() == [
                    "address", "email",
                ])
            let cleared = try await h.request(.delete, "/v1/admin/throttles?email=\(email)", token: admin)
            #expect(cleared.status == .ok && cleared["cleared"] as? Int == 2)
            let after = try await h.request(.get, "/v1/admin/throttles", token: admin)
            #expect((after["items"] as? [[String: Any]])?.contains { $0["email"] as? String == email } == false)
            let audit = try await h.request(.get, "/v1/admin/audit-events?action=throttle.cleared", token: admin)
            #expect((audit["items"] as? [[String: Any]])?.first?["detail"] as? [String: String] == ["email": email, "cleared": "2"])

            let ana = try await h.signIn(email)
            #expect(try await h.request(.get, "/v1/admin/throttles", token: ana).status == .forbidden)
            #expect(try await h.request(.delete, "/v1/admin/throttles?email=\(email)", token: ana).status == .forbidden)
        }
    }
}

@Suite("An institution in detail")
struct InstitutionDetailTests {
    /// The administrators' view of one institution: its users, open partnerships, rooms and latest
    /// audit events besides the summary.
    @Test func theDetailShowsUsersPartnershipsRoomsAndEvents() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (a, emailA) = try await h.register(schac: "ulb.be")
            let (b, _) = try await h.register(schac: "uva.nl", country: "NL")
            try await h.approve(a, adminToken: admin)
            try await h.approve(b, adminToken: admin)
            let ana = try await h.signIn(emailA)
            let proposed = try await h.request(
                .post, "/v1/partnerships", token: ana,
                json: ["partner": b.uuidString.lowercased(), "message": "Shall we?", "activities": ["student_exchange"]])
            #expect(proposed.status == .created)
            #expect(try await h.request(.post, "/v1/rooms", token: ana, json: ["title": "Joint course"]).status == .created)
            let detail = try await h.request(.get, "/v1/admin/institutions/\(a)", token: admin)
            #expect(detail.status == .ok && detail.string("id") == a.uuidString.lowercased() && detail.string("schac") == "ulb.be")
            #expect((detail["users"] as? [[String: Any]])?.compactMap { $0["email"] as? String } == [emailA])
            let partnerships = try #require(detail["openPartnerships"] as? [[String: Any]])
            #expect(
                partnerships.count == 1 && partnerships[0]["partner"] as? String == b.uuidString.lowercased()
                    && partnerships[0]["stage"] as? String == "invited")
            #expect((detail["rooms"] as? [[String: Any]])?.compactMap { $0["title"] as? String } == ["Joint course"])
            let events = try #require(detail["recentAuditEvents"] as? [[String: Any]])
            #expect(events.contains { $0["action"] as? String == "institution.approve" })
        }
    }
}
