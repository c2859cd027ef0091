import Foundation

extension DirectoryIndex {
    /// A short string per slot (an acronym, a SCHAC code) in one buffer, and the slots in byte order
    /// of their strings, to find the slots whose string is exactly a given one.
    struct SlotStrings: Sendable {
        /// Slot i's string is bytes[starts[i] ..< starts[i + 1]] (empty: none).
        private(set) var bytes: [UInt8] = []
        private(set) var starts: [UInt32] = [0]
        /// The slots with a string, in byte order of their strings, as of the last `sort`.
        private var order: [Int32] = []
        /// The slots appended since, in slot order.
        private var recent: [Int32] = []

        subscript(slot: Int) -> ArraySlice<UInt8> { bytes[Int(starts[slot])..<Int(starts[slot + 1])] }

        mutating func append(_ string: String) {
            let slot = Int32(starts.count - 1)
            bytes.append(contentsOf: string.utf8)
            starts.append(UInt32(bytes.count))
            if !string.isEmpty { recent.append(slot) }
        }

        /// Orders every slot with a string (at a load; changes come after, in `recent`).
        mutating func sort() {
            bytes = bytes.withUnsafeBufferPointer { Array($0) }
            starts = starts.withUnsafeBufferPointer { Array($0) }
            var sorted = order + recent
            recent = []
            sorted.sort { self[Int($0)].lexicographicallyPrecedes(self[Int($1)]) }
            order = sorted
        }

        /// The slots whose string is `key` (none for an empty key).
        func slots(_ key: String) -> [Int32] {
            let key = Array(key.utf8)
            guard !key.isEmpty else { return [] }
            var low = 0
            var high = order.count
            while low < high {
                let middle = (low + high) / 2
                if self[Int(order[middle])].lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
            }
            var found: [Int32] = []
            while low < order.count, self[Int(order[low])].elementsEqual(key) {
                found.append(order[low])
                low += 1
            }
            return found + recent.filter { self[Int($0)].elementsEqual(key) }
        }
    }
}
