import AccordCore
import Foundation

extension DirectoryIndex.Store {
    /// Searches with more matches than this count by whole words of bits (`countByWords`), fewer
    /// entry by entry (`countBySlots`): both give the same counts.
    static let wordCountingThreshold = 16_384

    /// A search's filters as groups of tag numbers: of each group an entry must carry one tag.
    struct Filters {
        /// The faceted groups first (`facetedCount` of them, one per facet at most), then the others.
        var groups: [[Int]]
        var facetedCount: Int
        /// Per faceted group, its facet (an index into `DirectoryQuery.Facet.allCases`).
        var facetOfGroup: [UInt8]
        var minStudents: Int32?
        var maxStudents: Int32?

        init(_ query: DirectoryIndex.Query, store: DirectoryIndex.Store) {
            groups = (query.facetTags.map(\.tags) + query.plainTags).map { tags in tags.compactMap { store.tagNumber[$0].map(Int.init) } }
            facetedCount = query.facetTags.count
            facetOfGroup = query.facetTags.map { UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: $0.facet)!) }
            minStudents = query.minStudents
            maxStudents = query.maxStudents
        }

        var hasStudentRange: Bool { minStudents != nil || maxStudents != nil }

        func admitsStudents(_ students: Int32) -> Bool {
            if students < 0 { return false }
            if let minStudents, students < minStudents { return false }
            if let maxStudents, students > maxStudents { return false }
            return true
        }
    }

    /// What counting found: the entries that meet the whole search (ascending slots), and per tag
    /// its facet count (`regionCounts`: per country tag, the count for the region facet).
    struct Counted {
        var found: [Int32] = []
        var counts: [Int32]
        var regionCounts: [Int32]
    }

    /// Entry by entry: only entries that fail at most one faceted filter are visited, and each
    /// counts for the facets whose filters it meets.
    func countBySlots(_ matches: DirectoryIndex.Bitset, filters: Filters, withFacets: Bool) -> Counted {
        var counted = Counted(counts: .init(repeating: 0, count: withFacets ? tagNames.count : 0), regionCounts: [])
        counted.regionCounts = counted.counts
        let everyFacet: UInt8 = (1 << UInt8(DirectoryQuery.Facet.allCases.count)) - 1
        let countryBit: UInt8 = 1 << Self.countryFacet
        let regionBit: UInt8 = 1 << Self.regionFacet
        func visit(_ slot: Int, failing: UInt32) {
            if filters.hasStudentRange, !filters.admitsStudents(students[slot]) { return }
            let facetsCounted: UInt8
            if failing == 0 {
                counted.found.append(Int32(slot))
                facetsCounted = everyFacet
            } else if failing & (failing - 1) == 0 {
                facetsCounted = 1 << filters.facetOfGroup[failing.trailingZeroBitCount]  // fails one faceted filter
            } else {
                return
            }
            guard withFacets else { return }
            switch facetsCounted {
            case countryBit:
                let tag = countryTag[slot]
                if tag != Self.noTag { counted.counts[Int(tag)] += 1 }
            case regionBit:
                let tag = countryTag[slot]
                if tag != Self.noTag { counted.regionCounts[Int(tag)] += 1 }
            case 1 << Self.typeFacet:
                let tag = typeTag[slot]
                if tag != Self.noTag { counted.counts[Int(tag)] += 1 }
            default:
                for k in Int(facetTagStart[slot])..<Int(facetTagStart[slot + 1]) {
                    let tag = Int(facetTagIDs[k])
                    let facet = tagFacet[tag]
                    let bit: UInt8 = 1 << facet
                    if bit == countryBit {
                        if facetsCounted & countryBit != 0 { counted.counts[tag] += 1 }
                        if facetsCounted & regionBit != 0 { counted.regionCounts[tag] += 1 }
                    } else if facetsCounted & bit != 0 {
                        counted.counts[tag] += 1
                    }
                }
            }
        }
        // One pass over the entries 64 at a time: the filters are unions of tag bitsets.
        let facetedCount = filters.facetedCount
        var groupWords = [UInt64](repeating: 0, count: filters.groups.count)
        for i in matches.words.indices {
            var m = matches.words[i]
            guard m != 0 else { continue }
            for k in filters.groups.indices {
                var word: UInt64 = 0
                for tag in filters.groups[k] { word |= tagBits[tag][i] }
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
        return counted
    }

    /// By whole words of bits, for many matches: per facet, the entries that meet every filter but
    /// its own are one bitset; a facet's counts are the population counts of that bitset with
    /// each of its tags' (country, region and type, one tag per entry, are read per entry).
    func countByWords(_ matches: DirectoryIndex.Bitset, filters: Filters, withFacets: Bool) -> Counted {
        let wordCount = matches.words.count
        // The entries that meet q, the filters without a facet and the student range.
        var base = matches.words
        for k in filters.facetedCount..<filters.groups.count {
            let union = unionWords(filters.groups[k], count: wordCount)
            for i in 0..<wordCount { base[i] &= union[i] }
        }
        if filters.hasStudentRange {
            for i in 0..<wordCount where base[i] != 0 {
                var rest = base[i]
                while rest != 0 {
                    let bit = rest.trailingZeroBitCount
                    rest &= rest - 1
                    if !filters.admitsStudents(students[i << 6 | bit]) { base[i] &= ~(1 << UInt64(bit)) }
                }
            }
        }
        let faceted = (0..<filters.facetedCount).map { unionWords(filters.groups[$0], count: wordCount) }
        /// The entries that meet every filter except those of `facet` (nil: all of them).
        func meeting(allBut facet: UInt8?) -> [UInt64] {
            var words = base
            for (k, group) in faceted.enumerated() where filters.facetOfGroup[k] != facet {
                for i in 0..<wordCount { words[i] &= group[i] }
            }
            return words
        }
        let all = meeting(allBut: nil)
        var counted = Counted(counts: .init(repeating: 0, count: withFacets ? tagNames.count : 0), regionCounts: [])
        counted.regionCounts = counted.counts
        counted.found.reserveCapacity(all.reduce(0) { $0 + $1.nonzeroBitCount })
        for (i, word) in all.enumerated() where word != 0 {
            var rest = word
            while rest != 0 {
                counted.found.append(Int32(i << 6 | rest.trailingZeroBitCount))
                rest &= rest - 1
            }
        }
        guard withFacets else { return counted }
        for facet in 0..<UInt8(DirectoryQuery.Facet.allCases.count) {
            let hasFilter = filters.facetOfGroup.contains(facet)
            let words = hasFilter ? meeting(allBut: facet) : all
            switch facet {
            case Self.countryFacet, Self.regionFacet, Self.typeFacet:
                let perEntry = facet == Self.typeFacet ? typeTag : countryTag
                for (i, word) in words.enumerated() where word != 0 {
                    var rest = word
                    while rest != 0 {
                        let tag = perEntry[i << 6 | rest.trailingZeroBitCount]
                        rest &= rest - 1
                        guard tag != Self.noTag else { continue }
                        if facet == Self.regionFacet { counted.regionCounts[Int(tag)] += 1 } else { counted.counts[Int(tag)] += 1 }
                    }
                }
            default:
                for tag in 0..<tagNames.count where tagFacet[tag] == facet {
                    var count = 0
                    tagBits[tag].withUnsafeBufferPointer { bits in
                        for i in 0..<wordCount { count &+= (words[i] & bits[i]).nonzeroBitCount }
                    }
                    counted.counts[tag] = Int32(count)
                }
            }
        }
        return counted
    }

    /// The union of the tags' bitsets, over the first `count` words.
    private func unionWords(_ tags: [Int], count: Int) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        for tag in tags {
            tagBits[tag].withUnsafeBufferPointer { bits in
                for i in 0..<count { words[i] |= bits[i] }
            }
        }
        return words
    }

    /// The facets as the API shows them: per facet, value → count; regions from the countries.
    func facetCounts(_ counts: [Int32], regions regionCounts: [Int32], countryRegions: [String: [String]]) -> [String: [String: Int]] {
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
        return result
    }
}

extension DirectoryIndex.Bitset {
    /// How many slots are in the set.
    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
}
