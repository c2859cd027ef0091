import AccordCore
import Foundation

extension DirectoryIndex.Query {
    /// The part of `query` the index evaluates; nil when its cursor is not one of this query (the
    /// search then says what is wrong with it).
    init?(_ query: DirectoryQuery) {
        var order: Order
        switch query.sort {
        case .relevance: order = .relevance(after: nil)
        case .name: order = .name(after: nil)
        case .newest: order = .newest(after: nil)
        }
        if let cursor = query.cursor {
            guard let (key, id) = try? DirectoryCursor.decode(cursor, for: query) else { return nil }
            switch key {
            case .rank(let rank): order = .relevance(after: (rank, id))
            case .name(let name): order = .name(after: (name, id))
            case .created: order = .newest(after: id)
            }
        }
        self.init(
            facetTags: DirectoryQuery.Facet.allCases.compactMap { facet in query.tags(for: facet).map { (facet, $0) } },
            plainTags: query.plainTagFilters, minStudents: query.minStudents.map { Int32(clamping: $0) },
            maxStudents: query.maxStudents.map { Int32(clamping: $0) }, order: order, limit: query.limit, withFacets: query.withFacets)
    }
}

extension DirectoryIndex {
    /// `evaluate(_:text:countryRegions:maxIDs:)` for a search as the API takes it.
    public func evaluate(_ query: DirectoryQuery, text: DirectoryService.TextForms, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
        Query(query).flatMap { evaluate($0, text: text, countryRegions: countryRegions, maxIDs: maxIDs) }
    }

    /// `evaluate(_:directoryVersion:countryRegions:maxIDs:)` for a search without q as the API takes it.
    public func evaluate(_ query: DirectoryQuery, directoryVersion: Int64, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
        precondition(query.text == nil, "a search with q is evaluated with its text forms")
        return Query(query).flatMap { evaluate($0, directoryVersion: directoryVersion, countryRegions: countryRegions, maxIDs: maxIDs) }
    }
}

extension DirectoryIndex.Snapshot {
    /// As `DirectoryIndex.evaluate(_:text:…)`, on this snapshot.
    public func evaluate(
        _ query: DirectoryQuery, text: DirectoryService.TextForms, countryRegions: [String: [String]], maxIDs: Int
    ) -> DirectoryIndex.Result? {
        DirectoryIndex.Query(query).flatMap { evaluate($0, text: text, countryRegions: countryRegions, maxIDs: maxIDs) }
    }

    /// As `DirectoryIndex.evaluate(_:directoryVersion:…)`, on this snapshot.
    public func evaluate(_ query: DirectoryQuery, countryRegions: [String: [String]], maxIDs: Int) -> DirectoryIndex.Result? {
        DirectoryIndex.Query(query).flatMap { evaluate($0, countryRegions: countryRegions, maxIDs: maxIDs) }
    }
}
