import Foundation

extension DirectoryIndex.Store {
    /// The entries among `slots` (ascending) that can be on a page of `keep` in relevance order
    /// after the cursor `after`: the `keep` best by (rank descending, id) whose rank is computed
    /// here, and those whose rank is only bounded (a name outside ASCII) that could be among them.
    ///
    /// Top-k with pruning: every match's rank is bounded from the rank of its text (`tsRanks`) and,
    /// for the similarity of its names, from their trigram count and signature (how many of q's
    /// trigrams they can share); the similarity is computed only for the matches whose bound can
    /// still reach the page, best bound first.
    func topRanked(
        _ slots: [Int32], relevance: DirectoryIndex.Relevance, strict: DirectoryIndex.Bitset, exact: Set<Int32>, keep: Int,
        after: (rank: Double, id: UUID)?, budget: Int = .max
    ) -> [Int32]? {
        guard !slots.isEmpty, keep > 0 else { return [] }
        var tsRank: [Float] = []
        if relevance.hasText {
            guard let ranks = tsRanks(slots, relevance: relevance, budget: budget) else { return nil }
            tsRank = ranks
        }
        let queryCount = relevance.queryTrigrams.count
        // Per match, the rank without the names' similarity (a lower bound) and with the most that
        // similarity can add (an upper bound).
        var lows = [Double](repeating: 0, count: slots.count)
        var highs = [Double](repeating: 0, count: slots.count)
        // q's trigrams by their bit in a name's signature: how many of them each bit stands for.
        var querySignature: (UInt64, UInt64) = (0, 0)
        var perBit = [Int](repeating: 0, count: 128)
        for trigram in relevance.queryTrigrams {
            let bit = Self.trigramBit(trigram)
            perBit[bit] += 1
            if bit < 64 { querySignature.0 |= 1 << UInt64(bit) } else { querySignature.1 |= 1 << UInt64(bit - 64) }
        }
        let unknown = Self.unknownTrigramCount
        let hasText = relevance.hasText
        nameTrigramCount.withUnsafeBufferPointer { nameTrigramCount in
            nameSignatures.withUnsafeBufferPointer { signatures in
                strict.words.withUnsafeBufferPointer { strictWords in
                    perBit.withUnsafeBufferPointer { perBit in
                        for (c, slot) in slots.enumerated() {
                            var base = !exact.isEmpty && exact.contains(slot) ? 100 : 0
                            if hasText, strictWords[Int(slot) >> 6] & (1 << UInt64(slot & 63)) != 0 { base += 1 }
                            var low = Double(base)
                            if hasText { low = low + Double(tsRank[c]) }
                            lows[c] = low
                            let names = Int(nameTrigramCount[Int(slot)])
                            if names == Int(unknown) {
                                highs[c] = low + 1
                            } else if names == 0 || queryCount == 0 {
                                highs[c] = low
                            } else {
                                // Shared trigrams can only sit on bits both signatures have.
                                var shared = 0
                                var common = signatures[2 * Int(slot)] & querySignature.0
                                while common != 0 {
                                    shared += perBit[common.trailingZeroBitCount]
                                    common &= common - 1
                                }
                                common = signatures[2 * Int(slot) + 1] & querySignature.1
                                while common != 0 {
                                    shared += perBit[64 + common.trailingZeroBitCount]
                                    common &= common - 1
                                }
                                shared = min(shared, names, queryCount)
                                highs[c] = low + Double(Float(shared) / Float(names + queryCount - shared))
                            }
                        }
                    }
                }
            }
        }
        /// Whether a rank and id come after the cursor (PostgreSQL's `rank < r OR (rank = r AND id > i)`).
        func isAfterCursor(_ rank: Double, _ slot: Int32) -> Bool {
            guard let after else { return true }
            return rank < after.rank || (rank == after.rank && Self.precedes(after.id, ids[Int(slot)]))
        }
        // Matches that may come after the cursor, by upper bound: the best page comes from the
        // highest bounds down.
        // No page entry can rank below the keep-th best lower bound of the matches surely after the
        // cursor: only matches whose upper bound reaches it are looked at further.
        var floor = DirectoryIndex.BoundedHeap(capacity: keep, order: DirectoryIndex.Larger())
        for c in slots.indices where after == nil || highs[c] < after!.rank { floor.offer(lows[c]) }
        let bar = floor.isFull ? floor.worst : -Double.infinity
        var order = slots.indices.filter { highs[$0] >= bar && (after == nil || lows[$0] <= after!.rank) }
        guard !order.isEmpty else { return [] }
        var best = DirectoryIndex.BoundedHeap(capacity: keep, order: DirectoryIndex.ByRankThenID(ids: ids))
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
                best.offer((rank, slot))
            }
        }
        var kept = best.elements.map(\.slot)
        // A bounded rank may reach the page (or, the page not full, anything may).
        let last = best.isFull ? best.worst.rank : -Double.infinity
        for c in bounded where highs[c] >= last { kept.append(slots[c]) }
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

    /// Per candidate (slots in ascending order), `ts_rank` of its document for the fuzzy form, as
    /// PostgreSQL computes it (`calc_rank_or`, `calc_rank_and`), over the positions the index keeps.
    /// Each matching word's postings are read once, in order. With many candidates the running
    /// values are kept by slot (every posting adds to its slot's, no lookup); with few, by
    /// candidate, found by galloping.
    func tsRanks(_ slots: [Int32], relevance: DirectoryIndex.Relevance, budget: Int = .max) -> [Float]? {
        let items = relevance.items
        let and = relevance.and
        let bySlot = slots.count >= ids.count / 32
        let width = bySlot ? ids.count : slots.count
        var ranks = [Float](repeating: and ? -1 : 0, count: width)
        // For the and-rank, per entry, the positions of each operand's last lexeme found so far
        // (as tsrank.c keeps them).
        let absent: UInt32 = 0xFFFF_FFFE
        var last = and ? [UInt32](repeating: absent, count: width * items.count) : []
        let lexicon = self.lexicon
        let noPosition = DirectoryIndex.Lexicon.noPosition
        let severalPositions = DirectoryIndex.Lexicon.severalPositions
        let noPositions = DirectoryIndex.Lexicon.noPositions
        let overflowFlag = DirectoryIndex.Lexicon.overflowFlag
        // An or-term of one position of weight w is w; its share of the rank, w / (π²/6), per weight
        // (no positions: PostgreSQL's stand-in, one of weight D).
        let singleShares = DirectoryIndex.Relevance.weights.map { Double($0) / 1.64493406685 }
        // The and-rank's steps (a posting, or a pair of positions): beyond `budget`, nothing.
        var works: [Int] = []
        let flags = overflowFlag | DirectoryIndex.Lexicon.tailFlag
        let pairWeights = DirectoryIndex.Relevance.pairWeightTable
        /// Adds posting `encoded` of operand `i` to entry `e`'s running value; `runs` and `tailRuns`
        /// are the lexicon's runs of positions.
        func add(
            _ e: Int, _ encoded: UInt32, operand i: Int, ranks: UnsafeMutableBufferPointer<Float>, last: UnsafeMutableBufferPointer<UInt32>,
            runs: UnsafeBufferPointer<UInt16>, tailRuns: UnsafeBufferPointer<UInt16>, singles: UnsafeMutablePointer<UInt16>, work: inout Int
        ) {
            func positions(_ encoded: UInt32, _ single: UnsafeMutablePointer<UInt16>) -> UnsafeBufferPointer<UInt16> {
                if encoded == noPositions { return UnsafeBufferPointer(start: nil, count: 0) }
                if encoded & flags == 0 {
                    single.pointee = UInt16(truncatingIfNeeded: encoded)
                    return UnsafeBufferPointer(start: single, count: 1)
                }
                let all = encoded & overflowFlag != 0 ? runs : tailRuns
                let offset = Int(encoded & ~flags)
                return UnsafeBufferPointer(rebasing: all[(offset + 1)..<(offset + 1 + Int(all[offset]))])
            }
            if and {
                let row = e * items.count
                if i > 0 {
                    work &+= i
                    for k in 0..<i where last[row + k] != absent {
                        let earlier = last[row + k]
                        if (encoded | earlier) & flags == 0 {
                            // Two single positions, the common case: andStep's one pair, inline.
                            let a = UInt16(truncatingIfNeeded: encoded)
                            let b = UInt16(truncatingIfNeeded: earlier)
                            let distance = abs(Int32(a & 0x3FFF) - Int32(b & 0x3FFF))
                            guard distance != 0 else { continue }
                            let res = ranks[e]
                            if distance > 100, res >= 0x1p-19 { continue }
                            let curw = pairWeights[(Int(a >> 14) << 2 | Int(b >> 14)) &* 102 &+ Int(min(distance, 101))]
                            ranks[e] = res < 0 ? curw : Float(1.0 - (1.0 - Double(res)) * (1.0 - Double(curw)))
                        } else {
                            let post = positions(encoded, singles)
                            let ct = positions(earlier, singles + 1)
                            work &+= max(post.count, 1) * max(ct.count, 1)
                            DirectoryIndex.Relevance.andStep(&ranks[e], post, ct)
                        }
                    }
                }
                last[row + i] = encoded
            } else if encoded & flags == 0 {
                ranks[e] = Float(Double(ranks[e]) + singleShares[Int(encoded >> 14)])
            } else {
                ranks[e] = Float(Double(ranks[e]) + Double(DirectoryIndex.Relevance.orTerm(positions(encoded, singles))) / 1.64493406685)
            }
        }
        let itemWords = items.map { lexicon.words(matching: String(decoding: $0.word, as: UTF8.self), prefix: $0.prefix) }
        // With many candidates, the slots are split between the cores: each sweeps every word's
        // postings in its own range of slots (a word's postings are in slot order), so the parts
        // write disjoint entries and each entry sees its postings in the same order as alone.
        let parts = bySlot && slots.count >= 1 << 13 ? min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4) : 1
        let partBudget = budget == .max ? .max : budget / parts
        works = [Int](repeating: 0, count: parts)
        ranks.withUnsafeMutableBufferPointer { ranksBuffer in
            let ranks = ranksBuffer
            last.withUnsafeMutableBufferPointer { lastBuffer in
                let last = lastBuffer
                lexicon.overflow.withUnsafeBufferPointer { runs in
                    lexicon.tailOverflow.withUnsafeBufferPointer { tailRuns in
                        lexicon.slots.withUnsafeBufferPointer { postings in
                            lexicon.codes.withUnsafeBufferPointer { codes in
                                /// Every posting of the operands' words whose slot is in lo..<hi.
                                func sweep(_ lo: Int32, _ hi: Int32, singles: UnsafeMutablePointer<UInt16>, work: inout Int) {
                                    for (i, words) in itemWords.enumerated() {
                                        for n in words {
                                            if work > partBudget { return }
                                            guard bySlot else {
                                                lexicon.forEachPosting(of: n, among: slots) { c, encoded in
                                                    add(
                                                        c, encoded, operand: i, ranks: ranks, last: last, runs: runs, tailRuns: tailRuns,
                                                        singles: singles,
                                                        work: &work)
                                                }
                                                continue
                                            }
                                            if n < lexicon.baseWords {
                                                let start = Int(lexicon.postingStart[n])
                                                let end = Int(lexicon.postingStart[n + 1])
                                                let list = UnsafeBufferPointer(rebasing: postings[start..<end])
                                                let first = start + (lo == 0 ? 0 : DirectoryIndex.Lexicon.gallop(list, from: 0, to: lo))
                                                let beyond =
                                                    start
                                                    + (hi == .max ? list.count : DirectoryIndex.Lexicon.gallop(list, from: first - start, to: hi))
                                                // The runs of the postings before this part's.
                                                var run = Int(lexicon.overflowStart[n])
                                                for p in start..<first where codes[p] == severalPositions { run += 1 + Int(runs[run]) }
                                                for p in first..<beyond {
                                                    let slot = Int(postings[p])
                                                    let code = codes[p]
                                                    if !and, code != severalPositions {
                                                        // The common case of broad searches, inline.
                                                        ranks[slot] = Float(
                                                            Double(ranks[slot]) + singleShares[code == noPosition ? 0 : Int(code >> 14)])
                                                        continue
                                                    }
                                                    let encoded = DirectoryIndex.Lexicon.encoded(code, run: run)
                                                    if code == severalPositions { run += 1 + Int(runs[run]) }
                                                    add(
                                                        slot, encoded, operand: i, ranks: ranks, last: last, runs: runs, tailRuns: tailRuns,
                                                        singles: singles,
                                                        work: &work)
                                                }
                                            }
                                            if let tail = lexicon.tails[Int32(n)] {
                                                for (k, slot) in tail.slots.enumerated() where slot >= lo && slot < hi {
                                                    add(
                                                        Int(slot), tail.encoded[k], operand: i, ranks: ranks, last: last, runs: runs,
                                                        tailRuns: tailRuns,
                                                        singles: singles, work: &work)
                                                }
                                            }
                                        }
                                    }
                                }
                                works.withUnsafeMutableBufferPointer { worksBuffer in
                                    let works = worksBuffer
                                    let size = (ids.count + parts - 1) / parts
                                    let sweepPart = { (part: Int) in
                                        // Scratch for postings with one position, so that every posting's positions are a buffer.
                                        let singles = UnsafeMutablePointer<UInt16>.allocate(capacity: 2)
                                        defer { singles.deallocate() }
                                        var work = 0
                                        let lo = Int32(part * size)
                                        let hi = parts == 1 ? Int32.max : Int32(min(ids.count, (part + 1) * size))
                                        sweep(lo, hi, singles: singles, work: &work)
                                        works[part] = work
                                    }
                                    if parts == 1 {
                                        sweepPart(0)
                                    } else {
                                        // The parts write disjoint slots of the buffers.
                                        withoutActuallyEscaping(sweepPart) { sweepPart in
                                            let shared = UncheckedSendable(sweepPart)
                                            DispatchQueue.concurrentPerform(iterations: parts) { part in shared.value(part) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if works.contains(where: { $0 > partBudget }) { return nil }
        var tsRank = bySlot ? slots.map { ranks[Int($0)] } : ranks
        for c in tsRank.indices {
            if and {
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
        let tsRank = relevance.hasText ? tsRanks(slots, relevance: relevance) ?? [] : []
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

/// A value handed to code that runs concurrently, where the caller guarantees the concurrent uses
/// do not conflict (the directory index's parts write disjoint slots).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
