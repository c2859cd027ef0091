import AccordCore
import AccordTesting
@testable import Directory
import Foundation
import Institutions
import PGStore
import PGStoreTesting
import Testing

/// The directory index (Sources/Directory/DirectoryIndex.swift) against the SQL search it stands in
/// for, on the real university list.
@Suite("Directory index")
struct DirectoryIndexTests {
    static let caller = Identity(accountID: UUID(), institutionID: nil, role: nil, isNetworkAdmin: true, institutionStatus: nil, tokenHash: [])

    static func parse(_ text: String, _ lists: ReferenceData.Lists) throws -> DirectoryQuery {
        let pairs = text.split(separator: "&").map { part -> (String, String) in
            let pieces = part.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            return (pieces[0], pieces.count > 1 ? pieces[1] : "")
        }
        return try DirectoryQuery.parse(pairs, reference: lists)
    }

    /// Searches with the index and with SQL alone give the same pages — items in the same order,
    /// snippets, totals, facets, cursors — for queries of every kind, and the index answered.
    @Test func theIndexAnswersExactlyAsSQLDoes() async throws {
        try await DirectoryTests.withNetwork { n in
            try await n.member("engineering.test", name: "Institute of Automation Rotterdam", country: "NL", profile: [
                "subjectAreas": [["code": "0714", "strength": "strong"], ["code": "0611"]],
                "teachingLanguages": [["code": "fr", "level": "B2"], ["code": "en", "level": "C1"]],
                "offers": ["joint_degree", "student_exchange"], "seeks": ["staff_exchange"], "services": ["visa_support"],
                "studentCount": 12000, "description": "Robotics & control engineering since 1950; l'école d'été.",
            ])
            try await n.member("arts.test", name: "Academy of Arts Rotterdam", country: "NL", profile: [
                "subjectAreas": [["code": "0213"]], "teachingLanguages": [["code": "fr", "level": "A2"]],
                "offers": ["summer_school"], "seeks": ["joint_degree"], "studentCount": 800,
            ])
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            let pool = n.h.pool
            let reference = ReferenceData(pool: pool)
            let lists = try await reference.lists()
            let sql = DirectoryService(pool: pool, reference: reference)
            let indexed = DirectoryService(pool: pool, reference: reference, index: n.h.directoryIndex)
            let queries = [
                "q=bologna", "q=Universität%20München", "q=univrsity%20of%20helsinki", "q=technische&country=DE&country=AT&limit=7",
                "q=university&limit=30", "q=univ&country=DE&limit=25", "q=college&region=019&type=university&tier=member",
                "q=rotterdam&field=07", "q=rotterdam&field=0714&language=fr&minCefr=B1", "q=rotterdam&offers=summer_school",
                "q=rotterdam&minStudents=1000&maxStudents=50000", "q=rotterdam&seeks=staff_exchange&service=visa_support",
                "q=paris&sort=name&limit=5", "q=paris&sort=newest&limit=5", "q=institute&facets=false&limit=50",
                "q=MIT", "q=unibo.it", "q=%21%21%21", "q=o'brien%20%26%20(x%7Cy):*", "q=ecole%20d'ete", "q=a",
                "q=state&region=021&type=university&offers=joint_degree", "q=san&language=es",
            ]
            for text in queries {
                var query = try Self.parse(text, lists)
                let forms = try await DirectoryService.TextForms.compute(query.text!, domain: query.domain) { try await pool.pipeline($0) }
                let found = n.h.directoryIndex.evaluate(query, text: forms, countryRegions: lists.countryRegions, maxIDs: DirectoryService.maxIndexedPage)
                #expect(found != nil, "the index answers \(text)")
                for page in 1...3 {
                    let expected = try await sql.search(query, caller: Self.caller)
                    let actual = try await indexed.search(query, caller: Self.caller)
                    #expect(actual.items == expected.items, "\(text), page \(page): items")
                    #expect(actual.total == expected.total, "\(text), page \(page): total")
                    #expect(actual.facets == expected.facets, "\(text), page \(page): facets")
                    #expect(actual.nextCursor == expected.nextCursor, "\(text), page \(page): cursor")
                    let written = try JSONSerialization.jsonObject(with: Data(actual.jsonBytes)) as? NSDictionary
                    #expect(written == (try JSONSerialization.jsonObject(with: JSONEncoder().encode(actual)) as? NSDictionary), "\(text): JSON")
                    guard let next = expected.nextCursor else { break }
                    query.cursor = next
                }
            }
            // Beyond maxIndexedPage matches, the items come from SQL; the facets still from the index.
            let broad = try Self.parse("q=u", lists)
            let forms = try await DirectoryService.TextForms.compute("u", domain: nil) { try await pool.pipeline($0) }
            let many = try #require(n.h.directoryIndex.evaluate(broad, text: forms, countryRegions: lists.countryRegions, maxIDs: 100))
            #expect(many.ids == nil && many.total > 100)
        }
    }

