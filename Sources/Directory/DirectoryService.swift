import AccordCore
import Foundation
import Institutions
import PGStore

/// One institution as the directory lists it: the published profile's searchable parts.
public struct DirectoryItem: Codable, Sendable, Equatable {
    public var id: UUID
    public var schac: String
    public var names: [LocalizedName]
    public var acronym: String?
    public var country: String
    public var city: String?
    public var type: String
    public var tier: String
    public var studentCount: Int?
    public var fields: [SubjectArea]
    public var languages: [TeachingLanguage]
    public var offers: [String]
    public var seeks: [String]
    public var services: [String]
    /// Why the entry matched q: a passage of its names or description in which the matched words are
    /// wrapped in `<mark>…</mark>`. The text is HTML-escaped, so the marks are its only markup.
    public var snippet: String?
}

/// A page of directory results.
public struct DirectoryPage: Codable, Sendable {
    public var items: [DirectoryItem]
    /// How many entries match the whole query.
    public var total: Int?
    /// Per facet, value → count, each computed with its own filter left out; absent with facets=false.
    public var facets: [String: [String: Int]]?
    public var nextCursor: String?
}

/// The partner directory: search with facets over the published profiles (`directory_entries`,
/// Schema/0006_directory.sql), and complementarity recommendations.
public struct DirectoryService: Sendable {
    let pool: PGPool
    let reference: ReferenceData

    public init(pool: PGPool, reference: ReferenceData) {
        self.pool = pool
        self.reference = reference
    }

    // MARK: Search

    /// One page of `query`'s results, with the facets and the total (two statements, one round trip,
    /// one read-only transaction as `caller`).
    public func search(_ query: DirectoryQuery, caller: Identity) async throws -> DirectoryPage {
        let results = try await pool.readAsTenant(caller, try Self.statements(for: query))

        let rows = results[0]
        var items: [DirectoryItem] = []
        var lastKey: DirectoryCursor.Key?
        var lastID: UUID?
        for row in rows.prefix(query.limit) {
            let r = try row.decode((
                UUID, String, PGJSONB<[LocalizedName]>, String?, String, String?, String, String, Int?,
                PGJSONB<[SubjectArea]>, PGJSONB<[TeachingLanguage]>, [String], [String], [String], String?,
                Double?, String?, String
            ).self)
            items.append(DirectoryItem(
                id: r.0, schac: r.1, names: r.2.value, acronym: r.3, country: r.4, city: r.5, type: r.6, tier: r.7,
                studentCount: r.8, fields: r.9.value, languages: r.10.value, offers: r.11, seeks: r.12, services: r.13,
                snippet: r.14))
            lastID = r.0
            switch query.sort {
            case .relevance: lastKey = r.15.map { .rank($0) }
            case .name: lastKey = r.16.map { .name($0) }
            case .newest: lastKey = .created(r.17)
            }
        }
        var next: String?
        if rows.count > query.limit, let lastKey, let lastID {
            next = DirectoryCursor(key: lastKey, id: lastID, query: query).encoded
        }

        var page = DirectoryPage(items: items, nextCursor: next)
        if query.withFacets {
            var facets: [String: [String: Int]] = [:]
            for facet in DirectoryQuery.Facet.allCases { facets[facet.rawValue] = [:] }
            for row in results[1] {
                let (tag, count) = try row.decode((String, Int).self)
                if tag.isEmpty {
                    page.total = count
                } else if let facet = DirectoryQuery.Facet.allCases.first(where: { tag.hasPrefix($0.prefix) }) {
                    facets[facet.rawValue, default: [:]][String(tag.dropFirst(2))] = count
                }
            }
            page.facets = facets
        }
        return page
    }

    /// The statements behind a search: the page's items, then (unless facets=false) the facets and
    /// the total. Public for tooling (`accord directory sql`): benchmarks and plans use exactly these.
    public static func statements(for query: DirectoryQuery) throws -> [PGQuery] {
        let after = try query.cursor.map { try DirectoryCursor.decode($0, for: query) }
        var statements = [itemsStatement(query, after: after)]
        if query.withFacets { statements.append(facetsStatement(query)) }
        return statements
    }

    /// The text part of a search, once per statement: the fuzzy tsquery (prefixes, misspellings
    /// widened), the strict one (prefixes only), the folded text and q as a domain.
    private static func textCTE(_ text: String, domain: String?) -> PGQuery {
        """
        qq AS MATERIALIZED (
            SELECT accord_directory_tsquery(\(text), true) AS fz, accord_directory_tsquery(\(text), false) AS st,
                   accord_fold(\(text)) AS qf, \(domain)::text AS qd)
        """
    }

    private static let textMatch: PGQuery = """
        (e.document @@ (SELECT fz FROM qq) OR e.acronym_folded = (SELECT qf FROM qq) OR e.schac = (SELECT qd FROM qq))
        """

    /// Relevance: an exact acronym or SCHAC/domain match first, then entries whose words all match as
    /// typed (no misspelling needed), then the weighted text rank (names over city over description
    /// over goals) plus how close the names are to q as a whole (trigram similarity).
    private static let rank: PGQuery = """
        ((CASE WHEN e.acronym_folded = (SELECT qf FROM qq) OR e.schac = (SELECT qd FROM qq) THEN 100 ELSE 0 END)
         + (CASE WHEN e.document @@ (SELECT st FROM qq) THEN 1 ELSE 0 END)
         + coalesce(ts_rank(e.document, (SELECT fz FROM qq)), 0)
         + similarity(e.names_folded, (SELECT qf FROM qq)))::float8
        """

