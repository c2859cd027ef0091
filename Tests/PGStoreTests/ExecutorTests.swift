import Foundation
import PGStoreTesting
import Testing

@testable import PGStore

/// Tasks that prefer the pool's I/O loops (`PGPool.executors`).
@Suite("Pool executors")
struct ExecutorTests {
    /// Every way an I/O loop can wait on this platform: on Linux the portable `poll` path runs
    /// beside `epoll`, so that it is tested where CI runs.
    static let backends: [PGPoller.Backend] = {
        #if os(Linux)
        [.epoll, .poll]
        #else
        [.poll]
        #endif
    }()

    /// Two loops, whatever the machine's cores.
    func pool(maxConnections: Int, backend: PGPoller.Backend = .platformDefault) throws -> PGPool {
        var configuration = try PGConfiguration(
            url: try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL"), maxConnections: maxConnections, connectTimeoutSeconds: 30,
            ioThreads: 2)
        configuration.ioBackend = backend
        return PGPool(configuration: configuration)
    }

    @Test(arguments: backends)
    func tasksOnTheLoopsRunStatementsTransactionsAndPipelines(backend: PGPoller.Backend) async throws {
        let pool = try pool(maxConnections: 4, backend: backend)
        defer { Task { await pool.close() } }
        #expect(pool.executors.count == 2)
        let results = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<100 {
                group.addTask(executorPreference: pool.executors[index % 2]) {
                    let loop = pool.loops[index % 2]
                    // First use prepares on the thread pool; the second goes out from the loop.
                    let first = try await pool.query("SELECT \(index) + 1").scalar(Int.self)
                    let second = try await pool.query("SELECT \(index) + 1").scalar(Int.self)
                    let setting = try await pool.withTransaction(settings: [("accord.test", "t\(index)")]) { tx in
                        try await tx.query("SELECT current_setting('accord.test', true)").scalar(String.self)
                    }
                    let batch = try await pool.pipeline(["SELECT \(index) * 2", "SELECT \("x")::text || \("y")"])
                    #expect(first == index + 1 && second == index + 1)
                    #expect(setting == "t\(index)")
                    #expect(try batch[0].scalar(Int.self) == index * 2)
                    #expect(try batch[1].scalar(String.self) == "xy")
                    // Still on the loop it prefers, after every kind of statement.
                    return (index, loop.isCurrent)
                }
            }
            var results: [(Int, Bool)] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(results.count == 100)
        #expect(results.allSatisfy { $0.1 })
        let stats = pool.statistics
        #expect(stats.peakLeased <= 4)
        #expect(stats.leased == 0)
    }

    @Test func connectionsGoToTheLoopThatLeasesThem() async throws {
        let pool = try pool(maxConnections: 2)
        defer { Task { await pool.close() } }
        // A connection opened from a loop is served by that loop.
        try await withTaskExecutorPreference(pool.executors[0]) {
            try await pool.withConnection { first in
                #expect(first.io === pool.loops[0])
                try await withTaskExecutorPreference(pool.executors[1]) {
                    try await pool.withConnection { second in
                        #expect(second.io === pool.loops[1])
                    }
                }
            }
        }
        // With both connections idle, each loop is given its own first.
        for index in [1, 0, 1] {
            let loop = pool.loops[index]
            try await withTaskExecutorPreference(pool.executors[index]) {
                try await pool.withConnection { connection in
                    #expect(connection.io === loop)
                }
            }
        }
    }

    @Test(arguments: backends)
    func cancellingATaskOnALoopCancelsItsQuery(backend: PGPoller.Backend) async throws {
        let pool = try pool(maxConnections: 1, backend: backend)
        defer { Task { await pool.close() } }
        try await expectSleepIsCancelled(pool, on: pool.executors[0], prepared: true)
    }

    @Test(arguments: backends)
    func aConnectionThatHeardFromItsServerWhileIdleIsCheckedBeforeItIsLent(backend: PGPoller.Backend) async throws {
        let pool = try pool(maxConnections: 1, backend: backend)
        let killer = try ownerPool(maxConnections: 1)
        defer {
            Task {
                await pool.close()
                await killer.close()
            }
        }
        let connection = try await pool.withConnection { connection in
            // The first use prepares on the thread pool; the second runs on the loop, whose poller
            // keeps the socket from then on.
            for _ in 0..<2 { try await connection.query("SELECT 1") }
            return connection
        }
        let pid = connection.backendPID
        #expect(try await killer.query("SELECT pg_terminate_backend(\(pid), 5000)").scalar(Bool.self))
        // The loop hears the server's last message and the close, with nobody waiting.
        try await Task.sleep(for: .milliseconds(200))
        // Returned this instant as far as the pool can tell, so only the loop's mark makes it look.
        connection.returnedAt = PGConnection.now()
        let next = try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self)
        #expect(next != pid)
        #expect(pool.statistics.open == 1)
    }

    @Test(arguments: backends)
    func aStoppedLoopHandsItsTasksToTheGlobalExecutor(backend: PGPoller.Backend) async throws {
        let loop = PGIOLoop(backend)
        let ran = try await withTimeout(5) {
            try await withTaskExecutorPreference(loop) {
                await Task.yield()
                let before = loop.isCurrent
                loop.shutdown()
                // Suspending now must not strand the task on a loop that no longer runs.
                try await Task.sleep(for: .milliseconds(50))
                await Task.yield()
                return (before, loop.isCurrent)
            }
        }
        #expect(ran.0)
        #expect(!ran.1)
    }
}
