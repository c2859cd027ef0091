import AccordCore
import Foundation
import Institutions
import PGStore
import Synchronization

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

extension DirectoryItem {
    /// The entry columns an item is read from, in order, from the table or subquery `alias`; a
    /// statement may add columns after them.
    static func columns(_ alias: String) -> String {
        ["id", "schac", "names", "acronym", "country::text", "city", "type", "tier", "student_count",
         "subject_areas", "teaching_languages", "offers", "seeks", "services"].map { "\(alias).\($0)" }.joined(separator: ", ")
    }

    static let columnCount = 14

    /// The item in the first `columnCount` columns of `row` (see `columns`), without a snippet.
    init(row: PGRow) throws {
        let r = try row.decode((
            UUID, String, PGFlatJSONArray<LocalizedName>, String?, String, String?, String, String, Int?,
            PGFlatJSONArray<SubjectArea>, PGFlatJSONArray<TeachingLanguage>, [String], [String], [String]
        ).self)
        self.init(
            id: r.0, schac: r.1, names: r.2.elements, acronym: r.3, country: r.4, city: r.5, type: r.6, tier: r.7,
            studentCount: r.8, fields: r.9.elements, languages: r.10.elements, offers: r.11, seeks: r.12, services: r.13)
    }
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
    /// The directory in memory: matches and facets of a search with q, when it is serving.
    let index: DirectoryIndex?
    private let cachedStatistics = StatisticsCache()

    /// In name or newest order, up to this many entries matching a query with q, the page is
    /// ordered by PostgreSQL over the entries the index found (read by primary key); beyond, the
    /// SQL search finds the page itself (the facets still come from the index). In relevance order
    /// the index ranks up to `DirectoryIndex.Store.maxRanked` matches itself and passes on only
    /// those that can be on the page.
    public static let maxIndexedPage = 5_000

    public init(pool: PGPool, reference: ReferenceData, index: DirectoryIndex? = nil) {
        self.pool = pool
        self.reference = reference
        self.index = index
    }

    /// The tag statistics, read again when older than a minute.
    func statistics() async throws -> TagStatistics {
        let now = ContinuousClock.now
        if let (statistics, loaded) = cachedStatistics.value.withLock({ $0 }), now - loaded < .seconds(60) { return statistics }
        let statistics = try await TagStatistics.load { try await pool.query($0) }
        cachedStatistics.value.withLock { $0 = (statistics, now) }
        return statistics
    }

    final class StatisticsCache: Sendable {
        let value = Mutex<(TagStatistics, ContinuousClock.Instant)?>(nil)
    }

    // MARK: Search

