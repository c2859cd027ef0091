import AccordCore
import Foundation

extension DirectoryIndex {
    /// The first pass of recommendations from memory: the `count` listed entries, other than
    /// `own`, that best complement a profile by the coarse score (3 per activity they offer that
    /// it seeks, 2 per activity they seek that it offers, 1 per shared broad field), ties by id —
    /// the entries the SQL first pass keeps. Nil when the index is not serving or has not applied
    /// `directoryVersion`.
    public func complements(
        offers: Set<String>, seeks: Set<String>, broadFields: Set<String>, excluding own: UUID, count: Int, directoryVersion: Int64
    ) -> [UUID]? {
        guard answers(atLeast: directoryVersion) else { return nil }
        return box.read { store in
            store?.complements(offers: offers, seeks: seeks, broadFields: broadFields, excluding: own, count: count)
        }
    }
}

extension DirectoryIndex.Store {
    func complements(offers: Set<String>, seeks: Set<String>, broadFields: Set<String>, excluding own: UUID, count: Int) -> [UUID] {
        var weighted: [(tag: Int, weight: UInt8)] = []
        for activity in Activity.allCases {
            if seeks.contains(activity.rawValue), let tag = tagNumber["o:" + activity.rawValue] { weighted.append((Int(tag), 3)) }
            if offers.contains(activity.rawValue), let tag = tagNumber["s:" + activity.rawValue] { weighted.append((Int(tag), 2)) }
        }
        for field in broadFields { if let tag = tagNumber["f:" + field] { weighted.append((Int(tag), 1)) } }
        var candidates = aliveBits
        if let slot = slotOf(own) { candidates[Int(slot) >> 6] &= ~(1 << UInt64(slot & 63)) }
        var scores = [UInt8](repeating: 0, count: ids.count)
        for (tag, weight) in weighted {
            tagBits[tag].withUnsafeBufferPointer { bits in
                for i in 0..<min(candidates.count, bits.count) {
                    var rest = bits[i] & candidates[i]
                    while rest != 0 {
                        scores[i << 6 | rest.trailingZeroBitCount] &+= weight
                        rest &= rest - 1
                    }
                }
            }
        }
        // The lowest score that makes the cut: everything above it, and of its ties the first by id.
        var histogram = [Int](repeating: 0, count: 256)
        DirectoryIndex.Bitset(words: candidates).forEach { histogram[Int(scores[$0])] += 1 }
        var above = 0
        var cut = 0
        for score in stride(from: 255, through: 0, by: -1) {
            if above + histogram[score] >= count {
                cut = score
                break
            }
            above += histogram[score]
        }
        var kept: [Int32] = []
        var ties = DirectoryIndex.BoundedHeap(capacity: count - above, order: DirectoryIndex.BySmallerID(ids: ids))
        DirectoryIndex.Bitset(words: candidates).forEach { slot in
            let score = Int(scores[slot])
            if score > cut {
                kept.append(Int32(slot))
            } else if score == cut {
                ties.offer(Int32(slot))
            }
        }
        return (kept + ties.elements).map { ids[Int($0)] }
    }
}
