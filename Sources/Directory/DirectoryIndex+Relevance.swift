import Foundation

// MARK: - Relevance in memory

extension DirectoryIndex {
    /// The relevance of a search with q (`DirectoryService.rank`), computed in memory for every entry
    /// that matches, so that PostgreSQL ranks only the few that can be on the page instead of all of
    /// them. Ranking in PostgreSQL costs 15–20 µs an entry (`ts_rank` reads the whole detoasted
    /// document, `similarity` builds the trigrams of the names), 8–10 ms for the 491 entries of
    /// `q=automation` with three filters, on top of reading their rows.
    ///
    /// The rank is `100 × (exact acronym or SCHAC) + (matches the strict form) + ts_rank(document,
    /// fuzzy form) + similarity(names_folded, folded q)`. Here `ts_rank` follows PostgreSQL's
    /// `calc_rank_or` / `calc_rank_and` (src/backend/utils/adt/tsrank.c, default weights, no
    /// normalization) over the positions and weights the index keeps, and `similarity` follows
    /// pg_trgm (words of letters and digits, lower-cased, padded with two blanks before and one
    /// after, trigrams counted once; shared ÷ all), for names in ASCII (every name after folding, in
    /// practice). The order of the floating-point operations is PostgreSQL's, but nothing relies on
    /// the last bit: each entry gets bounds (the rank ± `tolerance`; a name outside ASCII takes any
    /// similarity from 0 to 1), and the entries kept are those that can be on the page whatever their
    /// exact rank within the bounds. PostgreSQL then computes the exact rank of those and orders
    /// them, so the page and its cursor are exactly what the SQL search gives.
    struct Relevance {
        /// Tolerance on a computed rank (ranks are below 103; a float's step there is 8e-6).
        static let tolerance = 1e-3

        /// The operands of the fuzzy form, sorted and de-duplicated as `SortAndUniqItems` does.
        let items: [(word: [UInt8], prefix: Bool)]
        /// Whether the fuzzy form's root is `&` (`calc_rank_and`) and it has two operands or more.
        let and: Bool
        let hasText: Bool
        /// The trigrams of folded q.
        let queryTrigrams: [UInt32]

        /// nil when the rank cannot be computed here: q outside ASCII after folding, or an operand
        /// both with and without `:*` (PostgreSQL keeps either, depending on its sort).
        init?(expression: TextExpression?, folded: String) {
            guard let queryTrigrams = Self.trigrams(Array(folded.utf8)) else { return nil }
            self.queryTrigrams = queryTrigrams
            guard let expression else {
                items = []
                and = false
                hasText = false
                return
            }
            hasText = true
            var operands: [(word: [UInt8], prefix: Bool)] = []
            expression.forEachOperand { operands.append((Array($0.utf8), $1)) }
            operands.sort { $0.word.lexicographicallyPrecedes($1.word) }
            var unique: [(word: [UInt8], prefix: Bool)] = []
            for operand in operands {
                if let last = unique.last, last.word == operand.word {
                    guard last.prefix == operand.prefix else { return nil }
                    continue
                }
                unique.append(operand)
            }
            items = unique
            if case .and = expression, unique.count >= 2 { and = true } else { and = false }
        }

        // MARK: Trigrams (pg_trgm)

        /// The trigrams of `text` as pg_trgm makes them (`show_trgm`), each its three bytes in one
        /// number, sorted, each once; nil when `text` has a byte outside ASCII.
        static func trigrams(_ text: [UInt8]) -> [UInt32]? {
            var result: [UInt32] = []
            guard trigrams(text[...], into: &result) else { return nil }
            return result
        }

        /// As `trigrams(_:)`, into `result` (emptied first); false when `text` is not ASCII.
        static func trigrams(_ text: ArraySlice<UInt8>, into result: inout [UInt32]) -> Bool {
            result.removeAll(keepingCapacity: true)
            var index = text.startIndex
            while index < text.endIndex {
                let byte = text[index]
                guard byte < 0x80 else { return false }
                guard isWordByte(byte) else {
                    index += 1
                    continue
                }
                // A word: "  word " gives a trigram at each of its bytes and one more.
                var a: UInt32 = 0x20
                var b: UInt32 = 0x20
                while index < text.endIndex, isWordByte(text[index]) {
                    let c = UInt32(lower(text[index]))
                    result.append(a << 16 | b << 8 | c)
                    (a, b) = (b, c)
                    index += 1
                }
                result.append(a << 16 | b << 8 | 0x20)
                if index < text.endIndex, text[index] >= 0x80 { return false }
            }
            result.sort()
            var kept = 0
            for i in result.indices where i == 0 || result[i] != result[kept - 1] {
                result[kept] = result[i]
                kept += 1
            }
            result.removeLast(result.count - kept)
            return true
        }

