import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex {
    /// A set of slots, one bit each.
    struct Bitset {
        var words: [UInt64]

        init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }
        init(words: [UInt64]) { self.words = words }

        mutating func insert(_ i: Int) { words[i >> 6] |= 1 << UInt64(i & 63) }
        func contains(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

        /// With the first `words.count` words of `other` (which has at least as many).
        mutating func formIntersection(_ other: [UInt64]) {
            precondition(other.count >= words.count)
            other.withUnsafeBufferPointer { other in
                words.withUnsafeMutableBufferPointer { words in for i in words.indices { words[i] &= other[i] } }
            }
        }

        mutating func formUnion(_ other: [UInt64]) {
            precondition(other.count >= words.count)
            other.withUnsafeBufferPointer { other in
                words.withUnsafeMutableBufferPointer { words in for i in words.indices { words[i] |= other[i] } }
            }
        }
        mutating func invert(count: Int) {
            for i in words.indices { words[i] = ~words[i] }
            if count % 64 != 0, !words.isEmpty { words[words.count - 1] &= (1 << UInt64(count % 64)) - 1 }
        }

        func forEach(_ body: (Int) -> Void) {
            for (index, word) in words.enumerated() where word != 0 {
                var rest = word
                while rest != 0 {
                    body(index << 6 | rest.trailingZeroBitCount)
                    rest &= rest - 1
                }
            }
        }
    }
}