    /// A change is seen by the next search on any server: before the index has applied it, the
    /// search goes to SQL (directory_version); afterwards the index has it.
    @Test func changesAreSearchableAtOnceAndThenFromTheIndex() async throws {
        try await DirectoryTests.withNetwork { n in
            let index = n.h.directoryIndex
            let lists = try await ReferenceData(pool: n.h.pool).lists()
            let owner = try n.h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            func indexed(_ q: String) async throws -> [UUID]? {
                let query = try Self.parse("q=\(q)", lists)
                let forms = try await DirectoryService.TextForms.compute(q, domain: nil) { try await n.h.pool.pipeline($0) }
                return index.evaluate(query, text: forms, countryRegions: lists.countryRegions, maxIDs: 100)?.ids
            }
            let (id, _) = try await n.member("qzp.test", name: "Quixotic Zanzibar Polytechnic", country: "TZ", profile: [:])
            #expect(try await n.names("q=quixotic%20zanzibar") == ["Quixotic Zanzibar Polytechnic"])
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            #expect(try await indexed("zanzibar") == [id])

            // Renamed by another program (psql, the CLI): the old name no longer finds it (the
            // SCHAC code, also searched, has neither name).
            try await owner.withTransaction(settings: [("accord.is_admin", "true")]) {
                try await $0.query("UPDATE institutions SET names = '[{\"lang\": \"en\", \"value\": \"Quixotic Pemba Polytechnic\"}]' WHERE id = \(id)")
            }
            #expect(try await n.names("q=zanzibar").isEmpty)
            #expect(try await n.names("q=quixotic%20pemba") == ["Quixotic Pemba Polytechnic"])
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            #expect(try await indexed("zanzibar") == [])
            #expect(try await indexed("quixotic pemba") == [id])
            let totals = try await n.search("q=quixotic")
            #expect(totals["total"] as? Int == 1)

            // Suspended: gone from items and counts at once.
            let suspend = try await n.h.request(.post, "/v1/admin/institutions/\(id)/suspend", token: n.admin, json: ["reason": "test"])
            #expect(suspend.status == .ok)
            let after = try await n.search("q=quixotic%20pemba")
            #expect(DirectoryTests.Network.items(after).isEmpty && after["total"] as? Int == 0)
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            #expect(try await indexed("quixotic pemba") == [])
            #expect(index.statistics.applied >= 3)

            // A bulk change (over 200 entries) reloads everything.
            let loads = index.statistics.loads
            try await owner.withTransaction(settings: [("accord.is_admin", "true")]) {
                try await $0.query("UPDATE institutions SET city = 'Bulk' WHERE country = 'US'")
            }
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            #expect(index.statistics.loads == loads + 1)
        }
    }

