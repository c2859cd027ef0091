import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex {
    /// The directory as loaded once: what the index installs on a (re)load, and what tools evaluate
    /// queries on (`accord directory sql --index`).
    public struct Snapshot: Sendable {
        let store: Store
        /// The directory_version it reflects: every change numbered up to it committed before the load began.
        public let version: Int64

        public static func load(pool: PGPool, batch: Int = 20_000) async throws -> Snapshot {
            let version = try await pool.query("SELECT version FROM directory_version").scalar(Int64.self)
            return Snapshot(store: try await DirectoryIndex.load(pool: pool, batch: batch), version: version)
        }

        /// As `DirectoryIndex.evaluate`, on this snapshot whatever the directory's version now.
        public func evaluate(_ query: Query, text: DirectoryService.TextForms, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
            guard let (expression, strict) = DirectoryIndex.expressions(text) else { return nil }
            return store.evaluate(
                query, expression: expression, strict: strict, folded: text.folded, domain: text.domain, countryRegions: countryRegions,
                maxIDs: maxIDs)
        }

        /// As `DirectoryIndex.evaluate(_:directoryVersion:…)`, on this snapshot.
        public func evaluate(_ query: Query, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
            store.evaluate(
                query, expression: nil, strict: nil, folded: "", domain: nil, matchAll: true, countryRegions: countryRegions, maxIDs: maxIDs)
        }
    }
}