        private static func isWordByte(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }

        private static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte }

        /// pg_trgm's `cnt_sml`: shared trigrams ÷ trigrams of either, as a float4.
        static func similarity(_ a: [UInt32], _ b: [UInt32]) -> Float {
            guard !a.isEmpty, !b.isEmpty else { return 0 }
            var (i, j, shared) = (0, 0, 0)
            while i < a.count, j < b.count {
                if a[i] == b[j] {
                    shared += 1
                    i += 1
                    j += 1
                } else if a[i] < b[j] {
                    i += 1
                } else {
                    j += 1
                }
            }
            return Float(shared) / Float(a.count + b.count - shared)
        }

        // MARK: ts_rank

        /// tsrank.c's weights of D, C, B, A.
        static let weights: [Float] = [0.1, 0.2, 0.4, 1.0]
        static let maxEntryPosition: Int32 = (1 << 14) - 1

        static func weight(_ position: UInt16) -> Float { weights[Int(position >> 14)] }

        /// tsrank.c's `word_distance`.
        static func wordDistance(_ distance: Int32) -> Float {
            if distance > 100 { return 1e-30 }
            return Float(1.0 / (1.005 + 0.05 * exp(Double(Float(distance)) / 1.5 - 2)))
        }

        /// `calc_rank_or`'s term for one lexeme of the document with `positions` (none: PostgreSQL's
        /// stand-in, one position of weight D).
        static func orTerm(_ positions: UnsafeBufferPointer<UInt16>) -> Float {
            var resj: Float = 0
            var wjm: Float = -1
            var jm = 0
            if positions.isEmpty {
                resj = weights[0]
                wjm = weights[0]
            }
            for j in positions.indices {
                let w = weight(positions[j])
                resj = resj + w / Float((j + 1) * (j + 1))
                if w > wjm {
                    wjm = w
                    jm = j
                }
            }
            return wjm + resj - wjm / Float((jm + 1) * (jm + 1))
        }

        /// The running `calc_rank_and` value after the pair (a lexeme of one operand, a lexeme of an
        /// earlier one); an empty list is PostgreSQL's stand-in position (the last, weight D).
        static func andStep(_ res: inout Float, _ post: UnsafeBufferPointer<UInt16>, _ ct: UnsafeBufferPointer<UInt16>) {
            let standIn = UInt16(maxEntryPosition)
            let postCount = max(post.count, 1)
            let ctCount = max(ct.count, 1)
            for l in 0..<postCount {
                let a = post.isEmpty ? standIn : post[l]
                for p in 0..<ctCount {
                    let b = ct.isEmpty ? standIn : ct[p]
                    var distance = abs(Int32(a & 0x3FFF) - Int32(b & 0x3FFF))
                    guard distance != 0 || post.isEmpty || ct.isEmpty else { continue }
                    if distance == 0 { distance = maxEntryPosition + 1 }  // MAXENTRYPOS
                    let curw = Float((Double(weight(a) * weight(b) * wordDistance(distance))).squareRoot())
                    res = res < 0 ? curw : Float(1.0 - (1.0 - Double(res)) * (1.0 - Double(curw)))
                }
            }
        }
    }
}

extension DirectoryIndex.TextExpression {
    /// Each operand, in the order PostgreSQL stores a query's items (its Polish notation: an
    /// operator's right operand before its left; the order does not matter once sorted).
    func forEachOperand(_ body: (String, Bool) -> Void) {
        switch self {
        case .word(let word, let prefix): body(word, prefix)
        case .and(let parts), .or(let parts): for part in parts { part.forEachOperand(body) }
        case .not(let part): part.forEachOperand(body)
        }
    }
}

// MARK: - Ranking the matches

