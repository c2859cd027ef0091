import Foundation

extension DirectoryIndex {
    /// Distinct byte strings, numbered in the order they came: all their bytes in one buffer, found
    /// by an open-addressing hash table (FNV-1a), so that a million words cost no object each.
    struct ByteInterner: Sendable {
        /// String n is bytes[starts[n] ..< starts[n + 1]].
        private(set) var bytes: [UInt8] = []
        private(set) var starts: [UInt32] = [0]
        /// Numbers by hash (-1: empty); a power of two, at most half full.
        private var table = [Int32](repeating: -1, count: 1024)

        var count: Int { starts.count - 1 }

        subscript(n: Int) -> ArraySlice<UInt8> { bytes[Int(starts[n])..<Int(starts[n + 1])] }

        static func hash<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt64 {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return hash
        }

        /// The number of these bytes, if they are in.
        func number<Bytes: Collection<UInt8>>(_ key: Bytes) -> Int? {
            let mask = table.count - 1
            var i = Int(truncatingIfNeeded: Self.hash(key)) & mask
            while true {
                let n = table[i]
                if n < 0 { return nil }
                if self[Int(n)].elementsEqual(key) { return Int(n) }
                i = (i + 1) & mask
            }
        }

        /// The number of these bytes, added if new.
        mutating func intern<Bytes: Collection<UInt8>>(_ key: Bytes) -> Int {
            if let n = number(key) { return n }
            let n = count
            bytes.append(contentsOf: key)
            starts.append(UInt32(bytes.count))
            if (n + 1) * 2 > table.count { rehash(capacity: table.count * 2) } else { place(n) }
            return n
        }

        private mutating func place(_ n: Int) {
            let mask = table.count - 1
            var i = Int(truncatingIfNeeded: Self.hash(self[n])) & mask
            while table[i] >= 0 { i = (i + 1) & mask }
            table[i] = Int32(n)
        }

        private mutating func rehash(capacity: Int) {
            table = [Int32](repeating: -1, count: capacity)
            for n in 0..<count { place(n) }
        }

        /// Gives the buffers back their spare capacity.
        mutating func compact() {
            bytes = bytes.withUnsafeBufferPointer { Array($0) }
            starts = starts.withUnsafeBufferPointer { Array($0) }
        }
    }
}
