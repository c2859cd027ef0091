import Foundation

extension DirectoryIndex {
    /// The lexemes: for each word, the slots of the documents that have it and the word's positions
    /// there; the words in byte order for prefix matching (the order PostgreSQL compares lexemes in).
    ///
    /// Flat, for memory: the words in a `ByteInterner`; the postings read at a load in one array per
    /// field, word after word (`build`), and those of the entries changed since in small per-word
    /// tails.
    struct Lexicon: Sendable {
        /// The words, numbered in the order they came.
        var words = ByteInterner()
        /// Word numbers in byte order of their words.
        var sorted: [Int32] = []

        /// The words with postings in the base arrays (numbered below `baseWords`): word n's
        /// postings are slots[postingStart[n] ..< postingStart[n + 1]], each with a position code
        /// (`codes`); the positions of those with several are in `overflow` from overflowStart[n]
        /// on, one run each, in posting order (the count, then the positions).
        var baseWords = 0
        var postingStart: [UInt32] = [0]
        var slots: [Int32] = []
        var codes: [UInt16] = []
        var overflowStart: [UInt32] = [0]
        var overflow: [UInt16] = []

        /// Postings added after the base was built, per word; their positions encoded (`encode`),
        /// several of them in `tailOverflow`.
        var tails: [Int32: Tail] = [:]
        var tailOverflow: [UInt16] = []

        struct Tail: Sendable {
            var slots: [Int32] = []
            var encoded: [UInt32] = []
        }

        var wordCount: Int { words.count }

        func word(_ n: Int) -> ArraySlice<UInt8> { words[n] }

        // MARK: Words

        /// The number of the word with these bytes, if any.
        func number<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? { words.number(bytes) }

        /// The number of the word with these bytes, added (unsorted) if new.
        mutating func intern<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int { words.intern(bytes) }

        mutating func sortWords() {
            sorted = (0..<Int32(wordCount)).sorted { word(Int($0)).lexicographicallyPrecedes(word(Int($1))) }
        }

        /// Puts the words numbered `first...` into the sorted list.
        mutating func insertSorted(from first: Int) {
            for n in first..<wordCount { sorted.insert(Int32(n), at: lowerBound(bytes: word(n))) }
        }

        /// The first position in `sorted` whose word is not before `key` in byte order.
        func lowerBound<Bytes: Collection<UInt8>>(bytes key: Bytes) -> Int {
            var low = 0
            var high = sorted.count
            while low < high {
                let middle = (low + high) / 2
                if word(Int(sorted[middle])).lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
            }
            return low
        }

        /// The numbers of the words equal to `word`, or (with `prefix`) starting with it, in byte
        /// order.
        func words(matching word: String, prefix: Bool) -> [Int] {
            let bytes = Array(word.utf8)
            guard prefix else { return number(bytes).map { [$0] } ?? [] }
            // From the prefix up to (not including) the prefix with its last byte below 0xFF one
            // higher and what follows dropped: two binary searches.
            let first = lowerBound(bytes: bytes)
            var beyond = bytes
            while beyond.last == 0xFF { beyond.removeLast() }
            let end: Int
            if let last = beyond.popLast() {
                beyond.append(last + 1)
                end = lowerBound(bytes: beyond)
            } else {
                end = sorted.count
            }
            return (first..<max(first, end)).map { Int(sorted[$0]) }
        }

        // MARK: Postings

        /// Adds a posting after the base was built (a changed entry's word): `slot` is above every
        /// slot the word has.
        mutating func add<Bytes: Collection<UInt8>>(_ word: Bytes, slot: Int32, positions: ArraySlice<UInt16>) {
            let n = Int32(intern(word))
            let encoded = encode(positions)
            tails[n, default: Tail()].slots.append(slot)
            tails[n]!.encoded.append(encoded)
        }

        /// The slots of documents with `word`, or with a word that starts with it.
        func insert(_ word: String, prefix: Bool, into bits: inout Bitset) {
            bits.words.withUnsafeMutableBufferPointer { words in
                slots.withUnsafeBufferPointer { slots in
                    for n in self.words(matching: word, prefix: prefix) {
                        if n < baseWords {
                            for i in Int(postingStart[n])..<Int(postingStart[n + 1]) {
                                let slot = Int(slots[i])
                                words[slot >> 6] |= 1 << UInt64(slot & 63)
                            }
                        }
                        for slot in tails[Int32(n)]?.slots ?? [] { words[Int(slot) >> 6] |= 1 << UInt64(slot & 63) }
                    }
                }
            }
        }
    }
}