    /// One page of `query`'s results, with the facets and the total: with q, the forms of q (one
    /// round trip), then either the index's matches and facets and the page ranked over those
    /// entries, or (without q, or while the index is not serving) the items and facets statements
    /// (one round trip); one read-only transaction as `caller`.
    public func search(_ query: DirectoryQuery, caller: Identity) async throws -> DirectoryPage {
        var text: TextForms?
        if let q = query.text {
            // directory_words is reference data: no tenant transaction needed.
            text = try await TextForms.compute(q, domain: query.domain) { try await pool.pipeline($0) }
        }
        let statistics = try await statistics()
        let lists = try await reference.lists()
        var found: DirectoryIndex.Result?
        if let index {
            if let text {
                found = index.evaluate(query, text: text, countryRegions: lists.countryRegions, maxIDs: Self.maxIndexedPage)
            } else if query.hasFilters, index.isServing {
                // Filters only: the index answers if it has every change committed before now.
                let version = try await pool.query("SELECT version FROM directory_version").scalar(Int64.self)
                found = index.evaluate(query, directoryVersion: version, countryRegions: lists.countryRegions, maxIDs: Self.maxIndexedPage)
            }
        }
        if let found {
            let statement = try Self.itemsStatement(for: query, text: text, found: found, statistics: statistics, lists: lists)
            let results = try await pool.readAsTenant(caller, settings: Self.settings, [statement])
            var page = try Self.page(results[0], query: query)
            page.facets = found.facets
            page.total = query.withFacets ? found.total : nil
            return page
        }
        let results = try await pool.readAsTenant(
            caller, settings: Self.settings, try Self.statements(for: query, text: text, statistics: statistics, lists: lists))
        var page = try Self.page(results[0], query: query)
        if query.withFacets {
            var facets: [String: [String: Int]] = [:]
            for facet in DirectoryQuery.Facet.allCases { facets[facet.rawValue] = [:] }
            func add(_ facet: DirectoryQuery.Facet, _ value: String, _ count: Int) {
                guard count > 0 else { return }
                facets[facet.rawValue, default: [:]][value, default: 0] += count
            }
            var total = 0
            for row in results[1] {
                let (kind, value, type, counts) = try row.decode((String, String, String?, [Int]).self)
                switch kind {
                case "t" where value == "#":
                    total = counts[0]
                case "t":
                    if let facet = DirectoryQuery.Facet.allCases.first(where: { value.hasPrefix($0.prefix) }) {
                        add(facet, String(value.dropFirst(2)), counts[0])
                    }
                case "g":
                    add(.country, value, counts[0])
                    for region in lists.countryRegions[value] ?? [] { add(.region, region, counts[1]) }
                    if let type { add(.type, type, counts[2]) }
                    total += counts[3]
                    for bit in 0...11 { add(.field, bit == 11 ? "99" : (bit < 10 ? "0\(bit)" : "\(bit)"), counts[4 + bit]) }
                    for (bit, activity) in Activity.allCases.enumerated() { add(.offers, activity.rawValue, counts[16 + bit]) }
                case "l":
                    add(.language, value, counts[0])
                default:
                    break
                }
            }
            page.facets = facets
            page.total = total
        }
        return page
    }

    /// The page in the rows of an items statement (one more row than the limit: a next page).
    static func page(_ rows: PGRows, query: DirectoryQuery) throws -> DirectoryPage {
        var items: [DirectoryItem] = []
        var lastKey: DirectoryCursor.Key?
        var lastID: UUID?
        for row in rows.prefix(query.limit) {
            var item = try DirectoryItem(row: row)
            let n = DirectoryItem.columnCount
            item.snippet = try row.column(n, as: String?.self)
            items.append(item)
            lastID = item.id
            switch query.sort {
            case .relevance: lastKey = try row.column(n + 1, as: Double?.self).map { .rank($0) }
            case .name: lastKey = try row.column(n + 2, as: String?.self).map { .name($0) }
            case .newest: lastKey = .created(try row.column(n + 3, as: String.self))
            }
        }
        var next: String?
        if rows.count > query.limit, let lastKey, let lastID {
            next = DirectoryCursor(key: lastKey, id: lastID, query: query).encoded
        }
        return DirectoryPage(items: items, nextCursor: next)
    }

    /// Settings of a search transaction. Directory statements change with every query: custom plans
    /// (the planner sees the tsquery and the filter values, and their selectivity); no JIT
    /// compilation, which costs tens of milliseconds and never pays back on an interactive query; and
    /// enough memory for exact bitmaps of a broad text match (with lossy ones every row of a page is
    /// checked again).
    public static let settings: [(String, String)] = [("plan_cache_mode", "force_custom_plan"), ("jit", "off"), ("work_mem", "64MB")]

    /// The statements behind a search: the page's items, then (unless facets=false) the facets and
    /// the total. Public for tooling (`accord directory sql`): benchmarks and plans use exactly these.
    public static func statements(for query: DirectoryQuery, text: TextForms?, statistics: TagStatistics, lists: ReferenceData.Lists) throws -> [PGQuery] {
        precondition((query.text == nil) == (text == nil), "text forms go with q")
        let after = try query.cursor.map { try DirectoryCursor.decode($0, for: query) }
        let plan = FilterPlan(query: query, text: text != nil, statistics: statistics, lists: lists)
        let statement: PGQuery
        if text == nil, query.sort == .name, plan.allCompact(query) {
            statement = namePageStatement(query, plan: plan.onCompactColumns(), after: after)
        } else {
            statement = itemsStatement(query, text: text, plan: plan, after: after)
        }
        var statements = [statement]
        if query.withFacets { statements.append(facetsStatement(query, text: text, plan: plan.forFacets(of: query, text: text != nil))) }
        return statements
    }

