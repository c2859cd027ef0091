import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryService {
    /// One page of `query`'s results, with the facets and the total. With q, the forms of q first (one
    /// round trip); then the page ordered over the index's matches, with its facets, or, when the
    /// index cannot answer, the items and facets statements; one read-only transaction as `caller`.
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
        if found?.tooBroad == true {
            throw Problem.invalid(
                field: "q", "matches too broadly to be ranked (most words of every profile): use longer or fewer words, or sort by name")
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
            let (facets, total) = try Self.decodeFacets(results[1], countryRegions: lists.countryRegions)
            page.facets = facets
            page.total = total
        }
        return page
    }

    /// Settings of a search transaction: custom plans, no JIT, and memory enough for exact bitmaps.
    public static let settings: [(String, String)] = [("plan_cache_mode", "force_custom_plan"), ("jit", "off"), ("work_mem", "64MB")]

    /// The statements behind a search: the page's items, then (unless facets=false) the facets and
    /// the total. Public for tooling (`accord directory sql`): benchmarks and plans use exactly these.
    public static func statements(
        for query: DirectoryQuery, text: TextForms?, statistics: TagStatistics, lists: ReferenceData.Lists
    ) throws -> [PGQuery] {
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
}
