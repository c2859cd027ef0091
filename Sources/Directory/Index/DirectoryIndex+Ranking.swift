import Foundation

extension DirectoryIndex.Store {
    /// The entries among `slots` (ascending) that can be on a page of `keep` in relevance order
    /// after the cursor `after`: the `keep` best by (rank descending, id) whose rank is computed
    /// here, and those whose rank is only bounded (a name outside ASCII) that could be among them.
    ///
    /// Top-k with pruning: every match's rank is bounded from the ranks of its text (`tsRanks`) and
    /// its name's trigram count, and the similarity of names is computed only for matches, best
    /// bound first, until no remaining bound can reach the page.
    func topRanked(
        _ slots: [Int32], relevance: DirectoryIndex.Relevance, strict: DirectoryIndex.Bitset, exact: Set<Int32>, keep: Int,
        after: (rank: Double, id: UUID)?
    ) -> [Int32] {
        guard !slots.isEmpty, keep > 0 else { return [] }
        let tsRank = relevance.hasText ? tsRanks(slots, relevance: relevance) : []
        let queryCount = relevance.queryTrigrams.count
        // Per match, the rank without the names' similarity (a lower bound) and with the most that
        // similarity can add (an upper bound).
        var lows = [Double](repeating: 0, count: slots.count)
        var highs = [Double](repeating: 0, count: slots.count)
        for (c, slot) in slots.enumerated() {
            var base = exact.contains(slot) ? 100 : 0
            if relevance.hasText, strict.contains(Int(slot)) { base += 1 }
            var low = Double(base)
            if relevance.hasText { low = low + Double(tsRank[c]) }
            lows[c] = low
            let names = Int(nameTrigramCount[Int(slot)])
            if names == Int(Self.unknownTrigramCount) {
                highs[c] = low + 1
            } else if names == 0 || queryCount == 0 {
                highs[c] = low
            } else {
                highs[c] = low + Double(Float(min(names, queryCount)) / Float(max(names, queryCount)))
            }
        }
        /// Whether a rank and id come after the cursor (PostgreSQL's `rank < r OR (rank = r AND id > i)`).
        func isAfterCursor(_ rank: Double, _ slot: Int32) -> Bool {
            guard let after else { return true }
            return rank < after.rank || (rank == after.rank && Self.precedes(after.id, ids[Int(slot)]))
        }
        // Matches that may come after the cursor, by upper bound: the best page comes from the
        // highest bounds down.
        var order = slots.indices.filter { after == nil || lows[$0] <= after!.rank }
        guard !order.isEmpty else { return [] }
        var best = RankedHeap(capacity: keep, ids: ids)
        var bounded: [Int] = []
        var nameTrigrams: [UInt32] = []
        // Whole buckets of upper bounds, highest first, until the page is full and no bound left
        // can reach its last rank.
        for bucket in Self.buckets(of: &order, by: highs) {
            if best.isFull, bucket.maxHigh < best.worst.rank { break }
            for c in bucket.members {
                let slot = slots[c]
                let names = nameTrigramCount[Int(slot)]
                if names == Self.unknownTrigramCount {
                    bounded.append(c)
                    continue
                }
                if best.isFull, highs[c] < best.worst.rank { continue }
                let similarity = similarityOfNames(slot, names: Int(names), relevance: relevance, scratch: &nameTrigrams)
                let rank = lows[c] + Double(similarity)
                guard isAfterCursor(rank, slot) else { continue }
                best.offer(rank: rank, slot: slot)
            }
        }
        var kept = best.slots
        // A bounded rank may reach the page (or, the page not full, anything may).
        let bar = best.isFull ? best.worst.rank : -Double.infinity
        for c in bounded where highs[c] >= bar { kept.append(slots[c]) }
        return kept.sorted()
    }

    /// pg_trgm's similarity of slot's folded names to q, from the names' distinct trigram count
    /// (kept per entry) and how many of q's trigrams they share: `cnt_sml`, as a float4.
    func similarityOfNames(_ slot: Int32, names: Int, relevance: DirectoryIndex.Relevance, scratch: inout [UInt32]) -> Float {
        let queryCount = relevance.queryTrigrams.count
        guard names > 0, queryCount > 0 else { return 0 }
        let text = self.names[Int(nameStart[Int(slot)])..<Int(nameStart[Int(slot) + 1])]
        var shared = 0
        if queryCount <= 64 {
            // Which of q's trigrams (sorted, each once) the names have: a bit each.
            var seen: UInt64 = 0
            relevance.queryTrigrams.withUnsafeBufferPointer { query in
                DirectoryIndex.Relevance.forEachTrigram(text) { trigram in
                    var low = 0
                    var high = query.count
                    while low < high {
                        let middle = (low + high) / 2
                        if query[middle] < trigram { low = middle + 1 } else { high = middle }
                    }
                    if low < query.count, query[low] == trigram { seen |= 1 << UInt64(low) }
                }
            }
            shared = seen.nonzeroBitCount
        } else {
            _ = DirectoryIndex.Relevance.trigrams(text, into: &scratch)
            return DirectoryIndex.Relevance.similarity(scratch, relevance.queryTrigrams)
        }
        return Float(shared) / Float(names + queryCount - shared)
    }

