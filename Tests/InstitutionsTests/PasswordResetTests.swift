import AccordTesting
import Foundation
import HTTPTypes
import Testing

@Suite("Password resets")
struct PasswordResetTests {
    @Test func aResetLinkWorksOnceEndsSessionsAndSaysNothingOfUnknownAddresses() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let (id, email) = try await h.register(schac: "ulb.be")
            try await h.approve(id, adminToken: admin)
            let old = try await h.signIn(email)

            // The same answer whether or not the address has an account.
            let known = try await h.request(.post, "/v1/password-resets", json: ["email": email.uppercased()])
            let unknown = try await h.request(.post, "/v1/password-resets", json: ["email": "nobody@ulb.be"])
            #expect(known.status == .accepted)
            #expect(unknown.status == .accepted)
            #expect(NSDictionary(dictionary: known.body).isEqual(to: unknown.body))
            #expect(try await h.count("SELECT count(*) FROM mail_outbox WHERE recipient = 'nobody@ulb.be'") == 0)
            #expect(try await h.request(.post, "/v1/password-resets", json: ["email": "not an address"]).problemFields == ["/email"])

            let token = try await h.mailedToken(to: email, kind: "reset-password")
            // Only its hash is stored.
            #expect(try await h.count("SELECT count(*) FROM password_resets WHERE token_hash = sha256(convert_to('\(token)', 'UTF8'))") == 1)
            // A weak password is refused and spends nothing.
            #expect(try await h.request(.post, "/v1/password-resets/\(token)", json: ["password": "short"]).problemFields == ["/password"])
            let used = try await h.request(.post, "/v1/password-resets/\(token)", json: ["password": "A-New-Sturdy-Passphrase-7"])
            #expect(used.status == .noContent)
            // Used once: the second time fails; the old session ended; the new password signs in.
            #expect(try await h.request(.post, "/v1/password-resets/\(token)", json: ["password": "Another-Sturdy-Passphrase-8"]).status == .notFound)
            #expect(try await h.request(.get, "/v1/me", token: old).status == .unauthorized)
            #expect(try await h.request(.post, "/v1/sessions", json: ["email": email, "password": Harness.password]).status == .unauthorized)
            _ = try await h.signIn(email, password: "A-New-Sturdy-Passphrase-7")
            #expect(
                try await h.request(.post, "/v1/password-resets/not-a-token-at-all-xxxxxxxx", json: ["password": "Yet-Another-Passphrase-9"]).status
                    == .notFound)

            // At most three links an hour per account.
            for _ in 0..<4 { _ = try await h.request(.post, "/v1/password-resets", json: ["email": email]) }
            #expect(
                try await h.count("SELECT count(*) FROM mail_outbox WHERE recipient = '\(email)' AND subject = 'Replace your Accord password'") == 3)
            let audit = try await h.request(.get, "/v1/admin/audit-events?action=account.*&institution=\(id)&limit=100", token: admin)
            let actions = (audit["items"] as? [[String: Any]])?.compactMap { $0["action"] as? String } ?? []
            #expect(actions.contains("account.password_reset"))
            #expect(actions.filter { $0 == "account.password_reset_requested" }.count == 3)
        }
    }
}
