import Foundation

extension DirectoryIndex.Store {
    /// Per candidate (slots in ascending order), the bounds of its rank.
    func rankBounds(
        _ slots: [Int32], relevance: DirectoryIndex.Relevance, strict: DirectoryIndex.Bitset, exact: Set<Int32>
    ) -> [(low: Double, high: Double)] {
        let count = slots.count
        var tsRank = [Float](repeating: 0, count: count)
        if relevance.hasText {
            let items = relevance.items
            // Per candidate: the running value, and for the and-rank the positions of each operand's
            // last lexeme found so far (as tsrank.c keeps them).
            var last = relevance.and ? [UInt32?](repeating: nil, count: count * items.count) : []
            if relevance.and { for c in 0..<count { tsRank[c] = -1 } }
            for (i, item) in items.enumerated() {
                for word in lexicon.words(matching: String(decoding: item.word, as: UTF8.self), prefix: item.prefix) {
                    lexicon.forEachPosting(of: word, among: slots) { c, encoded in
                        lexicon.withPositions(encoded) { positions in
                            if relevance.and {
                                for k in 0..<i {
                                    guard let earlier = last[c * items.count + k] else { continue }
                                    lexicon.withPositions(earlier) { ct in
                                        DirectoryIndex.Relevance.andStep(&tsRank[c], positions, ct)
                                    }
                                }
                                last[c * items.count + i] = encoded
                            } else {
                                tsRank[c] = Float(Double(tsRank[c]) + Double(DirectoryIndex.Relevance.orTerm(positions)) / 1.64493406685)
                            }
                        }
                    }
                }
            }
            for c in 0..<count {
                if relevance.and {
                    if tsRank[c] < 0 { tsRank[c] = 1e-20 }
                } else if !items.isEmpty {
                    tsRank[c] = tsRank[c] / Float(items.count)
                }
            }
        }
        var bounds: [(low: Double, high: Double)] = []
        bounds.reserveCapacity(count)
        var nameTrigrams: [UInt32] = []
        let tolerance = DirectoryIndex.Relevance.tolerance
        for (c, slot) in slots.enumerated() {
            var base = exact.contains(slot) ? 100 : 0
            if relevance.hasText, strict.contains(Int(slot)) { base += 1 }
            var rank = Double(base)
            if relevance.hasText { rank = rank + Double(tsRank[c]) }
            let name = names[Int(nameStart[Int(slot)])..<Int(nameStart[Int(slot) + 1])]
            if DirectoryIndex.Relevance.trigrams(name, into: &nameTrigrams) {
                rank = rank + Double(DirectoryIndex.Relevance.similarity(nameTrigrams, relevance.queryTrigrams))
                bounds.append((rank - tolerance, rank + tolerance))
            } else {
                bounds.append((rank - tolerance, rank + 1 + tolerance))
            }
        }
        return bounds
    }

    /// The candidates for a page of `keep` entries in relevance order after `after` (a cursor's
    /// rank and id): every entry that can be among them, given only the bounds of the ranks.
    static func candidates(_ bounds: [(low: Double, high: Double)], keep: Int, after: Double?) -> [Int] {
        // Those that may come after the cursor; the ones that surely do set the bar.
        var possible: [Int] = []
        var sureLows: [Double] = []
        for (c, bound) in bounds.enumerated() {
            if let after {
                guard bound.low <= after else { continue }
                if bound.high < after { sureLows.append(bound.low) }
            } else {
                sureLows.append(bound.low)
            }
            possible.append(c)
        }
        guard sureLows.count > keep else { return possible }
        // The keep-th highest low bound: an entry whose rank cannot reach it has `keep` entries
        // before it.
        var heap = MinHeap(capacity: keep)
        for low in sureLows { heap.offer(low) }
        let bar = heap.minimum
        return possible.filter { c in
            bounds[c].high >= bar || (after.map { bounds[c].high >= $0 } ?? false)
        }
    }

    /// The matches (`slots`) that can be on a page of `keep` in name order after the entry at
    /// place `after` (-1: the first page): those with the `keep` first places after it, and every
    /// one without a place.
    func namePageCandidates(_ slots: [Int32], keep: Int, after: Int32) -> [Int32] {
        var heap = MinHeap(capacity: keep)
        var unplacedSlots: [Int32] = []
        for slot in slots {
            let place = namePlace[Int(slot)]
            if place < 0 {
                unplacedSlots.append(slot)
            } else if place > after {
                heap.offer(-Double(place))  // the keep smallest places
            }
        }
        let bar = heap.values.isEmpty ? 0 : Int32(-heap.minimum)
        let placed =
            heap.values.count < keep
            ? slots.filter { namePlace[Int($0)] > after }
            : slots.filter { namePlace[Int($0)] > after && namePlace[Int($0)] <= bar }
        return placed + unplacedSlots
    }

    /// The `capacity` largest values offered, smallest on top.
    struct MinHeap {
        let capacity: Int
        var values: [Double] = []

        init(capacity: Int) {
            self.capacity = capacity
            values.reserveCapacity(capacity)
        }

        var minimum: Double { values[0] }

        mutating func offer(_ value: Double) {
            if values.count < capacity {
                values.append(value)
                var child = values.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    guard values[child] < values[parent] else { break }
                    values.swapAt(child, parent)
                    child = parent
                }
                return
            }
            guard value > values[0] else { return }
            values[0] = value
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < values.count, values[left] < values[smallest] { smallest = left }
                if right < values.count, values[right] < values[smallest] { smallest = right }
                guard smallest != parent else { break }
                values.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }
}