    /// The statement behind a search with q that the index answered (`found`): the page's items,
    /// ranked and ordered over the entries it found, or found by SQL when they are too many. Public
    /// for tooling, as `statements`.
    public static func itemsStatement(
        for query: DirectoryQuery, text: TextForms?, found: DirectoryIndex.Result, statistics: TagStatistics, lists: ReferenceData.Lists
    ) throws -> PGQuery {
        guard let ids = found.ids else { return try statements(for: query, text: text, statistics: statistics, lists: lists)[0] }
        let plan = FilterPlan(query: query, text: text != nil, statistics: statistics, lists: lists)
        let after = try query.cursor.map { try DirectoryCursor.decode($0, for: query) }
        return itemsStatement(query, text: text, plan: plan.onCompactColumns(), after: after, among: (ids: ids, strict: found.strict))
    }

    /// How many entries carry each tag (directory_tag_counts), kept for a minute: only to decide
    /// which filters should drive an index scan, never for a result.
    public struct TagStatistics: Sendable {
        public var counts: [String: Int]
        public var total: Int

        public init(counts: [String: Int], total: Int) {
            self.counts = counts
            self.total = total
        }

        public static func load(_ run: (PGQuery) async throws -> PGRows) async throws -> TagStatistics {
            var counts: [String: Int] = [:]
            for (tag, entries) in try await run("SELECT tag, entries FROM directory_tag_counts").decode((String, Int).self) {
                counts[tag] = entries
            }
            return TagStatistics(counts: counts, total: counts["#"] ?? 0)
        }

        /// The share of all entries that carry any of `tags` (at most the sum of their shares).
        func fraction(_ tags: [String]) -> Double {
            guard total > 0 else { return 0 }
            return min(1, Double(tags.reduce(0) { $0 + (counts[$1] ?? 0) }) / Double(total))
        }
    }

    /// Which tag filters may drive an index scan. PostgreSQL's estimate of a GIN scan over a tag that
    /// half the directory carries is far too low: it intersects `l:en` (800,000 entries) with a
    /// text match of 171, spending 100 ms on the bitmap of the common tag. With exact tag counts at
    /// hand, a filter matching more than 5 % of the entries is written so that no index serves it
    /// (as arrayoverlap(), it filters the rows the selective conditions found) — unless nothing else is selective.
    struct FilterPlan {
        static let selective = 0.05
        /// Counting facets over more than this share of the directory reads the covering index
        /// `directory_entries_facets` whole rather than that many wide rows.
        static let broadFacets = 0.1
        private(set) var indexable: Set<[String]>
        /// The share of the directory that carries each filter's tags.
        let fractions: [[String]: Double]

        let countryRegions: [String: [String]]

        init(query: DirectoryQuery, text: Bool, statistics: TagStatistics, lists: ReferenceData.Lists) {
            let filters = DirectoryQuery.Facet.allCases.compactMap { query.tags(for: $0) } + query.plainTagFilters
            let fractions = filters.map { statistics.fraction($0) }
            let somethingSelective = text || fractions.contains { $0 <= Self.selective }
            indexable = Set(zip(filters, fractions).filter { !somethingSelective || $0.1 <= Self.selective }.map(\.0))
            self.fractions = Dictionary(zip(filters, fractions), uniquingKeysWith: { a, _ in a })
            countryRegions = lists.countryRegions
        }