    /// Conditions every listed or counted entry meets: text, the filters without a facet, the
    /// student range.
    private static func baseConditions(_ query: DirectoryQuery) -> [PGQuery] {
        var conditions: [PGQuery] = []
        if query.text != nil { conditions.append(textMatch) }
        for tags in query.plainTagFilters { conditions.append("e.tags && \(tags)::text[]") }
        if let low = query.minStudents { conditions.append("e.student_count >= \(low)") }
        if let high = query.maxStudents { conditions.append("e.student_count <= \(high)") }
        return conditions
    }

    private static func facetConditions(_ query: DirectoryQuery) -> [(DirectoryQuery.Facet, PGQuery)] {
        DirectoryQuery.Facet.allCases.compactMap { facet in
            query.tags(for: facet).map { (facet, "e.tags && \($0)::text[]") }
        }
    }

    static func itemsStatement(_ query: DirectoryQuery, after: (key: DirectoryCursor.Key, id: UUID)?) -> PGQuery {
        var conditions = baseConditions(query) + facetConditions(query).map(\.1)
        if conditions.isEmpty { conditions = ["true"] }
        let rank: PGQuery = query.text == nil ? "NULL::float8" : Self.rank
        var sql: PGQuery = query.text.map { "WITH \(textCTE($0, domain: query.domain)) " } ?? ""
        sql.append("""
            SELECT p.id, p.schac, p.names, p.acronym, p.country::text, p.city, p.type, p.tier, p.student_count,
                   p.subject_areas, p.teaching_languages, p.offers, p.seeks, p.services, \(snippet(query)),
                   p.rank, p.sort_name, to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM (
                SELECT s.* FROM (
                    SELECT e.*, \(rank) AS rank FROM directory_entries e
                    WHERE \(PGQuery.joined(conditions, separator: " AND "))
                ) s
            """)
        let order: String
        switch (query.sort, after?.key) {
        case (.relevance, .rank(let value)?):
            sql.append(" WHERE (s.rank < \(value) OR (s.rank = \(value) AND s.id > \(after!.id)))")
            order = "rank DESC, id"
        case (.name, .name(let value)?):
            sql.append(" WHERE (s.sort_name, s.id) > (\(value), \(after!.id))")
            order = "sort_name, id"
        case (.newest, .created(let value)?):
            sql.append(" WHERE (s.created_at, s.id) < (\(value)::timestamptz, \(after!.id))")
            order = "created_at DESC, id DESC"
        case (.relevance, _): order = "rank DESC, id"
        case (.name, _): order = "sort_name, id"
        case (.newest, _): order = "created_at DESC, id DESC"
        }
        sql.append(" ORDER BY \(unsafeRaw: order) LIMIT \(query.limit + 1)) p ORDER BY \(unsafeRaw: order)")
        return sql
    }

    /// The snippet, computed for the page's rows only: the best passages of names, city, description
    /// and goals, HTML-escaped before the marks go in.
    private static func snippet(_ query: DirectoryQuery) -> PGQuery {
        guard query.text != nil else { return "NULL::text" }
        return """
            (SELECT CASE WHEN (SELECT fz FROM qq) IS NULL THEN NULL
                         ELSE ts_headline('accord_search', accord_html_escape(concat_ws(' — ', n.names_text, p.city, p.description, p.goals)),
                                          (SELECT fz FROM qq), \(headlineOptions)) END
             FROM (SELECT string_agg(x ->> 'value', ' · ') AS names_text FROM jsonb_array_elements(p.names) x) n)
            """
    }

    private static let headlineOptions = "StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=2, FragmentDelimiter=\" … \""

    /// The facets and the total in one pass over the entries that fail at most one faceted filter:
    /// a value of facet F is counted for an entry that meets every filter except, perhaps, F's own.
    static func facetsStatement(_ query: DirectoryQuery) -> PGQuery {
        let faceted = facetConditions(query)
        var where_ = baseConditions(query)
        if faceted.count == 1 {
            // One faceted filter: every entry of the base counts for that facet, so no restriction.
        } else if faceted.count > 1 {
            let alternatives: [PGQuery] = faceted.indices.map { left in
                Self.parenthesized(PGQuery.joined(faceted.enumerated().filter { $0.offset != left }.map(\.element.1), separator: " AND "))
            }
            where_.append(Self.parenthesized(PGQuery.joined(alternatives, separator: " OR ")))
        }
        if where_.isEmpty { where_ = ["true"] }
        var flags: [PGQuery] = []
        for (index, condition) in faceted.enumerated() { flags.append("\(condition.1) AS f\(unsafeRaw: String(index))") }

        var sql: PGQuery = "WITH "
        if let text = query.text { sql.append("\(textCTE(text, domain: query.domain)), ") }
        sql.append("m AS MATERIALIZED (SELECT e.tags")
        for flag in flags { sql.append(", \(flag)") }
        sql.append(" FROM directory_entries e WHERE \(PGQuery.joined(where_, separator: " AND ")))")

        func allFlags(except facet: DirectoryQuery.Facet?) -> String {
            let names = faceted.enumerated().filter { $0.element.0 != facet }.map { "m.f\($0.offset)" }
            return names.isEmpty ? "true" : names.joined(separator: " AND ")
        }
        let kinds = DirectoryQuery.Facet.allCases.map { facet -> String in
            let length = (facet == .field || facet == .language) ? " AND length(t) = 4" : ""
            return "(left(t, 2) = '\(facet.prefix)'\(length) AND \(allFlags(except: facet)))"
        }
        sql.append("""
             SELECT t, count(*) FROM m, unnest(m.tags) t WHERE \(unsafeRaw: kinds.joined(separator: " OR ")) GROUP BY t
             UNION ALL SELECT '', count(*) FROM m WHERE \(unsafeRaw: allFlags(except: nil))
            """)
        return sql
    }

    private static func parenthesized(_ query: PGQuery) -> PGQuery { "(\(query))" }
}
