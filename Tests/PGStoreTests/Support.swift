import Foundation
import PGStore
import PGStoreTesting
import Testing

/// A pool on the private server's `accord` database as the owner role, for tests that touch no
/// application tables.
func ownerPool(maxConnections: Int = 4, waitTimeout: Duration = .seconds(10), statementTimeout: Duration? = .seconds(30)) throws -> PGPool {
    PGPool(configuration: try PGConfiguration(
        url: try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL"),
        maxConnections: maxConnections, connectionWaitTimeout: waitTimeout, statementTimeout: statementTimeout))
}

struct TimedOut: Error {}

/// Runs `body`, failing with `TimedOut` after `seconds`.
func withTimeout<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimedOut()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