extension DirectoryIndex.Lexicon {
    /// A posting's positions, in one number (`withPositions` reads it): a single position as it is
    /// (weight in the top two bits, position in the other fourteen), `noPositions`, or a flag and
    /// the offset of its run in `overflow` (`overflowFlag`) or in `tailOverflow` (`tailFlag`).
    static let noPositions: UInt32 = .max
    static let overflowFlag: UInt32 = 1 << 31
    static let tailFlag: UInt32 = 1 << 30
    /// The code of a base posting with several positions (a position is never 0).
    static let severalPositions: UInt16 = 1 << 14
    /// The code of a base posting without positions.
    static let noPosition: UInt16 = 0

    /// The encoded positions of a base posting with position code `code`; `run` is where its run
    /// of positions is when it has several.
    @inline(__always)
    static func encoded(_ code: UInt16, run: Int) -> UInt32 {
        switch code {
        case noPosition: noPositions
        case severalPositions: overflowFlag | UInt32(run)
        default: UInt32(code)
        }
    }

    mutating func encode(_ positions: ArraySlice<UInt16>) -> UInt32 {
        switch positions.count {
        case 0: return Self.noPositions
        case 1: return UInt32(positions.first!)
        default:
            let offset = UInt32(tailOverflow.count)
            tailOverflow.append(UInt16(clamping: positions.count))
            tailOverflow.append(contentsOf: positions)
            return Self.tailFlag | offset
        }
    }

