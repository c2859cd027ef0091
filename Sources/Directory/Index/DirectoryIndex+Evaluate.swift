import AccordCore
import Foundation

extension DirectoryIndex.Store {
    /// How a page's candidates are chosen.
    enum Ordering {
        /// By a place read at the last full load (name or creation order), after the place
        /// `after` (-1: the first page).
        case byPlace(KeyPath<DirectoryIndex.Store, [Int32]>, after: Int32)
        /// By rank, after the cursor's rank and id.
        case byRank(DirectoryIndex.Relevance, after: (rank: Double, id: UUID)?)
        /// Not here: PostgreSQL orders every match.
        case unordered
    }

    /// `strict` is the strict form of q when it differs from `expression` (the fuzzy form).
    /// `matchAll`: a search without q, which every listed entry matches.
    func evaluate(
        _ query: DirectoryIndex.Query, expression: DirectoryIndex.TextExpression?, strict: DirectoryIndex.TextExpression?, folded: String,
        domain: String?, matchAll: Bool = false, countryRegions: [String: [String]], maxIDs: Int, maxRankWork: Int = Self.maxRankWork
    ) -> DirectoryIndex.Result {
        let slots = ids.count
        // The text: the document's words, or the exact acronym or SCHAC code.
        let documents = expression.map { $0.evaluate(in: lexicon, slots: slots) } ?? DirectoryIndex.Bitset(count: slots)
        let strictDocuments = strict.map { $0.evaluate(in: lexicon, slots: slots) } ?? documents
        var matches = matchAll ? DirectoryIndex.Bitset(words: Array(aliveBits.prefix((slots + 63) / 64))) : documents
        var exact = Set(acronyms.slots(folded))
        if !matchAll {
            if let domain { exact.formUnion(schacs.slots(domain)) }
            for slot in exact { matches.insert(Int(slot)) }
            matches.formIntersection(aliveBits)
        }

        let filters = Filters(query, store: self)
        let ordering = self.ordering(query.order, expression: expression, folded: folded)
        let counted =
            matches.count > Self.wordCountingThreshold
            ? countByWords(matches, filters: filters, withFacets: query.withFacets)
            : countBySlots(matches, filters: filters, withFacets: query.withFacets)
        let facets = query.withFacets ? facetCounts(counted.counts, regions: counted.regionCounts, countryRegions: countryRegions) : nil

        let keep = query.limit + 1
        switch ordering {
        case .byPlace(let places, let after):
            let kept = pageCandidates(counted.found, places: self[keyPath: places], keep: keep, after: after)
            return DirectoryIndex.Result(
                ids: kept.map { ids[Int($0)] }, strict: kept.map { _ in false }, total: counted.found.count, facets: facets, ranked: true)
        case .byRank(let relevance, let after):
            guard
                let kept = topRanked(
                    counted.found, relevance: relevance, strict: strictDocuments, exact: exact, keep: keep, after: after, budget: maxRankWork)
            else {
                return DirectoryIndex.Result(ids: nil, strict: [], total: counted.found.count, facets: facets, tooBroad: true)
            }
            return DirectoryIndex.Result(
                ids: kept.map { ids[Int($0)] }, strict: kept.map { strictDocuments.contains(Int($0)) }, total: counted.found.count,
                facets: facets, ranked: true)
        case .unordered:
            let complete = counted.found.count <= maxIDs
            return DirectoryIndex.Result(
                ids: complete ? counted.found.map { ids[Int($0)] } : nil,
                strict: complete ? counted.found.map { strictDocuments.contains(Int($0)) } : [], total: counted.found.count, facets: facets)
        }
    }

    /// The most work ranking a search may take, in steps of PostgreSQL's and-rank (a posting paired
    /// with the last lexeme of each earlier operand, a pair of positions): 40 million take about half
    /// a second here. A search whose q would take more (a few one-letter prefixes, most words of every
    /// profile) stops there and is refused.
    static let maxRankWork = 40_000_000

    /// How the candidates of the page are chosen for `order`: here when the index can, else by
    /// PostgreSQL over every match.
    func ordering(_ order: DirectoryIndex.Query.Order, expression: DirectoryIndex.TextExpression?, folded: String) -> Ordering {
        switch order {
        case .relevance(let after):
            return DirectoryIndex.Relevance(expression: expression, folded: folded).map { .byRank($0, after: after) } ?? .unordered
        case .name(let cursor):
            guard unplaced <= Self.maxUnplaced else { return .unordered }
            guard let (value, id) = cursor else { return .byPlace(\DirectoryIndex.Store.namePlace, after: -1) }
            // The cursor's entry must be placed and unchanged since the load; else PostgreSQL places it.
            guard let slot = slotOf(id).map(Int.init), namePlace[slot] >= 0, sortNameHash[slot] == Self.sortNameHash(value) else {
                return .unordered
            }
            return .byPlace(\DirectoryIndex.Store.namePlace, after: namePlace[slot])
        case .newest(let cursor):
            guard unplaced <= Self.maxUnplaced else { return .unordered }
            guard let id = cursor else { return .byPlace(\DirectoryIndex.Store.createdPlace, after: -1) }
            guard let slot = slotOf(id).map(Int.init), createdPlace[slot] >= 0 else { return .unordered }
            return .byPlace(\DirectoryIndex.Store.createdPlace, after: createdPlace[slot])
        }
    }

    /// The matches (`slots`, ascending) that can be on a page of `keep` in the order of `places`
    /// after the entry at place `after` (-1: the first page): those with the `keep` first places
    /// after it, and every one without a place (changed since the load).
    func pageCandidates(_ slots: [Int32], places: [Int32], keep: Int, after: Int32) -> [Int32] {
        var heap = DirectoryIndex.BoundedHeap(capacity: keep, order: DirectoryIndex.Larger())
        var unplacedSlots: [Int32] = []
        for slot in slots {
            let place = places[Int(slot)]
            if place < 0 {
                unplacedSlots.append(slot)
            } else if place > after {
                heap.offer(-Double(place))  // the keep smallest places
            }
        }
        let bar = heap.elements.isEmpty ? 0 : Int32(-heap.worst)
        let placed =
            !heap.isFull
            ? slots.filter { places[Int($0)] > after }
            : slots.filter { places[Int($0)] > after && places[Int($0)] <= bar }
        return placed + unplacedSlots
    }
}
