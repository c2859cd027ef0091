import Foundation
import PGStore
import PGStoreTesting
import Testing

/// A pool on the private server's `accord` database as the owner role, for tests that touch no
/// application tables.
func ownerPool(
    maxConnections: Int = 4, waitTimeout: Duration = .seconds(10), statementTimeout: Duration? = .seconds(30),
    ioThreads: Int = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4)
) throws -> PGPool {
    PGPool(
        configuration: try PGConfiguration(
            url: try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL"),
            maxConnections: maxConnections, connectionWaitTimeout: waitTimeout, connectTimeoutSeconds: 30, statementTimeout: statementTimeout,
            ioThreads: ioThreads))
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

/// Cancels a task (preferring `executor`, if any) while its `pg_sleep(30)` runs: the query must
/// end at once with `.cancelled`, and the pool's one connection must be reused afterwards. With
/// `prepared`, the statement was prepared before, so it runs on the pool's I/O loop; without, it
/// is new to the connection and runs on the thread pool.
func expectSleepIsCancelled(_ pool: PGPool, on executor: (any TaskExecutor)?, prepared: Bool) async throws {
    let sleep: PGQuery = prepared ? "SELECT pg_sleep(\(30.0))" : "SELECT pg_sleep(30)"
    if prepared { try await pool.query("SELECT pg_sleep(\(0.0))") }
    let pid = try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self)
    let sleeper = Task(executorPreference: executor) { try await pool.query(sleep) }
    try await Task.sleep(for: .milliseconds(300))
    let cancelledAt = ContinuousClock.now
    sleeper.cancel()
    do {
        _ = try await sleeper.value
        Issue.record("a cancelled query must throw")
    } catch let error as PGError {
        #expect(error.kind == .cancelled)
    }
    #expect(ContinuousClock.now - cancelledAt < .seconds(5))
    #expect(try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self) == pid)
}
