import AccordCore
import Foundation
import PGStore
import Synchronization

/// The partner directory: search with facets over the published profiles (`directory_entries`,
/// Schema/0006_directory.sql), and complementarity recommendations.
public struct DirectoryService: Sendable {
    let pool: PGPool
    let reference: ReferenceData
    /// The directory in memory: matches and facets of a search with q, when it is serving.
    let index: DirectoryIndex?
    private let cachedStatistics = StatisticsCache()

    /// Most matches the index passes to PostgreSQL to order a page over (read by primary key);
    /// beyond, the SQL search finds the page (the facets still come from the index). In relevance
    /// order the index passes on only the matches that can be on the page.
    public static let maxIndexedPage = 5_000

    public init(pool: PGPool, reference: ReferenceData, index: DirectoryIndex? = nil) {
        self.pool = pool
        self.reference = reference
        self.index = index
    }

    /// The tag statistics, read again when older than a minute.
    func statistics() async throws -> TagStatistics {
        let now = ContinuousClock.now
        if let (statistics, loaded) = cachedStatistics.value.withLock({ $0 }), now - loaded < .seconds(60) { return statistics }
        let statistics = try await TagStatistics.load { try await pool.query($0) }
        cachedStatistics.value.withLock { $0 = (statistics, now) }
        return statistics
    }

    final class StatisticsCache: Sendable {
        let value = Mutex<(TagStatistics, ContinuousClock.Instant)?>(nil)
    }
}
