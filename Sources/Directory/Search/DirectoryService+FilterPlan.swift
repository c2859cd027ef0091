import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryService {
    /// Which tag filters may drive an index scan: with exact tag counts at hand, a filter that more
    /// than `selective` of the entries pass is written so that no index serves it, unless nothing else
    /// is selective.
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
        /// at most one faceted filter) are more than `broadFacets` and every filter has a compact
        /// form, no filter goes through the tags' index, so that the covering index
        /// `directory_entries_facets` serves the count as an index-only scan.
        func forFacets(of query: DirectoryQuery, text: Bool) -> FilterPlan {
            guard !text else { return self }
            let faceted = DirectoryQuery.Facet.allCases.compactMap { query.tags(for: $0) }
            let plain = query.plainTagFilters
            guard allCompact(faceted + plain) else { return self }
            let share = { (tags: [String]) in fractions[tags] ?? 1 }
            let base = plain.map(share).reduce(1, *)
            // Those that fail at most one faceted filter (filters taken as independent).
            let counted =
                faceted.count < 2
                ? 1
                : faceted.indices.map { left in
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
        /// on the compact columns, else as `arrayoverlap` (which no index serves).
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
}