        /// The plan for the facets of `query`. Without q, when the entries to count (those that fail
        /// at most one faceted filter) are many and every filter can be tested on the compact columns,
        /// no filter goes through the tags' index: then every column the count needs is in the
        /// covering index `directory_entries_facets`, and PostgreSQL counts from an index-only scan
        /// (a tenth of the bytes of the rows, and no heap page per entry). A region and a type over a
        /// million entries: 4.6 s from the rows, 0.8 s from the index.
        func forFacets(of query: DirectoryQuery, text: Bool) -> FilterPlan {
            guard !text else { return self }
            let faceted = DirectoryQuery.Facet.allCases.compactMap { query.tags(for: $0) }
            let plain = query.plainTagFilters
            guard allCompact(faceted + plain) else { return self }
            let share = { (tags: [String]) in fractions[tags] ?? 1 }
            let base = plain.map(share).reduce(1, *)
            // Those that fail at most one faceted filter (filters taken as independent).
            let counted = faceted.count < 2 ? 1 : faceted.indices.map { left in
                faceted.indices.filter { $0 != left }.map { share(faceted[$0]) }.reduce(1, *)
            }.reduce(0, +)
            guard base * min(1, counted) > Self.broadFacets else { return self }
            return onCompactColumns()
        }

        /// Whether every filter of `query` can be tested on the compact columns alone.
        func allCompact(_ query: DirectoryQuery) -> Bool {
            allCompact(DirectoryQuery.Facet.allCases.compactMap { query.tags(for: $0) } + query.plainTagFilters)
        }

        private func allCompact(_ filters: [[String]]) -> Bool {
            filters.allSatisfy { compactCondition($0) != nil }
        }

        /// Every filter tested on the compact columns (where it has a compact form), none through
        /// the tags' index.
        func onCompactColumns() -> FilterPlan {
            var plan = self
            plan.indexable = []
            return plan
        }

        /// The filter on `tags` (all of one kind): through the GIN index when it is selective, else
        /// on the compact columns (a comparison or a bit test per row; an overlap of ~25-element tag
        /// arrays costs microseconds per row, which adds up over a broad text match).
        func condition(_ tags: [String]) -> PGQuery {
            if indexable.contains(tags) { return "e.tags && \(tags)::text[]" }
            // arrayoverlap() is the function behind &&; spelled as a function, no index matches it.
            return compactCondition(tags) ?? "arrayoverlap(e.tags, \(tags)::text[])"
        }

        /// The filter on `tags` tested on the compact columns alone; nil when they cannot (a narrow
        /// or detailed field, a language with a level).
        func compactCondition(_ tags: [String]) -> PGQuery? {
            let values = tags.map { String($0.split(separator: ":", maxSplits: 1).last ?? "") }
            func mask(_ codes: [String], _ bit: (String) -> Int?) -> Int { codes.compactMap(bit).reduce(0) { $0 | (1 << $1) } }
            let activityBit = { (code: String) in Activity.allCases.firstIndex { $0.rawValue == code } }
            switch tags.first?.prefix(2) {
            case "c:": return "e.country = ANY (\(values)::text[]::bpchar[])"
            case "r:":
                let countries = countryRegions.filter { !Set($0.value).isDisjoint(with: values) }.keys.sorted()
                return "e.country = ANY (\(countries)::text[]::bpchar[])"
            case "t:": return "e.type = ANY (\(values)::text[])"
            case "k:": return "e.tier = ANY (\(values)::text[])"
            case "o:": return "(e.offers_mask & \(mask(values, activityBit))) <> 0"
            case "s:": return "(e.seeks_mask & \(mask(values, activityBit))) <> 0"
            case "v:": return "e.services && \(values)::text[]"
            case "f:" where values.allSatisfy({ $0.count == 2 }):
                return "(e.fields_mask & \(mask(values) { $0 == "99" ? 11 : Int($0) })) <> 0"
            case "l:" where tags.allSatisfy({ $0.count == 4 }):
                return "e.languages && \(values)::text[]"
            default:
                return nil
            }
        }
    }