    /// Whether id `a` comes before `b` in PostgreSQL's uuid order (its bytes).
    static func precedes(_ a: UUID, _ b: UUID) -> Bool {
        withUnsafeBytes(of: a.uuid) { x in withUnsafeBytes(of: b.uuid) { y in x.lexicographicallyPrecedes(y) } }
    }

    /// A group of candidates whose upper bounds fall in one range, and the highest among them.
    struct Bucket {
        var members: ArraySlice<Int>
        var maxHigh: Double
    }

    /// `order` regrouped into buckets of upper bounds, highest first: a counting sort over 1,024
    /// ranges between the lowest and highest bound, so that the pass stops after the few it needs.
    static func buckets(of order: inout [Int], by highs: [Double]) -> [Bucket] {
        var lowest = Double.infinity
        var highest = -Double.infinity
        for c in order {
            lowest = min(lowest, highs[c])
            highest = max(highest, highs[c])
        }
        let count = order.count < 256 ? 1 : 1024
        let width = (highest - lowest) / Double(count)
        func bucket(_ high: Double) -> Int {
            guard width > 0 else { return 0 }
            return min(count - 1, max(0, Int((highest - high) / width)))
        }
        var sizes = [Int](repeating: 0, count: count)
        var maxHighs = [Double](repeating: -Double.infinity, count: count)
        for c in order {
            let b = bucket(highs[c])
            sizes[b] += 1
            maxHighs[b] = max(maxHighs[b], highs[c])
        }
        var starts = [Int](repeating: 0, count: count + 1)
        for b in 0..<count { starts[b + 1] = starts[b] + sizes[b] }
        var sorted = [Int](repeating: 0, count: order.count)
        var next = starts
        for c in order {
            let b = bucket(highs[c])
            sorted[next[b]] = c
            next[b] += 1
        }
        order = sorted
        return (0..<count).compactMap { b in
            starts[b] < starts[b + 1] ? Bucket(members: order[starts[b]..<starts[b + 1]], maxHigh: maxHighs[b]) : nil
        }
    }

    /// The `capacity` best (rank descending, id ascending) offered, the worst on top.
    struct RankedHeap {
        let capacity: Int
        let ids: [UUID]
        var entries: [(rank: Double, slot: Int32)] = []

        init(capacity: Int, ids: [UUID]) {
            self.capacity = capacity
            self.ids = ids
            entries.reserveCapacity(capacity)
        }

        var isFull: Bool { entries.count >= capacity }
        var worst: (rank: Double, slot: Int32) { entries[0] }
        var slots: [Int32] { entries.map(\.slot) }

        /// Whether `a` comes after `b` on the page.
        func isWorse(_ a: (rank: Double, slot: Int32), than b: (rank: Double, slot: Int32)) -> Bool {
            a.rank < b.rank || (a.rank == b.rank && DirectoryIndex.Store.precedes(ids[Int(b.slot)], ids[Int(a.slot)]))
        }

        mutating func offer(rank: Double, slot: Int32) {
            let entry = (rank: rank, slot: slot)
            if entries.count < capacity {
                entries.append(entry)
                var child = entries.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    guard isWorse(entries[child], than: entries[parent]) else { break }
                    entries.swapAt(child, parent)
                    child = parent
                }
                return
            }
            guard isWorse(entries[0], than: entry) else { return }
            entries[0] = entry
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var worst = parent
                if left < entries.count, isWorse(entries[left], than: entries[worst]) { worst = left }
                if right < entries.count, isWorse(entries[right], than: entries[worst]) { worst = right }
                guard worst != parent else { break }
                entries.swapAt(parent, worst)
                parent = worst
            }
        }
    }

    /// Per candidate (slots in ascending order), `ts_rank` of its document for the fuzzy form, as
    /// PostgreSQL computes it (`calc_rank_or`, `calc_rank_and`), over the positions the index keeps.
    func tsRanks(_ slots: [Int32], relevance: DirectoryIndex.Relevance) -> [Float] {
        let count = slots.count
        var tsRank = [Float](repeating: 0, count: count)
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
        return tsRank
    }

    /// Per candidate, the bounds of its rank: exact for names in ASCII, the similarity unknown
    /// (0 to 1) otherwise. For tests and tools; searches use `topRanked`.
    func rankBounds(
        _ slots: [Int32], relevance: DirectoryIndex.Relevance, strict: DirectoryIndex.Bitset, exact: Set<Int32>
    ) -> [(low: Double, high: Double)] {
        let tsRank = relevance.hasText ? tsRanks(slots, relevance: relevance) : []
        var scratch: [UInt32] = []
        return slots.enumerated().map { c, slot in
            var base = exact.contains(slot) ? 100 : 0
            if relevance.hasText, strict.contains(Int(slot)) { base += 1 }
            var rank = Double(base)
            if relevance.hasText { rank = rank + Double(tsRank[c]) }
            let names = nameTrigramCount[Int(slot)]
            guard names != Self.unknownTrigramCount else { return (rank, rank + 1) }
            rank = rank + Double(similarityOfNames(slot, names: Int(names), relevance: relevance, scratch: &scratch))
            return (rank, rank)
        }
    }
}

extension DirectoryIndex {
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