    /// Without its listening connection the index answers nothing (notifications may be lost);
    /// searches go to SQL meanwhile, and a new connection loads everything again.
    @Test func withoutItsListeningConnectionTheIndexStepsAside() async throws {
        try await Harness.run(listenThroughProxy: true) { h in
            let lists = try await ReferenceData(pool: h.pool).lists()
            let admin = try await h.networkAdmin()
            let (id, _) = try await h.register(schac: "rovaniemi.test", country: "FI", extra: ["names": [["lang": "en", "value": "Arctic Quixotic College"]]])
            try await h.approve(id, adminToken: admin)
            try await h.waitUntilDirectoryIndexIsCurrent()
            let loads = h.directoryIndex.statistics.loads
            #expect(try await h.request(.get, "/readyz").string("directoryIndex") == "serving")
            let proxy = try #require(h.listenerProxy)
            proxy.stop()
            let deadline = ContinuousClock.now + .seconds(10)
            while h.listener.connectionEpoch != nil {
                try #require(ContinuousClock.now < deadline)
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(!h.directoryIndex.isServing)
            let ready = try await h.request(.get, "/readyz")
            #expect(ready.status == .ok && ready.string("directoryIndex") == "loading", "searches still work, with SQL")
            let query = try Self.parse("q=arctic", lists)
            let forms = try await DirectoryService.TextForms.compute("arctic", domain: nil) { try await h.pool.pipeline($0) }
            #expect(h.directoryIndex.evaluate(query, text: forms, countryRegions: lists.countryRegions, maxIDs: 10) == nil)
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            try await owner.withTransaction(settings: [("accord.is_admin", "true")]) {
                try await $0.query("UPDATE institutions SET names = '[{\"lang\": \"en\", \"value\": \"Boreal Quixotic College\"}]' WHERE id = \(id)")
            }
            try proxy.start()
            try await h.waitUntilDirectoryIndexIsCurrent()
            #expect(h.directoryIndex.statistics.loads > loads)
            let boreal = try Self.parse("q=boreal", lists)
            let borealForms = try await DirectoryService.TextForms.compute("boreal", domain: nil) { try await h.pool.pipeline($0) }
            #expect(h.directoryIndex.evaluate(boreal, text: borealForms, countryRegions: lists.countryRegions, maxIDs: 10)?.ids == [id])
        }
    }

    /// The page's hand-written JSON is the document JSONEncoder writes, whatever the strings hold.
    @Test func pagesAreWrittenAsJSONEncoderWouldWriteThem() throws {
        let tricky = "Quote \" backslash \\ slash / tab \t newline \n nul \u{0} bell \u{7} del \u{7F} é 漢字 🎓 <mark>x</mark>"
        let object: [String: Any] = [
            "id": UUID().uuidString, "schac": "x.test", "names": [["lang": "fr", "value": tricky], ["lang": "en", "value": ""]],
            "country": "BE", "city": tricky, "type": "university", "tier": "member", "studentCount": 0,
            "fields": [["code": "0714", "strength": "strong"], ["code": "02"]], "languages": [["code": "fr", "level": "B2"]],
            "offers": ["joint_degree"], "seeks": [String](), "services": [tricky], "snippet": tricky,
        ]
        let item = try JSONDecoder().decode(DirectoryItem.self, from: JSONSerialization.data(withJSONObject: object))
        var bare = item
        bare.city = nil
        bare.studentCount = nil
        bare.snippet = nil
        bare.acronym = "ÉCOLE"
        let pages = [
            DirectoryPage(items: [item, bare], total: 2, facets: ["country": ["BE": 2], "type": [:], tricky: [tricky: -1]], nextCursor: "abc"),
            DirectoryPage(items: [], total: nil, facets: nil, nextCursor: nil),
        ]
        for page in pages {
            let written = try JSONSerialization.jsonObject(with: Data(page.jsonBytes)) as? NSDictionary
            let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(page)) as? NSDictionary
            #expect(written != nil && written == encoded)
        }
    }

    @Test func tsqueryTextIsParsedAsPostgreSQLPrintsIt() {
        typealias E = DirectoryIndex.TextExpression
        #expect(E.parse("'architecture':*") == .word("architecture", prefix: true))
        #expect(E.parse("( 'bolgna':* | 'bologna' | 'bolonia' ) & 'univ':*") == .and([
            .or([.word("bolgna", prefix: true), .word("bologna", prefix: false), .word("bolonia", prefix: false)]),
            .word("univ", prefix: true),
        ]))
        #expect(E.parse("'o''brien':* & 'a\\\\b'") == .and([.word("o'brien", prefix: true), .word("a\\b", prefix: false)]))
        #expect(E.parse("!'x' & 'y'") == .and([.not(.word("x", prefix: false)), .word("y", prefix: false)]))
        // What the index cannot evaluate sends the search to SQL.
        #expect(E.parse("'a' <-> 'b'") == nil)
        #expect(E.parse("'a':A") == nil)
        #expect(E.parse("'a':*AB") == nil)
        #expect(E.parse("'unterminated") == nil)
        #expect(E.parse("") == nil)
    }
}
