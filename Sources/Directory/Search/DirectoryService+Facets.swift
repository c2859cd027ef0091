import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryService {
    /// The rows of a facets statement: (kind, value, type, counts).
    /// - `t`: a tag's count over the whole directory (directory_tag_counts), for a facet whose other
    ///   conditions are all empty; `counts` is [count], and the tag `#` counts every entry;
    /// - `g`: per country and type, over the entries that fail at most one faceted filter, each
    ///   count taking an entry that meets every filter except perhaps its own facet's; `counts` at
    ///   the positions below;
    /// - `l`: per teaching language, the same way; `counts` is [count].
    enum FacetsRow {
        static let country = 0
        static let region = 1
        static let type = 2
        static let total = 3
        /// Twelve broad-field bits: 00 to 10, then 99.
        static let fields = 4
        /// One per `Activity`, in `allCases` order.
        static let offers = 16
    }

    /// The facets and the total, rows as `FacetsRow`: one pass over compact columns (country, type,
    /// two bit masks, the language codes).
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
            parts.append(
                """
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
            // In `FacetsRow` order.
            let groups = [count(.country), count(.region), count(.type), count(nil)] + fields + offers
            parts.append(
                """
                SELECT 'g', country::text, type, ARRAY[\(unsafeRaw: groups.joined(separator: ", "))] FROM m GROUP BY country, type
                """)
            if !global.contains(.language) {
                let condition = flags(except: .language).map { " WHERE \($0)" } ?? ""
                parts.append(
                    """
                    SELECT 'l', language, NULL::text, ARRAY[count(*)] FROM m, unnest(m.languages) language\(unsafeRaw: condition) GROUP BY language
                    """)
            }
            var sql: PGQuery =
                "WITH m AS MATERIALIZED (SELECT \(columns) FROM directory_entries e WHERE \(PGQuery.joined(conditions, separator: " AND "))) "
            sql.append(PGQuery.joined(parts, separator: " UNION ALL "))
            return sql
        }
        return PGQuery.joined(parts, separator: " UNION ALL ")
    }

    /// The facets and the total in the rows of a facets statement; regions are summed from their
    /// countries.
    static func decodeFacets(_ rows: PGRows, countryRegions: [String: [String]]) throws -> (facets: [String: [String: Int]], total: Int) {
        var facets: [String: [String: Int]] = [:]
        for facet in DirectoryQuery.Facet.allCases { facets[facet.rawValue] = [:] }
        func add(_ facet: DirectoryQuery.Facet, _ value: String, _ count: Int) {
            guard count > 0 else { return }
            facets[facet.rawValue, default: [:]][value, default: 0] += count
        }
        var total = 0
        for row in rows {
            let (kind, value, type, counts) = try row.decode((String, String, String?, [Int]).self)
            switch kind {
            case "t" where value == "#":
                total = counts[0]
            case "t":
                if let facet = DirectoryQuery.Facet.allCases.first(where: { value.hasPrefix($0.prefix) }) {
                    add(facet, String(value.dropFirst(2)), counts[0])
                }
            case "g":
                add(.country, value, counts[FacetsRow.country])
                for region in countryRegions[value] ?? [] { add(.region, region, counts[FacetsRow.region]) }
                if let type { add(.type, type, counts[FacetsRow.type]) }
                total += counts[FacetsRow.total]
                for bit in 0...11 { add(.field, bit == 11 ? "99" : (bit < 10 ? "0\(bit)" : "\(bit)"), counts[FacetsRow.fields + bit]) }
                for (bit, activity) in Activity.allCases.enumerated() { add(.offers, activity.rawValue, counts[FacetsRow.offers + bit]) }
            case "l":
                add(.language, value, counts[0])
            default:
                break
            }
        }
        return (facets, total)
    }

    private static func parenthesized(_ query: PGQuery) -> PGQuery { "(\(query))" }
}
