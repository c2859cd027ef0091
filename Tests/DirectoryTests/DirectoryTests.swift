import AccordCore
import AccordSeeding
import AccordTesting
import Foundation
import HTTPTypes
import Institutions
import PGStore
import Testing

@testable import Directory

/// The directory, tested on the real university list (Data/world_universities_and_domains.json,
/// imported as `accord import universities` does) plus a few registered members with full profiles.
@Suite("Partner directory")
struct DirectoryTests {
    static let universities = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Data/world_universities_and_domains.json")

    /// A network with the real list imported, a signed-in staff member and the network admin's token.
    struct Network {
        let h: Harness
        let admin: String
        let token: String

        func search(_ query: String) async throws -> Harness.Reply {
            try await h.request(.get, "/v1/directory?\(query)", token: token)
        }

        func names(_ query: String) async throws -> [String] {
            let reply = try await search(query)
            try #require(reply.status == .ok, "\(query): \(reply.body)")
            return Self.items(reply).map { (($0["names"] as! [[String: Any]])[0]["value"] as! String) }
        }

        static func items(_ reply: Harness.Reply) -> [[String: Any]] { reply["items"] as? [[String: Any]] ?? [] }

        /// Every item of a query, following nextCursor to the end.
        func all(_ query: String) async throws -> [[String: Any]] {
            var items: [[String: Any]] = []
            var cursor: String?
            repeat {
                let reply = try await search(query + (cursor.map { "&cursor=\($0)" } ?? ""))
                try #require(reply.status == .ok, "\(query): \(reply.body)")
                items += Self.items(reply)
                cursor = reply.string("nextCursor")
            } while cursor != nil
            return items
        }

        /// Registers and approves a member with a full profile; returns its id and admin e-mail.
        @discardableResult
        func member(_ schac: String, name: String, country: String = "BE", profile: [String: Any]) async throws -> (UUID, String) {
            var extra = profile
            extra["names"] = [["lang": "en", "value": name]]
            let (id, email) = try await h.register(schac: schac, country: country, extra: extra)
            try await h.approve(id, adminToken: admin)
            return (id, email)
        }
    }

    static func withNetwork(_ body: @Sendable (Network) async throws -> Void) async throws {
        try await Harness.run { h in
            let owner = try h.database.pool(asOwner: true, maxConnections: 2)
            let summary = try await UniversityImport(pool: owner, batchSize: 1000).run(try UniversityImport.read(universities))
            await owner.close()
            #expect(summary.created > 10_000)
            let admin = try await h.networkAdmin()
            let (_, email) = try await h.register(schac: "searcher.test", country: "BE")
            let token = try await h.signIn(email)
            try await body(Network(h: h, admin: admin, token: token))
        }
    }

    @Test func textSearchIsAccentCaseAndTypoTolerantOnTheRealList() async throws {
        try await Self.withNetwork { n in
            // Accents and case do not matter.
            #expect(try await n.names("q=universidad%20autonoma%20de%20madrid").first == "Universidad Autónoma de Madrid")
            #expect(try await n.names("q=UNIVERSITAT%20ZURICH").first == "Universität Zürich")
            // Prefixes, as one types.
            #expect(try await n.names("q=karolins").first == "Karolinska Institute Stockholm")
            // Misspelled names still find the institution in the top three.
            for (typo, name) in [
                ("Univrsity%20of%20Helsinki", "University of Helsinki"),
                ("Karolinska%20Insitute", "Karolinska Institute Stockholm"),
                ("Universidade%20de%20Coimbar", "Universidade de Coimbra"),
                ("University%20of%20Bolgna", "University of Bologna"),
            ] {
                let top = try await n.names("q=\(typo)&limit=3")
                #expect(top.contains(name), "\(typo) → \(top)")
            }
            // An exact SCHAC code or domain comes first, whatever else matches.
            #expect(try await n.names("q=helsinki.fi").first == "University of Helsinki")
            #expect(try await n.names("q=https%3A%2F%2Fwww.uzh.ch%2Fen").first == "Universität Zürich")
            // The snippet shows why it matched, HTML-escaped, with <mark>.
            let reply = try await n.search("q=zurich&country=CH")
            let snippets = Network.items(reply).compactMap { $0["snippet"] as? String }
            #expect(snippets.contains("Universität <mark>Zürich</mark>"), "\(snippets)")
            #expect(snippets.allSatisfy { $0.contains("<mark>") })
            // Characters that mean something to tsquery or LIKE are searched literally, never a 500.
            for q in ["a%26b%7Cc%3A*!%27", "%25_%5C", "(((", "%22%22", "%3A*", "!!!", "'%3B%20DROP%20TABLE%20directory_entries%3B--"] {
                let r = try await n.search("q=\(q)")
                #expect(r.status == .ok, "q=\(q): \(r.status)")
            }
        }
    }