    func withPositions<T>(_ encoded: UInt32, _ body: (UnsafeBufferPointer<UInt16>) -> T) -> T {
        if encoded == Self.noPositions { return body(UnsafeBufferPointer(start: nil, count: 0)) }
        if encoded & (Self.overflowFlag | Self.tailFlag) == 0 {
            var single = UInt16(truncatingIfNeeded: encoded)
            return withUnsafePointer(to: &single) { body(UnsafeBufferPointer(start: $0, count: 1)) }
        }
        let runs = encoded & Self.overflowFlag != 0 ? overflow : tailOverflow
        let offset = Int(encoded & ~(Self.overflowFlag | Self.tailFlag))
        return runs.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[(offset + 1)..<(offset + 1 + Int(all[offset]))]))
        }
    }

    /// For each of `candidates` (ascending) whose document has word `n`: its index in
    /// `candidates` and the posting's positions (`withPositions`). Walks the shorter of the two
    /// lists and gallops through the other.
    func forEachPosting(of n: Int, among candidates: [Int32], _ body: (Int, UInt32) -> Void) {
        candidates.withUnsafeBufferPointer { candidates in
            if n < baseWords {
                let start = Int(postingStart[n])
                let end = Int(postingStart[n + 1])
                slots.withUnsafeBufferPointer { all in
                    codes.withUnsafeBufferPointer { codes in
                        overflow.withUnsafeBufferPointer { overflow in
                            let list = UnsafeBufferPointer(rebasing: all[start..<end])
                            // The run of each posting with several positions follows the runs of
                            // those before it: skipped postings are counted as the walk goes.
                            var run = Int(overflowStart[n])
                            var counted = start
                            func encoded(_ posting: Int) -> UInt32 {
                                while counted < posting {
                                    if codes[counted] == Self.severalPositions { run += 1 + Int(overflow[run]) }
                                    counted += 1
                                }
                                return Self.encoded(codes[posting], run: run)
                            }
                            Self.intersect(list, candidates) { posting, candidate in body(candidate, encoded(start + posting)) }
                        }
                    }
                }
            }
            if let tail = tails[Int32(n)] {
                tail.slots.withUnsafeBufferPointer { list in
                    Self.intersect(list, candidates) { posting, candidate in body(candidate, tail.encoded[posting]) }
                }
            }
        }
    }

    /// Calls `body` with the indexes in `list` and in `candidates` (both ascending) of each value
    /// they share, in ascending order; walks the shorter and gallops through the other.
    static func intersect(_ list: UnsafeBufferPointer<Int32>, _ candidates: UnsafeBufferPointer<Int32>, _ body: (Int, Int) -> Void) {
        let listIsShorter = list.count <= candidates.count
        let (walked, searched) = listIsShorter ? (list, candidates) : (candidates, list)
        var at = 0
        for (w, value) in walked.enumerated() {
            at = gallop(searched, from: at, to: value)
            guard at < searched.count else { return }
            guard searched[at] == value else { continue }
            if listIsShorter { body(w, at) } else { body(at, w) }
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

extension DirectoryIndex.Lexicon {
    /// Collects the postings of a full load in document order, then lays them out word by word
    /// (`build`): no array per word, and no copy of the words' bytes per posting.
    struct Builder {
        /// Per posting in load order: its word, and its position code; the runs of those with
        /// several positions in `runs`, in the same order.
        var words: [Int32] = []
        var codes: [UInt16] = []
        var runs: [UInt16] = []
        /// Document d's postings are postings[documentStart[d] ..< documentStart[d + 1]]; its slot is d.
        var documentStart: [Int32] = [0]

        init(expectedPostings: Int) {
            words.reserveCapacity(expectedPostings)
            codes.reserveCapacity(expectedPostings)
        }

        /// Adds a posting of the document being read.
        mutating func add<Bytes: Collection<UInt8>>(_ word: Bytes, positions: ArraySlice<UInt16>, to lexicon: inout DirectoryIndex.Lexicon) {
            words.append(Int32(lexicon.intern(word)))
            switch positions.count {
            case 0: codes.append(DirectoryIndex.Lexicon.noPosition)
            case 1: codes.append(positions.first!)
            default:
                codes.append(DirectoryIndex.Lexicon.severalPositions)
                runs.append(UInt16(clamping: positions.count))
                runs.append(contentsOf: positions)
            }
        }

        /// Ends the document being read (its slot is the number of documents before it).
        mutating func endDocument() { documentStart.append(Int32(words.count)) }

        /// Lays the postings out word by word into `lexicon`'s base arrays.
        func build(into lexicon: inout DirectoryIndex.Lexicon) {
            let wordCount = lexicon.wordCount
            var postingCounts = [UInt32](repeating: 0, count: wordCount + 1)
            var runLengths = [UInt32](repeating: 0, count: wordCount + 1)
            var run = 0
            for (p, word) in words.enumerated() {
                postingCounts[Int(word) + 1] += 1
                if codes[p] == DirectoryIndex.Lexicon.severalPositions {
                    let length = 1 + Int(runs[run])
                    runLengths[Int(word) + 1] += UInt32(length)
                    run += length
                }
            }
            for n in 0..<wordCount {
                postingCounts[n + 1] += postingCounts[n]
                runLengths[n + 1] += runLengths[n]
            }
            var slots = [Int32](repeating: 0, count: words.count)
            var codes = [UInt16](repeating: 0, count: words.count)
            var overflow = [UInt16](repeating: 0, count: runs.count)
            var nextPosting = postingCounts
            var nextRun = runLengths
            run = 0
            for document in 0..<(documentStart.count - 1) {
                for p in Int(documentStart[document])..<Int(documentStart[document + 1]) {
                    let word = Int(words[p])
                    let at = Int(nextPosting[word])
                    slots[at] = Int32(document)
                    codes[at] = self.codes[p]
                    nextPosting[word] += 1
                    if self.codes[p] == DirectoryIndex.Lexicon.severalPositions {
                        let length = 1 + Int(runs[run])
                        let to = Int(nextRun[word])
                        for k in 0..<length { overflow[to + k] = runs[run + k] }
                        nextRun[word] += UInt32(length)
                        run += length
                    }
                }
            }
            lexicon.baseWords = wordCount
            lexicon.postingStart = postingCounts
            lexicon.slots = slots
            lexicon.codes = codes
            lexicon.overflowStart = runLengths
            lexicon.overflow = overflow
            lexicon.words.compact()
            lexicon.sortWords()
        }
    }
}
