import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryService {
    /// The columns of the rows of an items statement (`itemsStatement`, `namePageStatement`): the
    /// item's (`DirectoryItem.columns`), then these.
    enum ItemsRow {
        static let snippet = DirectoryItem.columnCount
        static let rank = DirectoryItem.columnCount + 1
        static let sortName = DirectoryItem.columnCount + 2
        static let created = DirectoryItem.columnCount + 3
    }

    /// The page in the rows of an items statement (one more row than the limit: a next page).
    static func page(_ rows: PGRows, query: DirectoryQuery) throws -> DirectoryPage {
        var items: [DirectoryItem] = []
        var lastKey: DirectoryCursor.Key?
        var lastID: UUID?
        for row in rows.prefix(query.limit) {
            var item = try DirectoryItem(row: row)
            item.snippet = try row.column(ItemsRow.snippet, as: String?.self)
            items.append(item)
            lastID = item.id
            switch query.sort {
            case .relevance: lastKey = try row.column(ItemsRow.rank, as: Double?.self).map { .rank($0) }
            case .name: lastKey = try row.column(ItemsRow.sortName, as: String?.self).map { .name($0) }
            case .newest: lastKey = .created(try row.column(ItemsRow.created, as: String.self))
            }
        }
        var next: String?
        if rows.count > query.limit, let lastKey, let lastID {
            next = DirectoryCursor(key: lastKey, id: lastID, query: query).encoded
        }
        return DirectoryPage(items: items, nextCursor: next)
    }

    /// The page's items, rows as `ItemsRow`. With `among` (the entries the index found, and whether
    /// each matches the strict form of q), PostgreSQL reads only those entries, by primary key, tests
    /// the filters again but not the text, and computes the exact rank.
    static func itemsStatement(
        _ query: DirectoryQuery, text: TextForms?, plan: FilterPlan, after: (key: DirectoryCursor.Key, id: UUID)?,
        among found: (ids: [UUID], strict: [Bool])? = nil
    ) -> PGQuery {
        var conditions =
            (found == nil ? baseConditions(query, text: text, plan: plan) : baseConditions(query, text: nil, plan: plan))
            + facetConditions(query, plan: plan).map(\.1)
        if conditions.isEmpty { conditions = ["true"] }
        let rank: PGQuery = text.map { Self.rank($0, strictMatch: found == nil ? nil : "k.strict") } ?? "NULL::float8"
        // The ids in key order: the primary-key probes then walk the index forward.
        let sorted = found.map { found in
            zip(found.ids, found.strict).sorted { a, b in
                withUnsafeBytes(of: a.0.uuid) { x in withUnsafeBytes(of: b.0.uuid) { y in x.lexicographicallyPrecedes(y) } }
            }
        }
        let from: PGQuery =
            sorted.map { "unnest(\($0.map(\.0))::uuid[], \($0.map(\.1))::bool[]) AS k (id, strict) JOIN directory_entries e ON e.id = k.id" }
            ?? "directory_entries e"
        var sql: PGQuery = ""
        sql.append(
            """
            SELECT \(unsafeRaw: DirectoryItem.columns("p")), \(snippet(text)),
                   p.rank, p.sort_name, \(Timestamp.precise("p.created_at"))
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

    /// A page in name order without q, when every filter has a compact form: the ids come from an
    /// index-only scan of `directory_entries_name_facets`, and only the page's rows are read. Rows as
    /// `ItemsRow`.
    static func namePageStatement(_ query: DirectoryQuery, plan: FilterPlan, after: (key: DirectoryCursor.Key, id: UUID)?) -> PGQuery {
        var conditions = baseConditions(query, text: nil, plan: plan) + facetConditions(query, plan: plan).map(\.1)
        if case .name(let value)? = after?.key { conditions.append("(e.sort_name, e.id) > (\(value), \(after!.id))") }
        if conditions.isEmpty { conditions = ["true"] }
        return """
            SELECT \(unsafeRaw: DirectoryItem.columns("p")), NULL::text,
                   p.rank, p.sort_name, \(Timestamp.precise("p.created_at"))
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

    private static let headlineOptions =
        "StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=2, FragmentDelimiter=\" … \""
}
