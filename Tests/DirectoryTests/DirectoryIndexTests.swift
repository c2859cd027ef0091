import AccordCore
import AccordSeeding
import AccordTesting
import Foundation
import Institutions
import PGStore
import PGStoreTesting
import Testing

@testable import Directory

/// The directory index (Sources/Directory/Index/) against the SQL search it stands in
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

    /// For each query: the index answers it, and searches with the index and with SQL alone give
    /// the same first three pages — items in the same order, snippets, totals, facets, cursors.
    static func expectSamePages(_ queries: [String], on n: DirectoryTests.Network) async throws {
        let pool = n.h.pool
        let reference = ReferenceData(pool: pool)
        let lists = try await reference.lists()
        let sql = DirectoryService(pool: pool, reference: reference)
        let indexed = DirectoryService(pool: pool, reference: reference, index: n.h.directoryIndex)
        let unplaced = n.h.directoryIndex.statistics.dead + 10
        for text in queries {
            var query = try Self.parse(text, lists)
            let found: DirectoryIndex.Result?
            if let q = query.text {
                let forms = try await DirectoryService.TextForms.compute(q, domain: query.domain) { try await pool.pipeline($0) }
                found = n.h.directoryIndex.evaluate(query, text: forms, countryRegions: lists.countryRegions, maxIDs: DirectoryService.maxIndexedPage)
            } else {
                let version = try await pool.query("SELECT version FROM directory_version").scalar(Int64.self)
                found = n.h.directoryIndex.evaluate(
                    query, directoryVersion: version, countryRegions: lists.countryRegions, maxIDs: DirectoryService.maxIndexedPage)
            }
            #expect(found != nil, "the index answers \(text)")
            // In name and newest order, the page's entries only, and those changed since the index
            // loaded (which it did not place).
            if query.sort != .relevance {
                #expect(found?.ranked == true && (found?.ids?.count ?? 0) <= query.limit + 1 + unplaced, "\(text)")
            }
            for page in 1...3 {
                let expected = try await sql.search(query, caller: Self.caller)
                let actual = try await indexed.search(query, caller: Self.caller)
                #expect(actual.items == expected.items, "\(text), page \(page): items")
                #expect(actual.total == expected.total, "\(text), page \(page): total")
                #expect(actual.facets == expected.facets, "\(text), page \(page): facets")
                #expect(actual.nextCursor == expected.nextCursor, "\(text), page \(page): cursor")
                let written = try JSONSerialization.jsonObject(with: Data(actual.jsonBytes)) as? NSDictionary
                #expect(written == (try JSONSerialization.jsonObject(with: Data(WireEncoder().encode(actual))) as? NSDictionary), "\(text): JSON")
                guard let next = expected.nextCursor else { break }
                query.cursor = next
            }
        }
    }

    /// On a generated network of 20,000 profiles (whose words, fields and activities are spread as
    /// at a million), broad searches — one letter, the most common words, words in every profile,
    /// any order — give the pages and counts of the full ranking in SQL, facets counted by whole
    /// words of bits; and recommendations from memory are those of SQL.
    @Test func onAGeneratedNetworkBroadSearchesAndRecommendationsAreThoseOfSQL() async throws {
        try await DirectoryTests.withNetwork { n in
            let owner = try n.h.database.pool(asOwner: true, maxConnections: 2)
            try await BenchNetwork(pool: owner).seed(count: 20_000, seed: 7)
            await owner.close()
            var members: [UUID] = []
            for (index, profile) in [
                ["offers": ["joint_degree", "student_exchange"], "seeks": ["staff_exchange"], "subjectAreas": [["code": "0714"]]],
                ["seeks": ["summer_school", "double_degree", "traineeships"], "subjectAreas": [["code": "0311"], ["code": "0912"]]],
                ["offers": ["coil_virtual_exchange"]],
                [:],
            ].enumerated() {
                members.append(try await n.member("member\(index).test", name: "Member \(index) University", country: "FI", profile: profile).0)
            }
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            try await Self.expectSamePages(
                [
                    "q=u", "q=uni", "q=university", "q=college&country=US", "q=students%20teaching%20partners", "q=uni&sort=name",
                    "q=u&sort=newest", "q=a&limit=100", "q=e&region=150&offers=student_exchange&language=en",
                    "q=engineering&country=DE&field=07&language=en", "q=university&minStudents=5000&tier=member",
                    "q=universidad&sort=name&country=ES,MX,AR", "q=helsinki", "q=automation&region=155&field=07&language=de",
                    "country=US", "region=150&sort=newest", "offers=joint_degree&seeks=staff_exchange", "type=college&facets=false",
                ], on: n)
            let reference = ReferenceData(pool: n.h.pool)
            let sql = DirectoryService(pool: n.h.pool, reference: reference)
            let indexed = DirectoryService(pool: n.h.pool, reference: reference, index: n.h.directoryIndex)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            for member in members {
                let caller = Identity(
                    accountID: UUID(), institutionID: member, role: .admin, isNetworkAdmin: false, institutionStatus: .active, tokenHash: [])
                for limit in [10, 50] {
                    let expected = try await sql.recommendations(caller: caller, limit: limit)
                    let actual = try await indexed.recommendations(caller: caller, limit: limit)
                    #expect(try encoder.encode(actual) == (try encoder.encode(expected)), "recommendations for \(member)")
                }
            }
        }
    }

    /// Searches with the index and with SQL alone give the same pages — items in the same order,
    /// snippets, totals, facets, cursors — for queries of every kind, and the index answered.
    @Test func theIndexAnswersExactlyAsSQLDoes() async throws {
        try await DirectoryTests.withNetwork { n in
            try await n.member(
                "engineering.test", name: "Institute of Automation Rotterdam", country: "NL",
                profile: [
                    "subjectAreas": [["code": "0714", "strength": "strong"], ["code": "0611"]],
                    "teachingLanguages": [["code": "fr", "level": "B2"], ["code": "en", "level": "C1"]],
                    "offers": ["joint_degree", "student_exchange"], "seeks": ["staff_exchange"], "services": ["visa_support"],
                    "studentCount": 12000, "description": "Robotics & control engineering since 1950; l'école d'été.",
                ])
            try await n.member(
                "arts.test", name: "Academy of Arts Rotterdam", country: "NL",
                profile: [
                    "subjectAreas": [["code": "0213"]], "teachingLanguages": [["code": "fr", "level": "A2"]],
                    "offers": ["summer_school"], "seeks": ["joint_degree"], "studentCount": 800,
                ])
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            let pool = n.h.pool
            let reference = ReferenceData(pool: pool)
            let lists = try await reference.lists()
            let queries = [
                "q=bologna", "q=Universität%20München", "q=univrsity%20of%20helsinki", "q=technische&country=DE&country=AT&limit=7",
                "q=university&limit=30", "q=univ&country=DE&limit=25", "q=college&region=019&type=university&tier=member",
                "q=rotterdam&field=07", "q=rotterdam&field=0714&language=fr&minCefr=B1", "q=rotterdam&offers=summer_school",
                "q=rotterdam&minStudents=1000&maxStudents=50000", "q=rotterdam&seeks=staff_exchange&service=visa_support",
                "q=paris&sort=name&limit=5", "q=paris&sort=newest&limit=5", "q=institute&facets=false&limit=50",
                "q=MIT", "q=unibo.it", "q=%21%21%21", "q=o'brien%20%26%20(x%7Cy):*", "q=ecole%20d'ete", "q=a",
                "q=state&region=021&type=university&offers=joint_degree", "q=san&language=es",
                "q=university&limit=3", "q=u&limit=5", "q=institute%20technology&limit=4", "q=zurich%20hochschule&limit=2",
                // Broad: most of the list matches; the pages are still those of the full ranking.
                "q=u", "q=uni", "q=university", "q=college&country=US", "q=a%20b%20c", "q=of%20the%20university", "q=uni&sort=name",
                "q=u&sort=newest", "q=university&limit=100", "q=e&country=US,GB,DE,FR&offers=student_exchange",
            ]
            // Filters only (the index finds the page's entries by their place in the name order or
            // the order of creation).
            let filtersOnly = [
                "country=DE", "country=DE&limit=7", "region=155&type=university_of_applied_sciences", "region=150&type=university&limit=50",
                "field=0714&language=en&minCefr=C1", "offers=joint_degree&seeks=staff_exchange&country=FR",
                "tier=member&service=visa_support", "country=NL&minStudents=1000", "language=fr&minCefr=B1&sort=newest&limit=5",
                "country=IT&sort=newest", "region=019&field=07&facets=false&limit=100", "country=AQ",
            ]
            try await Self.expectSamePages(queries + filtersOnly, on: n)
            // In relevance order, every match is ranked in memory, and PostgreSQL gets only those
            // that can be on the page.
            let forms = try await DirectoryService.TextForms.compute("u", domain: nil) { try await pool.pipeline($0) }
            let ranked = try #require(
                n.h.directoryIndex.evaluate(try Self.parse("q=u&limit=10", lists), text: forms, countryRegions: lists.countryRegions, maxIDs: 100))
            #expect(ranked.ranked && ranked.total > 1000 && (11..<100).contains(ranked.ids?.count ?? 0), "\(ranked.ids?.count ?? -1) candidates")
            // In newest order too, whatever the number of matches, only the page's candidates go on
            // (the first places in the order of creation, and the entries changed since the load).
            let newest = try #require(
                n.h.directoryIndex.evaluate(try Self.parse("q=u&sort=newest", lists), text: forms, countryRegions: lists.countryRegions, maxIDs: 100))
            #expect(newest.ranked && newest.total == ranked.total && (newest.ids?.count ?? 0) <= 21 + 10)
            // However many entries match, the facets and the total are the same counted either way.
            let snapshot = try await DirectoryIndex.Snapshot.load(pool: pool)
            let (expression, _) = try #require(DirectoryIndex.expressions(forms))
            // The and-rank's work is bounded: beyond it the search is refused rather than ranked.
            let broad = try await DirectoryService.TextForms.compute("a s t i", domain: nil) { try await pool.pipeline($0) }
            let (broadExpression, broadStrict) = try #require(DirectoryIndex.expressions(broad))
            let broadQuery = try #require(DirectoryIndex.Query(try Self.parse("q=a%20s%20t%20i", lists)))
            let ranked4 = snapshot.store.evaluate(
                broadQuery, expression: broadExpression, strict: broadStrict, folded: broad.folded, domain: nil, countryRegions: lists.countryRegions,
                maxIDs: 100)
            #expect(!ranked4.tooBroad && ranked4.ranked)
            let refused = snapshot.store.evaluate(
                broadQuery, expression: broadExpression, strict: broadStrict, folded: broad.folded, domain: nil, countryRegions: lists.countryRegions,
                maxIDs: 100, maxRankWork: 10)
            #expect(refused.tooBroad && refused.ids == nil && refused.total == ranked4.total)
            var matches = try #require(expression).evaluate(in: snapshot.store.lexicon, slots: snapshot.store.ids.count)
            matches.formIntersection(snapshot.store.aliveBits)
            for text in [
                "q=u", "q=u&country=FI,SE&type=university", "q=u&region=150&offers=student_exchange&seeks=joint_degree",
                "q=u&field=07&language=en&minCefr=B2&minStudents=1000&maxStudents=50000", "q=u&tier=member&service=visa_support&country=US",
            ] {
                let query = try #require(DirectoryIndex.Query(try Self.parse(text, lists)))
                let filters = DirectoryIndex.Store.Filters(query, store: snapshot.store)
                let bySlots = snapshot.store.countBySlots(matches, filters: filters, withFacets: true)
                let byWords = snapshot.store.countByWords(matches, filters: filters, withFacets: true)
                #expect(bySlots.found == byWords.found, "\(text): matches")
                #expect(bySlots.counts == byWords.counts && bySlots.regionCounts == byWords.regionCounts, "\(text): facets")
            }
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
                try await $0.query(
                    "UPDATE institutions SET names = '[{\"lang\": \"en\", \"value\": \"Quixotic Pemba Polytechnic\"}]' WHERE id = \(id)")
            }
            #expect(try await n.names("q=zanzibar").isEmpty)
            #expect(try await n.names("q=quixotic%20pemba") == ["Quixotic Pemba Polytechnic"])
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            #expect(try await indexed("zanzibar") == [])
            #expect(try await indexed("quixotic pemba") == [id])
            // Renamed, it has no place in the name order the index read at its load: PostgreSQL
            // orders it among the others.
            let version = try await n.h.pool.query("SELECT version FROM directory_version").scalar(Int64.self)
            let byName = try Self.parse("country=TZ&limit=3", lists)
            let page = try #require(index.evaluate(byName, directoryVersion: version, countryRegions: lists.countryRegions, maxIDs: 100))
            #expect(page.ranked && page.ids?.contains(id) == true)
            let service = DirectoryService(pool: n.h.pool, reference: ReferenceData(pool: n.h.pool), index: index)
            let sqlOnly = DirectoryService(pool: n.h.pool, reference: ReferenceData(pool: n.h.pool))
            var query = byName
            for _ in 1...20 {
                let (a, b) = (try await service.search(query, caller: Self.caller), try await sqlOnly.search(query, caller: Self.caller))
                #expect(a.items == b.items && a.nextCursor == b.nextCursor && a.facets == b.facets && a.total == b.total)
                guard let next = b.nextCursor else { break }
                query.cursor = next
            }
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
            let (id, _) = try await h.register(
                schac: "rovaniemi.test", country: "FI", extra: ["names": [["lang": "en", "value": "Arctic Quixotic College"]]])
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

    /// The rank computed in memory is PostgreSQL's (`DirectoryService.rank`) for every entry that
    /// matches, to within rounding, on the real university list: ts_rank over the positions the
    /// index keeps (or-rank and and-rank, prefixes, widened misspellings), pg_trgm's similarity,
    /// the strict and exact terms; and an entry whose names are not ASCII is given bounds that hold.
    @Test func ranksInMemoryAreThoseOfPostgreSQL() async throws {
        try await DirectoryTests.withNetwork { n in
            try await n.member(
                "tricky.test", name: "Ärztliche Hochschule Zürich — 東京 2 école", country: "CH",
                profile: [
                    "description": "Automation, automation and more automation; engineering of automata (automatic)."
                ])
            try await n.h.waitUntilDirectoryIndexIsCurrent()
            let pool = n.h.pool
            let snapshot = try await DirectoryIndex.Snapshot.load(pool: pool)
            let store = snapshot.store
            var checked = 0
            var largest = 0.0
            for q in [
                "bologna", "univrsity of helsinki", "technische universitat munchen", "institute of technology",
                "automation", "state university", "mit", "unibo.it", "sao paulo", "college", "engineering automation",
                "ecole", "san", "a b c", "zurich hochschule", "tokyo 2",
            ] {
                let forms = try await DirectoryService.TextForms.compute(q, domain: q.contains(".") ? q : nil) { try await pool.pipeline($0) }
                let (expression, strict) = try #require(DirectoryIndex.expressions(forms))
                let relevance = try #require(DirectoryIndex.Relevance(expression: expression, folded: forms.folded), "\(q)")
                let slots = store.ids.count
                var matches = expression.map { $0.evaluate(in: store.lexicon, slots: slots) } ?? DirectoryIndex.Bitset(count: slots)
                let strictDocuments = strict.map { $0.evaluate(in: store.lexicon, slots: slots) } ?? matches
                var exact = Set(store.acronyms.slots(forms.folded))
                if let domain = forms.domain { exact.formUnion(store.schacs.slots(domain)) }
                for slot in exact { matches.insert(Int(slot)) }
                matches.formIntersection(store.aliveBits)
                var found: [Int32] = []
                matches.forEach { found.append(Int32($0)) }
                #expect(!found.isEmpty, "\(q) matches")
                let bounds = store.rankBounds(found, relevance: relevance, strict: strictDocuments, exact: exact)
                let ids = found.map { store.ids[Int($0)] }
                let rows = try await pool.query(
                    """
                    SELECT e.id, \(DirectoryService.rank(forms)), e.names_folded FROM directory_entries e WHERE e.id = ANY (\(ids))
                    """)
                var ranks: [UUID: (Double, String)] = [:]
                for (id, rank, names) in try rows.decode((UUID, Double, String).self) { ranks[id] = (rank, names) }
                #expect(ranks.count == ids.count)
                for (c, id) in ids.enumerated() {
                    let (rank, names) = try #require(ranks[id])
                    let bound = bounds[c]
                    #expect(bound.low <= rank && rank <= bound.high, "\(q): \(names) ranks \(rank), not in \(bound)")
                    if names.utf8.allSatisfy({ $0 < 0x80 }) {
                        let computed = (bound.low + bound.high) / 2
                        largest = max(largest, abs(computed - rank))
                        #expect(abs(computed - rank) < 1e-9, "\(q): \(names) ranks \(rank), computed \(computed)")
                    }
                    checked += 1
                }
            }
            #expect(checked > 1000 && largest < 1e-9)
        }
    }

    /// Trigrams as pg_trgm makes them, for every name of the real list (and odd ones).
    @Test func trigramsAreThoseOfPgTrgm() async throws {
        try await DirectoryTests.withNetwork { n in
            let samples = ["", "a", "ab-c d'e x", "  Multiple   spaces  ", "UPPER lower 123 4x4", "a_b", "x--y..z", "éa", "ab é"]
            let rows = try await n.h.pool.query(
                """
                SELECT s, show_trgm(s) FROM (SELECT names_folded FROM directory_entries UNION ALL SELECT unnest(\(samples)::text[])) t (s)
                """)
            var compared = 0
            for (text, shown) in try rows.decode((String, [String]).self) {
                let computed = DirectoryIndex.Relevance.trigrams(Array(text.utf8))
                guard text.utf8.allSatisfy({ $0 < 0x80 }) else {
                    #expect(computed == nil, "\(text) is not ASCII")
                    continue
                }
                let expected = shown.map { trigram in
                    trigram.utf8.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                }.sorted()
                #expect(computed == expected, "\(text)")
                compared += 1
            }
            #expect(compared > 1000)
        }
    }

    /// A tsvector's text is read back into its lexemes, positions and weights.
    @Test func tsvectorTextIsReadAsPostgreSQLPrintsIt() async throws {
        try await DirectoryTests.withNetwork { n in
            let vector = "'o''brien':1A,7 'back\\\\slash':2B 'plain' 'x':3C,4,16383A 'été':5"
            let rows = try await n.h.pool.query(
                """
                SELECT \(vector)::tsvector::text, u.lexeme, coalesce(u.positions, '{}'), coalesce(u.weights, '{}')
                FROM unnest(\(vector)::tsvector) u
                """)
            let decoded = try rows.decode((String, String, [Int], [String]).self)
            var read: [(String, [UInt16])] = []
            #expect(DirectoryIndex.forEachLexeme(in: decoded[0].0) { read.append(($0, Array($1))) })
            #expect(read.map(\.0) == decoded.map(\.1))
            for (i, row) in decoded.enumerated() {
                let weights: [String: UInt16] = ["A": 3, "B": 2, "C": 1, "D": 0]
                let expected = zip(row.2, row.3).map { UInt16($0.0) | weights[$0.1]! << 14 }
                #expect(read[i].1 == expected, "\(row.1)")
            }
            #expect(!DirectoryIndex.forEachLexeme(in: "'unterminated") { _, _ in })
            #expect(!DirectoryIndex.forEachLexeme(in: "'x':") { _, _ in })
        }
    }

    /// The page's hand-written JSON is the document `WireEncoder` writes, whatever the strings hold.
    @Test func pagesAreWrittenAsTheWireEncoderWouldWriteThem() throws {
        let tricky = "Quote \" backslash \\ slash / tab \t newline \n nul \u{0} bell \u{7} del \u{7F} é 漢字 🎓 <mark>x</mark>"
        let object: [String: Any] = [
            "id": UUID().uuidString.lowercased(), "schac": "x.test", "names": [["lang": "fr", "value": tricky], ["lang": "en", "value": ""]],
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
            let encoded = try JSONSerialization.jsonObject(with: Data(WireEncoder().encode(page))) as? NSDictionary
            #expect(written != nil && written == encoded)
        }
    }

    /// Names, subject areas and languages are read from their JSON as JSONDecoder reads them.
    @Test func flatJSONArraysAreReadAsJSONDecoderReadsThem() throws {
        func both<T: FlatJSONObject & Equatable>(_ json: String, _: T.Type) throws -> ([T]?, [T]?) {
            let fast = Array(json.utf8).withUnsafeBytes { try? PGFlatJSONArray<T>.decode(text: $0, type: .jsonb).elements }
            let slow = try? JSONDecoder().decode([T].self, from: Data(json.utf8))
            return (fast, slow)
        }
        let names = [
            #"[]"#, #"[{"lang": "en", "value": "Plain"}]"#,
            #" [ {"value":"a\"b\\c\/d\n\t\u00e9\ud83c\udf93","lang":"fr"} , {"lang": "de", "value": "Ä"} ] "#,
            #"[{"lang": "en", "value": "x", "extra": null, "other": "y"}]"#, #"[{"lang": "en", "value": null}]"#, #"[{"lang": "en"}]"#,
            #"[{"lang": "en", "value": 5}]"#, #"[{"lang": "en", "value": "x"}"#, #"[{"lang": "en", "value": "\ud83c"}]"#, #"{}"#,
            #"[{"lang": "en", "value": "x"}] x"#, #"[{"lang": "en", "value": "\q"}]"#,
        ]
        for json in names {
            let (fast, slow) = try both(json, LocalizedName.self)
            #expect(fast == slow, "\(json)")
        }
        for json in [#"[{"code": "0714", "strength": "strong"}, {"code": "02"}, {"code": "03", "strength": null}]"#, #"[{"strength": "x"}]"#] {
            let (fast, slow) = try both(json, SubjectArea.self)
            #expect(fast == slow, "\(json)")
        }
        let (fast, slow) = try both(#"[{"code": "fr", "level": "B2"}]"#, TeachingLanguage.self)
        #expect(fast == slow && fast?.count == 1)
    }

    @Test func tsqueryTextIsParsedAsPostgreSQLPrintsIt() {
        typealias E = DirectoryIndex.TextExpression
        #expect(E.parse("'architecture':*") == .word("architecture", prefix: true))
        #expect(
            E.parse("( 'bolgna':* | 'bologna' | 'bolonia' ) & 'univ':*")
                == .and([
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