    /// The forms of q the statements use, computed by PostgreSQL in a first round trip so that the
    /// statements carry them as values: planned as constants, the text conditions use their indexes
    /// (an InitPlan or CTE in their place leaves the planner guessing, and it scans every entry).
    public struct TextForms: Sendable {
        /// Every word a prefix, misspelled words widened (`accord_directory_tsquery(q, true)`); nil
        /// when q has no word.
        public var fuzzy: String?
        /// Every word a prefix, nothing widened.
        public var strict: String?
        /// q folded (accents and case).
        public var folded: String
        /// q as a domain, for an exact SCHAC match.
        public var domain: String?
        /// The directory's version when the search began (Schema/0009): the index answers only if
        /// it has applied every change up to it.
        public var directoryVersion: Int64 = 0

        public static func compute(_ q: String, domain: String?, run: ([PGQuery]) async throws -> [PGRows]) async throws -> TextForms {
            let rows = try await run(["""
                SELECT accord_directory_tsquery(\(q), true)::text, accord_directory_tsquery(\(q), false)::text, accord_fold(\(q)),
                       (SELECT version FROM directory_version)
                """])
            let r = try rows[0].first((String?, String?, String, Int64).self)!
            return TextForms(fuzzy: r.0, strict: r.1, folded: r.2, domain: domain, directoryVersion: r.3)
        }
    }

    private static func textMatch(_ t: TextForms) -> PGQuery {
        if let fuzzy = t.fuzzy {
            return "(e.document @@ \(fuzzy)::tsquery OR e.acronym_folded = \(t.folded) OR e.schac = \(t.domain))"
        }
        return "(e.acronym_folded = \(t.folded) OR e.schac = \(t.domain))"
    }

    /// Relevance: an exact acronym or SCHAC/domain match first, then entries whose words all match as
    /// typed (no misspelling needed), then the weighted text rank (names over city over description
    /// over goals) plus how close the names are to q as a whole (trigram similarity). `strictMatch`
    /// is the condition "the document matches the strict form" when known already.
    static func rank(_ t: TextForms, strictMatch: PGQuery? = nil) -> PGQuery {
        var rank: PGQuery = "((CASE WHEN e.acronym_folded = \(t.folded) OR e.schac = \(t.domain) THEN 100 ELSE 0 END)"
        if let fuzzy = t.fuzzy, let strict = t.strict {
            rank.append(" + (CASE WHEN \(strictMatch ?? "e.document @@ \(strict)::tsquery") THEN 1 ELSE 0 END) + ts_rank(e.document, \(fuzzy)::tsquery)")
        }
        rank.append(" + similarity(e.names_folded, \(t.folded)))::float8")
        return rank
    }

    /// Conditions every listed or counted entry meets: text, the filters without a facet, the
    /// student range.
    private static func baseConditions(_ query: DirectoryQuery, text: TextForms?, plan: FilterPlan) -> [PGQuery] {
        var conditions: [PGQuery] = []
        if let text { conditions.append(textMatch(text)) }
        for tags in query.plainTagFilters { conditions.append(plan.condition(tags)) }
        if let low = query.minStudents { conditions.append("e.student_count >= \(low)") }
        if let high = query.maxStudents { conditions.append("e.student_count <= \(high)") }
        return conditions
    }

    private static func facetConditions(_ query: DirectoryQuery, plan: FilterPlan) -> [(DirectoryQuery.Facet, PGQuery)] {
        DirectoryQuery.Facet.allCases.compactMap { facet in
            query.tags(for: facet).map { (facet, plan.condition($0)) }
        }
    }