    @Test func filtersFacetsAndPaging() async throws {
        try await Self.withNetwork { n in
            // Country, region, type.
            let finnish = try await n.all("country=FI&limit=50&facets=false")
            #expect(finnish.count > 10 && finnish.allSatisfy { $0["country"] as? String == "FI" })
            let nordic = try await n.all("region=154&limit=100&facets=false")  // Northern Europe
            #expect(nordic.contains { $0["country"] as? String == "FI" } && nordic.contains { $0["country"] as? String == "GB" })
            #expect(!nordic.contains { $0["country"] as? String == "DE" })
            #expect(try await n.search("region=Northern%20Europe&facets=false&limit=1")["items"] != nil)
            let both = try await n.all("country=FI&country=SE&limit=100&facets=false")
            #expect(Set(both.compactMap { $0["country"] as? String }) == ["FI", "SE"])

            // Members with full profiles: fields (any level), languages with levels, activities.
            try await n.member(
                "engineering.test", name: "Institute of Automation Rotterdam", country: "NL",
                profile: [
                    "subjectAreas": [["code": "0714", "strength": "strong"]],
                    "teachingLanguages": [["code": "fr", "level": "B2"], ["code": "en", "level": "C1"]],
                    "offers": ["joint_degree", "student_exchange"], "seeks": ["staff_exchange"], "services": ["visa_support"],
                    "description": "<script>alert(1)</script> Robotics & control engineering since 1950.",
                ])
            try await n.member(
                "arts.test", name: "Academy of Arts Rotterdam", country: "NL",
                profile: [
                    "subjectAreas": [["code": "0213"]], "teachingLanguages": [["code": "fr", "level": "A2"]],
                    "offers": ["summer_school"], "seeks": ["joint_degree"],
                ])
            #expect(try await n.names("field=07&q=rotterdam") == ["Institute of Automation Rotterdam"])
            // Description matches are found and shown HTML-escaped: the marks are the only markup.
            let robotics = try await n.search("q=robotics%20rotterdam")
            let snippet = try #require(Network.items(robotics).first?["snippet"] as? String)
            #expect(snippet.contains("<mark>Robotics</mark>") && snippet.contains("&lt;script&gt;") && !snippet.contains("<script>"), "\(snippet)")
            #expect(try await n.names("field=071&q=rotterdam") == ["Institute of Automation Rotterdam"])
            #expect(try await n.names("field=0714&q=rotterdam") == ["Institute of Automation Rotterdam"])
            #expect(try await n.names("field=02&q=rotterdam") == ["Academy of Arts Rotterdam"])
            #expect(try await n.names("language=fr&minCefr=B1&q=rotterdam") == ["Institute of Automation Rotterdam"])
            #expect(
                Set(try await n.names("language=fr&minCefr=A1&q=rotterdam")) == ["Institute of Automation Rotterdam", "Academy of Arts Rotterdam"])
            #expect(Set(try await n.names("language=fr&q=rotterdam")).count == 2)
            #expect(try await n.names("language=fr&minCefr=C1&q=rotterdam").isEmpty)
            #expect(try await n.names("offers=summer_school&q=rotterdam") == ["Academy of Arts Rotterdam"])
            #expect(try await n.names("seeks=staff_exchange&service=visa_support") == ["Institute of Automation Rotterdam"])

            // Student counts, and filters that most entries pass (written against the compact
            // columns rather than the tag index): the same answers either way.
            try await n.member("small.test", name: "Tiny Rotterdam Conservatory", country: "NL", profile: ["studentCount": 300])
            #expect(try await n.names("q=rotterdam&maxStudents=1000") == ["Tiny Rotterdam Conservatory"])
            #expect(try await n.names("q=rotterdam&minStudents=200&maxStudents=400") == ["Tiny Rotterdam Conservatory"])
            #expect(try await n.names("q=rotterdam&minStudents=1000").isEmpty)
            let american = try await n.all("q=college&country=US&limit=100&facets=false")
            #expect(!american.isEmpty && american.allSatisfy { $0["country"] as? String == "US" })
            let americas = try await n.all("q=college&region=019&type=university&tier=member&limit=100&facets=false")
            #expect(americas.count >= american.count)
            let broad = try await n.search("q=college&region=019&type=university&tier=member&limit=1")
            #expect(broad["total"] as? Int == americas.count)

            // Facets: each with its own filter left out.
            let faceted = try await n.search("q=rotterdam&field=07")
            let facets = try #require(faceted["facets"] as? [String: [String: Int]])
            #expect(faceted["total"] as? Int == 1)
            #expect(facets["field"]?["07"] == 1 && facets["field"]?["02"] == 1, "the field facet ignores the field filter")
            #expect(facets["country"] == ["NL": 1] && facets["language"] == ["fr": 1, "en": 1])
            #expect(facets["region"]?["150"] == 1 && facets["type"] == ["university": 1] && facets["offers"]?["joint_degree"] == 1)

            // Facet counts add up to what paging to the end returns; no entry twice.
            let query = "q=technische&country=DE&country=AT&limit=7"
            let first = try await n.search(query)
            let total = try #require(first["total"] as? Int)
            let counts = try #require(first["facets"] as? [String: [String: Int]])
            let paged = try await n.all(query)
            #expect(total > 7 && paged.count == total)
            #expect(Set(paged.map { $0["id"] as! String }).count == total)
            #expect(counts["type"]!.values.reduce(0, +) == total)
            #expect(counts["country"]!["DE"]! == paged.filter { $0["country"] as? String == "DE" }.count)
            let byName = try await n.all("country=FI&sort=name&limit=9&facets=false")
            #expect(byName.count == finnish.count)
            let newest = try await n.all("country=FI&sort=newest&limit=9&facets=false")
            #expect(Set(newest.map { $0["id"] as! String }) == Set(finnish.map { $0["id"] as! String }))

            // Paging stays stable while entries are added: nothing twice, nothing skipped.
            let page1 = try await n.search("country=FI&limit=5&facets=false")
            try await n.member("aaa-finnish.test", name: "Aalto Academy of Aaa", country: "FI", profile: [:])
            try await n.member("zzz-finnish.test", name: "Zyx University of Zzz", country: "FI", profile: [:])
            var rest = Network.items(page1)
            var cursor = page1.string("nextCursor")
            while let c = cursor {
                let page = try await n.search("country=FI&limit=5&facets=false&cursor=\(c)")
                rest += Network.items(page)
                cursor = page.string("nextCursor")
            }
            let ids = rest.map { $0["id"] as! String }
            #expect(Set(ids).count == ids.count)
            #expect(ids.count == finnish.count + 1, "the entry added after the cursor appears, the one before it does not")
        }
    }

    @Test func broadFacetsWithoutTextCountTheSameFromTheCoveringIndex() async throws {
        try await Self.withNetwork { n in
            let pool = n.h.pool
            let lists = try await ReferenceData(pool: pool).lists()
            let statistics = try await DirectoryService.TagStatistics.load { try await pool.query($0) }
            func parse(_ text: String) throws -> DirectoryQuery {
                try DirectoryQuery.parse(
                    text.split(separator: "&").map { pair in
                        let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                        return (parts[0], parts[1])
                    }, reference: lists)
            }
            func rows(_ statement: PGQuery) async throws -> [String] {
                try await pool.query(statement).decode((String, String?, String?, [Int]).self)
                    .map { "\($0.0) \($0.1 ?? "-") \($0.2 ?? "-") \($0.3)" }.sorted()
            }
            // The real list has names and places only: two members with full profiles for the masks.
            try await n.member(
                "automation.test", name: "Institute of Automation Delft", country: "NL",
                profile: [
                    "subjectAreas": [["code": "0714", "strength": "strong"]], "teachingLanguages": [["code": "en", "level": "C1"]],
                    "offers": ["joint_degree", "student_exchange"], "seeks": ["staff_exchange"], "services": ["visa_support"], "studentCount": 5000,
                ])
            try await n.member(
                "arts.test", name: "Academy of Arts Lisbon", country: "PT",
                profile: [
                    "subjectAreas": [["code": "0213"]], "teachingLanguages": [["code": "pt", "level": "C2"], ["code": "en", "level": "B2"]],
                    "offers": ["summer_school", "student_exchange"], "seeks": ["joint_degree"], "studentCount": 800,
                ])
            for text in [
                "region=150&type=university", "region=150&country=US&tier=member", "type=university&region=019&country=DE",
                "region=150&offers=student_exchange&language=en", "region=150&field=07&seeks=staff_exchange",
                "region=150&type=university&minStudents=1000&service=visa_support",
            ] {
                let query = try parse(text)
                let plan = DirectoryService.FilterPlan(query: query, text: false, statistics: statistics, lists: lists)
                let compact = plan.onCompactColumns()
                #expect(!plan.indexable.isEmpty)
                let fromIndex = try await rows(DirectoryService.facetsStatement(query, text: nil, plan: compact))
                #expect(!fromIndex.isEmpty, "\(text)")
                #expect(fromIndex == (try await rows(DirectoryService.facetsStatement(query, text: nil, plan: plan))), "\(text)")
            }
            // Which plan a search gets: the covering index when the entries to count are many (a
            // region and a type: a quarter of the list), the tags' index when a filter is selective.
            for (text, broad) in [
                ("region=150&type=university", true), ("type=university&region=019&country=DE", true),
                ("region=150&offers=student_exchange&language=en", false), ("region=150&field=07&seeks=staff_exchange", false),
            ] {
                let query = try parse(text)
                let plan = DirectoryService.FilterPlan(query: query, text: false, statistics: statistics, lists: lists)
                #expect(plan.forFacets(of: query, text: false).indexable.isEmpty == broad, "\(text)")
            }
            // A detailed field or a language level has no compact column; a search with q always
            // starts from the text's index: both keep the plan they had.
            for text in ["field=0714&region=150&type=university", "language=fr&minCefr=B2&type=university&region=150"] {
                let query = try parse(text)
                let plan = DirectoryService.FilterPlan(query: query, text: false, statistics: statistics, lists: lists)
                #expect(plan.forFacets(of: query, text: false).indexable == plan.indexable, "\(text)")
                #expect(plan.forFacets(of: query, text: true).indexable == plan.indexable, "\(text)")
            }
        }
    }

    @Test func onlyActiveListedInstitutionsAppear() async throws {
        try await Self.withNetwork { n in
            let (pending, _) = try await n.h.register(
                schac: "pending.test", country: "BE", extra: ["names": [["lang": "en", "value": "Quixotic Pending College"]]])
            #expect(try await n.names("q=quixotic").isEmpty)
            try await n.h.approve(pending, adminToken: n.admin)
            #expect(try await n.names("q=quixotic") == ["Quixotic Pending College"])
            let suspend = try await n.h.request(.post, "/v1/admin/institutions/\(pending)/suspend", token: n.admin, json: ["reason": "test"])
            #expect(suspend.status == .ok)
            #expect(try await n.names("q=quixotic").isEmpty)
            #expect(try await n.names("q=pending.test").isEmpty)

            let (unlisted, email) = try await n.member("unlisted.test", name: "Quixotic Unlisted Institute", profile: [:])
            let memberToken = try await n.h.signIn(email)
            let read = try await n.h.request(.get, "/v1/institutions/\(unlisted)", token: memberToken)
            let etag = try #require(read.headers[.eTag])
            let patch = try await n.h.request(
                .patch, "/v1/institutions/\(unlisted)", token: memberToken, json: ["listed": false], headers: [.ifMatch: etag])
            #expect(patch.status == .ok, "\(patch.body)")
            #expect(try await n.names("q=quixotic").isEmpty)
            // The per-tag counts behind the unfiltered facets stay exact through every change.
            let drift = try await n.h.count(
                """
                SELECT count(*) FROM (SELECT t, count(*) AS n FROM directory_entries, unnest(tags) t GROUP BY t
                                      UNION ALL SELECT '#', count(*) FROM directory_entries) actual
                FULL JOIN directory_tag_counts c ON c.tag = actual.t
                WHERE coalesce(actual.n, 0) <> coalesce(c.entries, 0)
                """)
            #expect(drift == 0)
            let everything = try await n.search("limit=1")
            let entries = try await n.h.count("SELECT count(*) FROM directory_entries")
            #expect(everything["total"] as? Int == entries)
            let byCountry = try #require((everything["facets"] as? [String: [String: Int]])?["country"])
            #expect(byCountry.values.reduce(0, +) == entries)
            let finnish = try await n.search("country=FI&limit=1")
            let finnishFacets = try #require(finnish["facets"] as? [String: [String: Int]])
            #expect(finnishFacets["country"] == byCountry, "the country facet leaves the country filter out")
            #expect(finnishFacets["type"]?.values.reduce(0, +) == finnish["total"] as? Int)
            #expect(finnishFacets["region"]?["154"] == finnish["total"] as? Int)

            // Without a session there is no directory.
            #expect(try await n.h.request(.get, "/v1/directory?q=helsinki").status == .unauthorized)
        }
    }

    @Test func badInputIsRefusedClearly() async throws {
        try await Self.withNetwork { n in
            func problem(_ query: String) async throws -> (HTTPResponse.Status, [String], String) {
                let reply = try await n.search(query)
                return (reply.status, reply.problemFields, reply.string("detail") ?? "")
            }
            let long = String(repeating: "a", count: 201)
            #expect(try await problem("q=\(long)").1 == ["q"])
            #expect(try await n.search("q=\(String(repeating: "a", count: 200))").status == .ok)
            var (status, fields, detail) = try await problem("country=XX&field=1234&language=zz&type=castle&offers=parties&region=Atlantis")
            #expect(status == .unprocessableContent)
            #expect(fields == ["country", "region", "type", "field", "language", "offers"])
            #expect(detail.contains("'XX'") && detail.contains("'1234'") && detail.contains("'Atlantis'"))
            (status, fields, _) = try await problem("minCefr=B2")
            #expect(fields == ["minCefr"])
            (status, fields, _) = try await problem("limit=101&sort=relevance&contry=BE&minStudents=10&maxStudents=5")
            #expect(Set(fields) == ["limit", "sort", "contry", "maxStudents"])
            #expect(try await n.search("q=%00").status == .unprocessableContent)

            // Cursors: tampered, or from another query.
            #expect(try await n.search("country=FI&cursor=not-a-cursor").status == .badRequest)
            #expect(try await n.search("country=FI&cursor=eyJmb28iOjF9").status == .badRequest)
            let page = try await n.search("country=FI&limit=2")
            let cursor = try #require(page.string("nextCursor"))
            #expect(try await n.search("country=SE&limit=2&cursor=\(cursor)").status == .badRequest)
            #expect(try await n.search("country=FI&limit=3&cursor=\(cursor)").status == .ok, "the limit may change between pages")
        }
    }

    @Test func recommendationsComplementAndExplain() async throws {
        try await Self.withNetwork { n in
            let (_, email) = try await n.member(
                "seeker.test", name: "Seeker University", country: "IT",
                profile: [
                    "subjectAreas": [["code": "0714", "strength": "growing"], ["code": "0311"]],
                    "teachingLanguages": [["code": "en", "level": "C1"], ["code": "it", "level": "C2"]],
                    "offers": ["staff_exchange"], "seeks": ["joint_degree"],
                ])
            let (fit, _) = try await n.member(
                "fit.test", name: "Complement Institute", country: "DE",
                profile: [
                    "subjectAreas": [["code": "0714", "strength": "strong"]],
                    "teachingLanguages": [["code": "en", "level": "C1"]],
                    "offers": ["joint_degree"], "seeks": ["staff_exchange"],
                ])
            try await n.member(
                "half.test", name: "Half Fit College", country: "FR",
                profile: [
                    "offers": ["joint_degree"], "teachingLanguages": [["code": "fr", "level": "C2"]],
                ])
            try await n.member("none.test", name: "No Fit Academy", country: "FR", profile: ["offers": ["summer_school"]])
            let token = try await n.h.signIn(email)
            let reply = try await n.h.request(.get, "/v1/directory/recommendations?limit=5", token: token)
            try #require(reply.status == .ok, "\(reply.body)")
            let items = try #require(reply["items"] as? [[String: Any]])
            let names = items.map { (($0["institution"] as! [String: Any])["names"] as! [[String: Any]])[0]["value"] as! String }
            #expect(names.first == "Complement Institute")
            #expect(names.contains("Half Fit College"))
            #expect(!names.contains("Seeker University"), "never itself")
            #expect(!names.contains("No Fit Academy"), "nothing in common, no recommendation")
            let top = items[0]
            #expect((top["institution"] as! [String: Any])["id"] as? String == fit.uuidString.lowercased())
            let reasons = top["reasons"] as? [String] ?? []
            #expect(reasons.contains("offers joint degrees, which you seek"))
            #expect(reasons.contains("seeks staff exchange, which you offer"))
            #expect(reasons.contains("strong in 0714 Electronics and automation, where you are growing"))
            #expect(reasons.contains("teaches in English at C1"))
            #expect((top["score"] as? Double ?? 0) > (items[1]["score"] as? Double ?? 0))

            // Network administrators belong to no institution: nothing to complement.
            #expect(try await n.h.request(.get, "/v1/directory/recommendations", token: n.admin).status == .forbidden)
            #expect(try await n.h.request(.get, "/v1/directory/recommendations?limit=0", token: token).status == .unprocessableContent)
        }
    }
}
