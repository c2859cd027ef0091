import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryService {
    /// How many entries carry each tag (directory_tag_counts), kept for a minute: only to decide
    /// which filters should drive an index scan, never for a result.
    public struct TagStatistics: Sendable {
        public var counts: [String: Int]
        public var total: Int

        public init(counts: [String: Int], total: Int) {
            self.counts = counts
            self.total = total
        }

        public static func load(_ run: (PGQuery) async throws -> PGRows) async throws -> TagStatistics {
            var counts: [String: Int] = [:]
            for (tag, entries) in try await run("SELECT tag, entries FROM directory_tag_counts").decode((String, Int).self) {
                counts[tag] = entries
            }
            return TagStatistics(counts: counts, total: counts["#"] ?? 0)
        }

        /// The share of all entries that carry any of `tags` (at most the sum of their shares).
        func fraction(_ tags: [String]) -> Double {
            guard total > 0 else { return 0 }
            return min(1, Double(tags.reduce(0) { $0 + (counts[$1] ?? 0) }) / Double(total))
        }
    }
}