extension DirectoryIndex.Store {
    /// Per candidate (slots in ascending order), the bounds of its rank.
    func rankBounds(_ slots: [Int32], relevance: DirectoryIndex.Relevance, strict: DirectoryIndex.Bitset, exact: Set<Int32>) -> [(low: Double, high: Double)] {
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
        let placed = heap.values.count < keep ? slots.filter { namePlace[Int($0)] > after }
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

// MARK: - Positions in the lexicon

extension DirectoryIndex.Lexicon {
    /// A posting's positions, in one number: a single position as it is (weight in the top two
    /// bits, position in the other fourteen), `noPositions`, or `overflowFlag | offset` into
    /// `overflow` (the count, then the positions).
    static let noPositions: UInt32 = .max
    static let overflowFlag: UInt32 = 1 << 31

    mutating func encode(_ positions: ArraySlice<UInt16>) -> UInt32 {
        switch positions.count {
        case 0: return Self.noPositions
        case 1: return UInt32(positions.first!)
        default:
            let offset = UInt32(overflow.count)
            overflow.append(UInt16(clamping: positions.count))
            overflow.append(contentsOf: positions)
            return Self.overflowFlag | offset
        }
    }

    func withPositions<T>(_ encoded: UInt32, _ body: (UnsafeBufferPointer<UInt16>) -> T) -> T {
        if encoded == Self.noPositions { return body(UnsafeBufferPointer(start: nil, count: 0)) }
        if encoded & Self.overflowFlag == 0 {
            var single = UInt16(truncatingIfNeeded: encoded)
            return withUnsafePointer(to: &single) { body(UnsafeBufferPointer(start: $0, count: 1)) }
        }
        let offset = Int(encoded & ~Self.overflowFlag)
        return overflow.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[(offset + 1)..<(offset + 1 + Int(all[offset]))]))
        }
    }

    /// For each of `slots` (ascending) whose document has word `n`: its index in `slots` and the
    /// posting's positions. The shorter of the two lists is walked, and the other searched
    /// (galloping forward): a prefix such as `architecture` matches a thousand words of one
    /// entry each (domain names), a topic word tens of thousands of entries.
    func forEachPosting(of n: Int, among slots: [Int32], _ body: (Int, UInt32) -> Void) {
        postings[n].withUnsafeBufferPointer { list in
            slots.withUnsafeBufferPointer { slots in
                let (walked, searched) = list.count <= slots.count ? (list, slots) : (slots, list)
                var at = 0
                for (w, value) in walked.enumerated() {
                    at = Self.gallop(searched, from: at, to: value)
                    guard at < searched.count else { return }
                    guard searched[at] == value else { continue }
                    let (posting, candidate) = list.count <= slots.count ? (w, at) : (at, w)
                    body(candidate, positions[n][posting])
                }
            }
        }
    }

    /// The first index from `start` on whose value is not below `value`.
    static func gallop(_ list: UnsafeBufferPointer<Int32>, from start: Int, to value: Int32) -> Int {
        var low = start
        var step = 1
        var high = start
        while high < list.count, list[high] < value {
            low = high + 1
            high += step
            step *= 2
        }
        high = min(high, list.count)
        while low < high {
            let middle = (low + high) / 2
            if list[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

// MARK: - Reading a tsvector

extension DirectoryIndex {
    /// A tsvector as PostgreSQL prints it (`'word':1A,5 'other':3`): each lexeme (with `''` and `\\`
    /// undoubled) and its positions (weight A, B, C or none for D in the top two bits); nil when the
    /// text is not one.
    static func forEachLexeme(in text: String, _ body: (String, ArraySlice<UInt16>) -> Void) -> Bool {
        var text = text
        return text.withUTF8 { bytes -> Bool in
            var i = 0
            var word: [UInt8] = []
            var positions: [UInt16] = []
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: " ") {
                    i += 1
                    continue
                }
                guard bytes[i] == UInt8(ascii: "'") else { return false }
                i += 1
                word.removeAll(keepingCapacity: true)
                while true {
                    guard i < bytes.count else { return false }
                    let byte = bytes[i]
                    if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\\") {
                        if i + 1 < bytes.count, bytes[i + 1] == byte {
                            word.append(byte)
                            i += 2
                            continue
                        }
                        guard byte == UInt8(ascii: "'") else { return false }
                        i += 1
                        break
                    }
                    word.append(byte)
                    i += 1
                }
                positions.removeAll(keepingCapacity: true)
                if i < bytes.count, bytes[i] == UInt8(ascii: ":") {
                    i += 1
                    while true {
                        var value: UInt32 = 0
                        var digits = 0
                        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, digits < 6 {
                            value = value * 10 + UInt32(bytes[i] - 0x30)
                            i += 1
                            digits += 1
                        }
                        guard digits > 0, value <= UInt32(Relevance.maxEntryPosition) else { return false }
                        var weight: UInt16 = 0
                        if i < bytes.count {
                            switch bytes[i] {
                            case UInt8(ascii: "A"): weight = 3; i += 1
                            case UInt8(ascii: "B"): weight = 2; i += 1
                            case UInt8(ascii: "C"): weight = 1; i += 1
                            case UInt8(ascii: "D"): weight = 0; i += 1
                            default: break
                            }
                        }
                        positions.append(weight << 14 | UInt16(value))
                        guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { break }
                        i += 1
                    }
                }
                body(String(decoding: word, as: UTF8.self), positions[...])
            }
            return true
        }
    }
}
