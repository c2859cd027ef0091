import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex {
    /// The lexemes: posting lists of slots, and the words in byte order for prefix matching (the
    /// order PostgreSQL compares lexemes in).
    struct Lexicon: Sendable {
        var number: [String: Int32] = [:]
        var words: [String] = []
        var postings: [[Int32]] = []
        /// Per word, for each of its postings, the positions and weights there (`encode`).
        var positions: [[UInt32]] = []
        /// Positions of postings with more than one.
        var overflow: [UInt16] = []
        /// Word numbers in byte order of their words.
        var sorted: [Int32] = []

        mutating func add(_ word: String, slot: Int32, positions wordPositions: ArraySlice<UInt16>) {
            let encoded = encode(wordPositions)
            if let n = number[word] {
                // A document lists each lexeme once, so a slot is appended at most once.
                postings[Int(n)].append(slot)
                positions[Int(n)].append(encoded)
                return
            }
            let n = Int32(words.count)
            number[word] = n
            words.append(word)
            postings.append([slot])
            positions.append([encoded])
        }

        mutating func sortWords() {
            sorted = (0..<Int32(words.count)).sorted { words[Int($0)].utf8.lexicographicallyPrecedes(words[Int($1)].utf8) }
        }

        /// Puts the words numbered `first...` into the sorted list.
        mutating func insertSorted(from first: Int) {
            for n in first..<words.count {
                sorted.insert(Int32(n), at: lowerBound(words[n]))
            }
        }

        /// The first position in `sorted` whose word is not before `key` in byte order.
        func lowerBound(_ key: String) -> Int {
            lowerBound(bytes: Array(key.utf8))
        }

        func lowerBound(bytes key: [UInt8]) -> Int {
            var low = 0
            var high = sorted.count
            while low < high {
                let middle = (low + high) / 2
                if words[Int(sorted[middle])].utf8.lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
            }
            return low
        }

        /// The slots of documents with `word`, or with a word that starts with it.
        func insert(_ word: String, prefix: Bool, into bits: inout Bitset) {
            for n in words(matching: word, prefix: prefix) {
                for slot in postings[n] { bits.insert(Int(slot)) }
            }
        }

        /// The numbers of the words equal to `word`, or (with `prefix`) starting with it, in byte
        /// order.
        func words(matching word: String, prefix: Bool) -> [Int] {
            guard prefix else { return number[word].map { [Int($0)] } ?? [] }
            // From the prefix up to (not including) the prefix with its last byte below 0xFF one
            // higher and what follows dropped: two binary searches.
            let bytes = Array(word.utf8)
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
    }
}

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
    /// posting's positions. Walks the shorter of the two lists and gallops through the other.
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
