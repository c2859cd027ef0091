import AccordCrypto
import AccordSeeding
import AccordTesting
import Foundation
import HTTPTypes
import Institutions
import PGStore
import PGStoreTesting
import Testing

@Suite("Import and demo data")
struct OperatorTests {
    @Test func importIsIdempotentByDomainAndNeverTouchesClaimedEntries() async throws {
        try await Harness.run { h in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("universities-\(UUID().uuidString.lowercased()).json")
            defer { try? FileManager.default.removeItem(at: file) }
            func write(_ records: [[String: Any]]) throws {
                try JSONSerialization.data(withJSONObject: records).write(to: file)
            }
            let base: [[String: Any]] = [
                [
                    "name": "Universiteit Gent", "alpha_two_code": "BE", "country": "Belgium", "state-province": NSNull(), "domains": ["ugent.be"],
                    "web_pages": ["https://www.ugent.be/"],
                ],
                [
                    "name": "Universität Wien", "alpha_two_code": "AT", "country": "Austria", "state-province": NSNull(), "domains": ["univie.ac.at"],
                    "web_pages": ["https://www.univie.ac.at/"],
                ],
                [
                    "name": "University of Prishtina", "alpha_two_code": "XK", "country": "Kosovo", "state-province": NSNull(),
                    "domains": ["uni-pr.edu"], "web_pages": [],
                ],
                [
                    "name": "Duplicate", "alpha_two_code": "BE", "country": "Belgium", "state-province": NSNull(), "domains": ["ugent.be"],
                    "web_pages": [],
                ],
                ["name": "No domain", "alpha_two_code": "BE", "country": "Belgium", "state-province": NSNull(), "domains": [], "web_pages": []],
            ]
            try write(base)
            // A registered (claimed) institution with one of the domains.
            let (registered, _) = try await h.register(schac: "univie.ac.at", country: "AT")

            let owner = try h.database.pool(asOwner: true, maxConnections: 2)
            defer { Task { await owner.close() } }
            let importer = UniversityImport(pool: owner, batchSize: 2)
            let first = try await importer.run(try UniversityImport.read(file))
            #expect(first.created == 1)
            #expect(first.unchanged == 1, "the claimed entry is left alone")
            #expect(first.skipped == ["country XK is not in ISO 3166-1": 1, "domain listed twice": 1, "no valid domain": 1])

            let again = try await importer.run(try UniversityImport.read(file))
            #expect(again.created == 0 && again.updated == 0 && again.unchanged == 2)

            var renamed = base
            renamed[0]["name"] = "Ghent University"
            try write(renamed)
            let third = try await importer.run(try UniversityImport.read(file))
            #expect(third.updated == 1)
            let entry = try await owner.query("SELECT status, claimed, names->0->>'value' FROM institutions WHERE schac = 'ugent.be'").first(
                (String, Bool, String).self)
            #expect(entry?.0 == "active" && entry?.1 == false && entry?.2 == "Ghent University")
            let claimed = try await owner.query("SELECT status, names->0->>'value' FROM institutions WHERE id = \(registered)").first(
                (String, String).self)
            #expect(claimed?.0 == "pending" && claimed?.1 == "Université univie.ac.at")
            #expect(try await h.count("SELECT count(*) FROM users WHERE institution_id IN (SELECT id FROM institutions WHERE NOT claimed)") == 0)

            try "not json".write(to: file, atomically: true, encoding: .utf8)
            #expect(throws: (any Error).self) { try UniversityImport.read(file) }
        }
    }

    @Test func demoNetworkSignsIn() async throws {
        try await Harness.run { h in
            let owner = try h.database.pool(asOwner: true, maxConnections: 2)
            defer { Task { await owner.close() } }
            let demo = DemoNetwork(pool: owner, hasher: PasswordHasher(logN: 10))
            #expect(try await demo.databaseIsEmpty())
            let lines = try await demo.seed()
            #expect(lines.contains { $0.contains(DemoNetwork.adminEmail) })
            _ = try await demo.seed()  // idempotent
            #expect(!(try await demo.databaseIsEmpty()))
            #expect(try await h.count("SELECT count(*) FROM institutions WHERE status = 'active'") == 5)
            #expect(try await h.count("SELECT count(*) FROM institutions WHERE status = 'pending'") == 1)
            #expect(try await h.count("SELECT count(*) FROM users") == 11)

            let admin = try await h.signIn(DemoNetwork.adminEmail, password: DemoNetwork.password)
            let pending = try await h.request(.get, "/v1/admin/institutions?status=pending", token: admin)
            #expect((pending["items"] as? [[String: Any]])?.count == 1)
            let staff = try await h.signIn("staff@unibo.it", password: DemoNetwork.password)
            let me = try await h.request(.get, "/v1/me", token: staff)
            #expect(me["roles"] as? [String] == ["staff"])
            let institution = try #require(me["institution"] as? [String: Any])
            #expect((institution["subjectAreas"] as? [[String: Any]])?.isEmpty == false)
        }
    }
}
