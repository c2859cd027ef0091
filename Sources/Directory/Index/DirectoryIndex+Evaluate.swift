import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex.Store {
    /// `strict` is the strict form of q when it differs from `expression` (the fuzzy form).
    /// `matchAll`: a search without q, which every listed entry matches.
    func evaluate(
        _ query: DirectoryIndex.Query, expression: DirectoryIndex.TextExpression?, strict: DirectoryIndex.TextExpression?, folded: String,
        domain: String?,
        matchAll: Bool = false, countryRegions: [String: [String]], maxIDs: Int, maxRanked: Int = Self.maxRanked
    ) -> DirectoryIndex.Result {
        let slots = ids.count
        // The text: the document's words, or the exact acronym or SCHAC code.
        let documents = expression.map { $0.evaluate(in: lexicon, slots: slots) } ?? DirectoryIndex.Bitset(count: slots)
        let strictDocuments = strict.map { $0.evaluate(in: lexicon, slots: slots) } ?? documents
        var matches = matchAll ? DirectoryIndex.Bitset(words: Array(aliveBits.prefix((slots + 63) / 64))) : documents
        if !matchAll {
            for slot in acronyms[folded] ?? [] { matches.insert(Int(slot)) }
            if let domain { for slot in schacs[domain] ?? [] { matches.insert(Int(slot)) } }
            matches.formIntersection(aliveBits)
        }

        // The filters as groups of tags, one bit each: faceted ones first, then the others.
        let faceted = query.facetTags
        let groupTags: [[Int]] = (faceted.map(\.tags) + query.plainTags).map { tags in tags.compactMap { tagNumber[$0].map(Int.init) } }

        let facetOfGroup = faceted.map { UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: $0.0)!) }
        let everyFacet: UInt8 = (1 << UInt8(DirectoryQuery.Facet.allCases.count)) - 1
        let countryBit: UInt8 = 1 << UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .country)!)
        let regionBit: UInt8 = 1 << UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .region)!)

        // Relevance order: every match is ranked here, and only the entries that can be on the
        // page go to PostgreSQL (Relevance).
        var relevance: DirectoryIndex.Relevance?
        var after: Double?
        // Name order: the entries with the first places after the cursor's, and those without
        // a place (changed since the load), when there are not too many of those.
        var byName = false
        var afterPlace: Int32 = -1
        switch query.order {
        case .name(let cursor) where unplaced <= Self.maxUnplaced:
            byName = true
            if let (value, id) = cursor {
                if let slot = slotOf[id], namePlace[Int(slot)] >= 0,
                    sortNames[Int(sortNameStart[Int(slot)])..<Int(sortNameStart[Int(slot) + 1])].elementsEqual(value.utf8)
                {
                    afterPlace = namePlace[Int(slot)]
                } else {
                    byName = false  // an entry changed or gone since: PostgreSQL places the cursor
                }
            }
        case .relevance(let afterRank):
            relevance = DirectoryIndex.Relevance(expression: expression, folded: folded)
            after = afterRank
        case .name, .newest:
            break
        }
        var foundSlots: [Int32] = []

        let low = query.minStudents
        let high = query.maxStudents
        var counts = [Int32](repeating: 0, count: query.withFacets ? tagNames.count : 0)
        var regionCounts = [Int32](repeating: 0, count: query.withFacets ? tagNames.count : 0)
        var total = 0
        var found: [UUID] = []
        var foundStrict: [Bool] = []
        /// An entry that meets q and every filter without a facet, and fails the faceted
        /// filters in `failing` (one bit per group).
        func visit(_ slot: Int, failing: UInt32) {
            if low != nil || high != nil {
                let students = self.students[slot]
                if students < 0 { return }
                if let low, students < low { return }
                if let high, students > high { return }
            }
            let counted: UInt8
            if failing == 0 {
                total += 1
                if byName {
                    foundSlots.append(Int32(slot))
                } else if relevance != nil {
                    if foundSlots.count <= maxRanked { foundSlots.append(Int32(slot)) }
                } else if found.count <= maxIDs {
                    found.append(ids[slot])
                    foundStrict.append(strictDocuments.contains(slot))
                }
                counted = everyFacet
            } else if failing & (failing - 1) == 0 {
                // Fails one faceted filter: counts for that facet only.
                counted = 1 << facetOfGroup[failing.trailingZeroBitCount]
            } else {
                return
            }
            guard query.withFacets else { return }
            switch counted {
            case countryBit:
                let tag = countryTag[slot]
                if tag != Self.noTag { counts[Int(tag)] += 1 }
            case regionBit:
                let tag = countryTag[slot]
                if tag != Self.noTag { regionCounts[Int(tag)] += 1 }
            case 1 << Self.typeFacet:
                let tag = typeTag[slot]
                if tag != Self.noTag { counts[Int(tag)] += 1 }
            default:
                for k in Int(tagStart[slot])..<Int(tagStart[slot + 1]) {
                    let tag = Int(tagIDs[k])
                    let facet = tagFacet[tag]
                    guard facet != Self.noFacet else { continue }
                    let bit: UInt8 = 1 << facet
                    if bit == countryBit {
                        if counted & countryBit != 0 { counts[tag] += 1 }
                        if counted & regionBit != 0 { regionCounts[tag] += 1 }
                    } else if counted & bit != 0 {
                        counts[tag] += 1
                    }
                }
            }
        }
        // One pass over the entries 64 at a time: the filters are unions of tag bitsets, and
        // only entries that fail at most one faceted filter are visited (the others count for
        // nothing).
        let facetedCount = faceted.count
        var groupWords = [UInt64](repeating: 0, count: groupTags.count)
        for i in matches.words.indices {
            var m = matches.words[i]
            guard m != 0 else { continue }
            for k in groupTags.indices {
                var word: UInt64 = 0
                for tag in groupTags[k] { word |= tagBits[tag][i] }
                groupWords[k] = word
                if k >= facetedCount { m &= word }
            }
            var failingOne: UInt64 = 0
            var failingTwo: UInt64 = 0
            for k in 0..<facetedCount {
                let fails = ~groupWords[k]
                failingTwo |= failingOne & fails
                failingOne |= fails
            }
            m &= ~failingTwo
            while m != 0 {
                let bit = m.trailingZeroBitCount
                m &= m - 1
                var failing: UInt32 = 0
                for k in 0..<facetedCount where groupWords[k] & (1 << UInt64(bit)) == 0 { failing |= 1 << UInt32(k) }
                visit(i << 6 | bit, failing: failing)
            }
        }

        var facets: [String: [String: Int]]?
        if query.withFacets {
            var result: [String: [String: Int]] = [:]
            for facet in DirectoryQuery.Facet.allCases { result[facet.rawValue] = [:] }
            for tag in 0..<tagNames.count where counts[tag] > 0 || regionCounts[tag] > 0 {
                let value = String(tagNames[tag].dropFirst(2))
                if counts[tag] > 0 {
                    let facet = DirectoryQuery.Facet.allCases[Int(tagFacet[tag])]
                    result[facet.rawValue, default: [:]][value, default: 0] += Int(counts[tag])
                }
                if regionCounts[tag] > 0 {
                    for region in countryRegions[value] ?? [] {
                        result[DirectoryQuery.Facet.region.rawValue, default: [:]][region, default: 0] += Int(regionCounts[tag])
                    }
                }
            }
            facets = result
        }
        if byName {
            let kept = namePageCandidates(foundSlots, keep: query.limit + 1, after: afterPlace)
            return DirectoryIndex.Result(ids: kept.map { ids[Int($0)] }, strict: kept.map { _ in false }, total: total, facets: facets, ranked: true)
        }
        if let relevance, foundSlots.count <= maxRanked {
            var exact = Set(acronyms[folded] ?? [])
            if let domain { exact.formUnion(schacs[domain] ?? []) }
            let bounds = rankBounds(foundSlots, relevance: relevance, strict: strictDocuments, exact: exact)
            let kept = Self.candidates(bounds, keep: query.limit + 1, after: after)
            return DirectoryIndex.Result(
                ids: kept.map { ids[Int(foundSlots[$0])] }, strict: kept.map { strictDocuments.contains(Int(foundSlots[$0])) },
                total: total, facets: facets, ranked: true)
        }
        if relevance != nil {
            // Too many to rank here: the SQL search finds the page.
            return DirectoryIndex.Result(ids: nil, strict: [], total: total, facets: facets)
        }
        let complete = found.count <= maxIDs
        return DirectoryIndex.Result(ids: complete ? found : nil, strict: complete ? foundStrict : [], total: total, facets: facets)
    }
}