    /// The page's items. With `among` (the entries the index found — in relevance order only those
    /// that can be on the page — and whether each matches the strict form of q), PostgreSQL reads
    /// only those entries, by primary key, and neither looks for text matches nor tests them again:
    /// the index has applied every change committed before the search began. The filters are
    /// tested again (a comparison or a bit test per entry), and the rank computed exactly.
    static func itemsStatement(
        _ query: DirectoryQuery, text: TextForms?, plan: FilterPlan, after: (key: DirectoryCursor.Key, id: UUID)?,
        among found: (ids: [UUID], strict: [Bool])? = nil
    ) -> PGQuery {
        var conditions = (found == nil ? baseConditions(query, text: text, plan: plan) : baseConditions(query, text: nil, plan: plan))
            + facetConditions(query, plan: plan).map(\.1)
        if conditions.isEmpty { conditions = ["true"] }
        let rank: PGQuery = text.map { Self.rank($0, strictMatch: found == nil ? nil : "k.strict") } ?? "NULL::float8"
        // The ids in key order: the primary-key probes then walk the index forward.
        let sorted = found.map { found in
            zip(found.ids, found.strict).sorted { a, b in
                withUnsafeBytes(of: a.0.uuid) { x in withUnsafeBytes(of: b.0.uuid) { y in x.lexicographicallyPrecedes(y) } }
            }
        }
        let from: PGQuery = sorted.map { "unnest(\($0.map(\.0))::uuid[], \($0.map(\.1))::bool[]) AS k (id, strict) JOIN directory_entries e ON e.id = k.id" }
            ?? "directory_entries e"
        var sql: PGQuery = ""
        sql.append("""
            SELECT \(unsafeRaw: DirectoryItem.columns("p")), \(snippet(text)),
                   p.rank, p.sort_name, to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM (
                SELECT s.* FROM (
                    SELECT e.*, \(rank) AS rank FROM \(from)
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

    /// A page in name order without q, when every filter has a compact form: the ids come from the
    /// covering name index `directory_entries_name_facets` (an index-only scan that tests the
    /// filters on the index entries, however many it must pass over before the page is full), and
    /// only the page's rows are read. Reading a row per entry passed over instead cost a second for
    /// `country=FR` with two activities at a million entries, where PostgreSQL's estimate of the
    /// bit tests let it expect the page within a few hundred entries.
    static func namePageStatement(_ query: DirectoryQuery, plan: FilterPlan, after: (key: DirectoryCursor.Key, id: UUID)?) -> PGQuery {
        var conditions = baseConditions(query, text: nil, plan: plan) + facetConditions(query, plan: plan).map(\.1)
        if case .name(let value)? = after?.key { conditions.append("(e.sort_name, e.id) > (\(value), \(after!.id))") }
        if conditions.isEmpty { conditions = ["true"] }
        return """
            SELECT \(unsafeRaw: DirectoryItem.columns("p")), NULL::text,
                   p.rank, p.sort_name, to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM (
                SELECT x.*, NULL::float8 AS rank FROM (
                    SELECT e.id FROM directory_entries e WHERE \(PGQuery.joined(conditions, separator: " AND "))
                    ORDER BY e.sort_name, e.id LIMIT \(query.limit + 1)
                ) k JOIN directory_entries x ON x.id = k.id
            ) p ORDER BY p.sort_name, p.id
            """
    }

    /// The snippet, computed for the page's rows only: the best passages of names, city, description
    /// and goals, HTML-escaped before the marks go in.
    private static func snippet(_ text: TextForms?) -> PGQuery {
        guard let fuzzy = text?.fuzzy else { return "NULL::text" }
        return """
            (SELECT ts_headline('accord_search', accord_html_escape(concat_ws(' — ', n.names_text, p.city, p.description, p.goals)),
                                \(fuzzy)::tsquery, \(headlineOptions))
             FROM (SELECT string_agg(x ->> 'value', ' · ') AS names_text FROM jsonb_array_elements(p.names) x) n)
            """
    }

    private static let headlineOptions = "StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=2, FragmentDelimiter=\" … \""

    /// The facets and the total, as rows (kind, value, type, counts):
    /// - `t`: a tag's count over the whole directory (directory_tag_counts), for a facet whose other
    ///   conditions are all empty: the directory with no query, or with only that facet's own filter;
    /// - `g`: per country and type, counted over the entries that fail at most one faceted filter:
    ///   [country, region, type, total, 12 broad-field bits, 8 offered-activity bits], each counting
    ///   an entry that meets every filter except, perhaps, its own facet's;
    /// - `l`: per teaching language, the same way.
    /// One pass over compact columns (country, type, two bit masks, the language codes); regions are
    /// summed from the countries in Swift.
    static func facetsStatement(_ query: DirectoryQuery, text: TextForms?, plan: FilterPlan) -> PGQuery {
        typealias Facet = DirectoryQuery.Facet
        let faceted = facetConditions(query, plan: plan)
        let base = baseConditions(query, text: text, plan: plan)
        let global: Set<Facet>
        switch (base.isEmpty, faceted.count) {
        case (true, 0): global = Set(Facet.allCases)
        case (true, 1): global = [faceted[0].0]
        default: global = []
        }
        var parts: [PGQuery] = []
        if !global.isEmpty {
            let prefixes = global.map(\.prefix) + (global.count == Facet.allCases.count ? ["#"] : [])
            parts.append("""
                SELECT 't', tag, NULL::text, ARRAY[entries::int8] FROM directory_tag_counts
                WHERE (left(tag, 2) = ANY (\(prefixes)::text[]) OR tag = ANY (\(prefixes)::text[]))
                  AND (left(tag, 2) NOT IN ('f:', 'l:') OR length(tag) = 4) AND entries > 0
                """)
        }
        if global.count < Facet.allCases.count {
            // The entries to count: the base, and either every faceted filter (when a facet is served
            // by the global counts, no other facet needs the entries that fail one) or all but one.
            var conditions = base
            if !global.isEmpty {
                conditions += faceted.map(\.1)
            } else if faceted.count > 1 {
                let alternatives: [PGQuery] = faceted.indices.map { left in
                    Self.parenthesized(PGQuery.joined(faceted.enumerated().filter { $0.offset != left }.map(\.element.1), separator: " AND "))
                }
                conditions.append(Self.parenthesized(PGQuery.joined(alternatives, separator: " OR ")))
            }
            if conditions.isEmpty { conditions = ["true"] }
            // With one faceted filter and no global counts, the entries that fail it still count for
            // its own facet: m is the base, and a flag tells the others apart.
            let flagged = global.isEmpty && !faceted.isEmpty
            var columns: PGQuery = "e.country, e.type, e.fields_mask, e.offers_mask, e.languages"
            if flagged {
                for (index, condition) in faceted.enumerated() { columns.append(", \(condition.1) AS f\(unsafeRaw: String(index))") }
            }
            /// The flags of every faceted filter but `facet`'s, joined with AND; nil when none.
            func flags(except facet: Facet?) -> String? {
                guard flagged else { return nil }
                let names = faceted.enumerated().filter { $0.element.0 != facet }.map { "f\($0.offset)" }
                return names.isEmpty ? nil : names.joined(separator: " AND ")
            }
            func filter(except facet: Facet?) -> String { flags(except: facet).map { " FILTER (WHERE \($0))" } ?? "" }
            func count(_ facet: Facet?) -> String {
                if let facet, global.contains(facet) { return "0::int8" }
                return "count(*)\(filter(except: facet))"
            }
            let fields = (0...11).map { "coalesce(sum((fields_mask >> \($0)) & 1)\(filter(except: .field)), 0)::int8" }
            let offers = (0..<8).map { "coalesce(sum((offers_mask >> \($0)) & 1)\(filter(except: .offers)), 0)::int8" }
            let groups = [count(.country), count(.region), count(.type), count(nil)] + fields + offers
            parts.append("""
                SELECT 'g', country::text, type, ARRAY[\(unsafeRaw: groups.joined(separator: ", "))] FROM m GROUP BY country, type
                """)
            if !global.contains(.language) {
                let condition = flags(except: .language).map { " WHERE \($0)" } ?? ""
                parts.append("""
                    SELECT 'l', language, NULL::text, ARRAY[count(*)] FROM m, unnest(m.languages) language\(unsafeRaw: condition) GROUP BY language
                    """)
            }
            var sql: PGQuery = "WITH m AS MATERIALIZED (SELECT \(columns) FROM directory_entries e WHERE \(PGQuery.joined(conditions, separator: " AND "))) "
            sql.append(PGQuery.joined(parts, separator: " UNION ALL "))
            return sql
        }
        return PGQuery.joined(parts, separator: " UNION ALL ")
    }

    private static func parenthesized(_ query: PGQuery) -> PGQuery { "(\(query))" }
}
