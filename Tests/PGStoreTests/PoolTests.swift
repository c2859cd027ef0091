import Foundation
import PGStore
import PGStoreTesting
import Testing

@Suite("Pool, transactions, pipelines, cancellation")
struct PoolTests {
    @Test func uniqueViolationKeepsSQLState() async throws {
        let pool = try ownerPool(maxConnections: 1)
        defer { Task { await pool.close() } }
        try await pool.withConnection { connection in
            try await connection.execute(unsafeSQL: "CREATE TEMP TABLE t (id int PRIMARY KEY, name text)")
            try await connection.query("INSERT INTO t VALUES (\(1), \("a"))")
            do {
                try await connection.query("INSERT INTO t VALUES (\(1), \("b"))")
                Issue.record("a duplicate key must fail")
            } catch let error as PGError {
                #expect(error.kind == .server)
                #expect(error.sqlState == "23505")
                #expect(error.isUniqueViolation)
                #expect(error.constraint == "t_pkey")
                #expect(error.detail?.contains("(id)=(1)") == true)
                // The plain description hides the detail.
                #expect(!error.description.contains("t_pkey"))
                #expect(!"\(error)".contains("(id)=(1)"))
                #expect(String(reflecting: error).contains("t_pkey"))
            }
        }
    }

    @Test func errorInsideTransactionRollsBack() async throws {
        struct Boom: Error {}
        let pool = try ownerPool(maxConnections: 1)
        defer { Task { await pool.close() } }
        try await pool.withConnection { connection in
            try await connection.execute(unsafeSQL: "CREATE TEMP TABLE t (id int)")
            await #expect(throws: Boom.self) {
                try await connection.withTransaction { tx in
                    try await tx.query("INSERT INTO t VALUES (\(1))")
                    throw Boom()
                }
            }
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 0)
            // A failed statement aborts the transaction, even if the body swallows the error.
            await #expect(throws: PGError.self) {
                try await connection.withTransaction { tx in
                    try await tx.query("INSERT INTO t VALUES (\(2))")
                    _ = try? await tx.query("SELECT 1/0")
                }
            }
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 0)
            try await connection.withTransaction { tx in try await tx.query("INSERT INTO t VALUES (\(3))") }
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 1)
        }
    }

    @Test func transactionSettingsLastOneTransaction() async throws {
        let pool = try ownerPool(maxConnections: 1)
        defer { Task { await pool.close() } }
        let inside = try await pool.withTransaction(settings: [("accord.institution_id", "abc"), ("accord.user_id", "u")]) { tx in
            try await tx.query("SELECT current_setting('accord.institution_id', true), current_setting('accord.user_id', true)")
                .first((String, String).self)
        }
        #expect(inside?.0 == "abc")
        #expect(inside?.1 == "u")
        let after = try await pool.query("SELECT current_setting('accord.institution_id', true)").scalar(String?.self)
        #expect(after == nil || after == "")
    }

    @Test func twoHundredTasksShareEightConnections() async throws {
        // About the sharing, not the time: waiters are patient, as a loaded machine opens
        // connections slowly.
        let pool = try ownerPool(maxConnections: 8, waitTimeout: .seconds(120))
        defer { Task { await pool.close() } }
        let pids = try await withThrowingTaskGroup(of: Int32.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await pool.query("SELECT pg_backend_pid(), \(index) FROM pg_sleep(0.005)").first((Int32, Int).self)!.0
                }
            }
            var pids = Set<Int32>()
            for try await pid in group { pids.insert(pid) }
            return pids
        }
        let stats = pool.statistics
        #expect(pids.count <= 8)
        #expect(stats.peakLeased <= 8)
        #expect(stats.open <= 8)
        #expect(stats.leased == 0)
    }

    @Test func waitingForAConnectionTimesOut() async throws {
        let pool = try ownerPool(maxConnections: 1, waitTimeout: .milliseconds(200))
        defer { Task { await pool.close() } }
        // The only connection is held until the waiter has failed: so it can only have failed by
        // its own timeout (no clock involved, which a loaded machine would make flaky).
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await pool.withConnection { _ in
                holding.yield()
                for await _ in released {}
            }
        }
        for await _ in held { break }
        do {
            try await pool.query("SELECT 1")
            Issue.record("the pool must time out")
        } catch let error as PGError {
            #expect(error.kind == .poolTimeout)
        }
        release.finish()
        try await holder.value
        #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
    }

    @Test func terminatedBackendIsReplaced() async throws {
        let pool = try ownerPool(maxConnections: 1)
        let killer = try ownerPool(maxConnections: 1)
        defer {
            Task {
                await pool.close()
                await killer.close()
            }
        }
        let pid = try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self)
        let terminated = try await killer.query("SELECT pg_terminate_backend(\(pid), 5000)").scalar(Bool.self)
        #expect(terminated)
        let next = try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self)
        #expect(next != pid)
        #expect(pool.statistics.open == 1)
    }

    @Test func cancellingTheTaskCancelsTheQuery() async throws {
        let pool = try ownerPool(maxConnections: 1)
        defer { Task { await pool.close() } }
        // First use: the statement runs on the thread pool (it is prepared there).
        try await expectSleepIsCancelled(pool, on: nil, prepared: false)
        let pid = try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self)
        // Cancelled inside a transaction: rolled back, connection clean.
        let inTransaction = Task {
            try await pool.withTransaction { tx in
                try await tx.execute(unsafeSQL: "CREATE TEMP TABLE IF NOT EXISTS c (x int)")
                try await tx.query("SELECT pg_sleep(30)")
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        inTransaction.cancel()
        _ = try? await inTransaction.value
        #expect(try await pool.query("SELECT to_regclass('pg_temp.c') IS NULL").scalar(Bool.self))
        #expect(try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self) == pid)

        // A statement prepared already runs on the I/O loop: cancelling works there too.
        try await expectSleepIsCancelled(pool, on: nil, prepared: true)
    }

    @Test func statementTimeoutApplies() async throws {
        let pool = try ownerPool(maxConnections: 1, statementTimeout: .milliseconds(100))
        defer { Task { await pool.close() } }
        do {
            try await pool.query("SELECT pg_sleep(2)")
            Issue.record("the statement timeout must end the query")
        } catch let error as PGError {
            #expect(error.sqlState == PGError.Code.queryCanceled)
        }
        #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
    }

    @Test func pipelineRunsManyStatementsAtomically() async throws {
        let pool = try ownerPool(maxConnections: 1)
        defer { Task { await pool.close() } }
        try await pool.withConnection { connection in
            try await connection.execute(unsafeSQL: "CREATE TEMP TABLE p (id int PRIMARY KEY, label text)")
            let inserts: [PGQuery] = (0..<1000).map { "INSERT INTO p VALUES (\($0), \("label \($0)"))" }
            let results = try await connection.pipeline(inserts + ["SELECT count(*) FROM p"])
            #expect(results.count == 1001)
            #expect(results[0].affectedRows == 1)
            #expect(try results[1000].scalar(Int.self) == 1000)
            // A failure in the middle rolls back the whole batch and names the error.
            let failing: [PGQuery] = [
                "INSERT INTO p VALUES (\(5000), \("x"))", "INSERT INTO p VALUES (\(1), \("dup"))", "INSERT INTO p VALUES (\(5001), \("y"))",
            ]
            do {
                try await connection.pipeline(failing)
                Issue.record("the duplicate must fail")
            } catch let error as PGError {
                #expect(error.sqlState == "23505")
            }
            #expect(try await connection.query("SELECT count(*) FROM p").scalar(Int.self) == 1000)
            // The connection is still usable and outside pipeline mode.
            #expect(try await connection.query("SELECT \(41) + 1").scalar(Int.self) == 42)
            // Prepared already: the same batch again runs on the I/O loop, with the same results.
            let again = try await connection.pipeline(["SELECT count(*) FROM p", "SELECT \(7) + 1", "SELECT label FROM p WHERE id = \(3)"])
            let onLoop = try await connection.pipeline(["SELECT count(*) FROM p", "SELECT \(8) + 1", "SELECT label FROM p WHERE id = \(4)"])
            #expect(try again[0].scalar(Int.self) == 1000 && onLoop[0].scalar(Int.self) == 1000)
            #expect(try onLoop[1].scalar(Int.self) == 9)
            #expect(try onLoop[2].scalar(String.self) == "label 4")
            // Large pipelines do not deadlock on full socket buffers.
            let big = String(repeating: "z", count: 2000)
            let many: [PGQuery] = (0..<3000).map { "SELECT \($0), \(big)" }
            let bigResults = try await connection.pipeline(many)
            #expect(try bigResults[2999].first((Int, String).self)?.0 == 2999)
        }
    }

    @Test func closedPoolRefusesWork() async throws {
        let pool = try ownerPool(maxConnections: 1)
        #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
        await pool.close()
        do {
            try await pool.query("SELECT 1")
            Issue.record("a closed pool must refuse")
        } catch let error as PGError {
            #expect(error.kind == .poolClosed)
        }
    }
}

@Suite("Connection settings and failures")
struct ConnectionFailureTests {
    @Test func malformedURLIsRejectedUpFront() {
        for url in ["", "postgresql://[::1", "not a url", "postgresql://host/db?unknownoption=1"] {
            do {
                _ = try PGConfiguration(url: url)
                Issue.record("\(url) must be rejected")
            } catch let error as PGError {
                #expect(error.kind == .invalidConfiguration)
                #expect(!error.message.isEmpty)
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test func wrongPasswordIsNamed() async throws {
        let url = try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL")
        var parts = try PGConfiguration.url(url, replacingDatabase: "accord")
        parts += " password='definitely-wrong'"
        let pool = PGPool(configuration: try PGConfiguration(url: parts, maxConnections: 1))
        do {
            try await pool.query("SELECT 1")
            Issue.record("a wrong password must fail")
        } catch let error as PGError {
            #expect(error.kind == .connection)
            #expect(error.sqlState == PGError.Code.invalidPassword)
            #expect(error.message.contains("password authentication failed"))
            #expect(!error.message.contains("definitely-wrong"))
        }
        #expect(pool.statistics.open == 0)
    }

    @Test func unreachableServerFailsQuickly() async throws {
        let pool = PGPool(
            configuration: try PGConfiguration(url: "postgresql://nobody@127.0.0.1:1/none", maxConnections: 1, connectTimeoutSeconds: 2))
        let started = ContinuousClock.now
        do {
            try await pool.query("SELECT 1")
            Issue.record("port 1 must refuse")
        } catch let error as PGError {
            #expect(error.kind == .connection)
            #expect(error.message.contains("127.0.0.1:1"))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func tlsWhenTheURLAsksForIt() async throws {
        let url = try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL")
        let host = PGConfiguration.option("host", in: url) ?? ""
        try #require(host.hasPrefix("127.") || host == "localhost", "TLS is checked against the private server")
        let tls = try PGConfiguration.url(url, replacingDatabase: "accord") + " sslmode='require'"
        let pool = PGPool(configuration: try PGConfiguration(url: tls, maxConnections: 1))
        defer { Task { await pool.close() } }
        let encrypted = try await pool.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar(Bool.self)
        #expect(encrypted)
    }
}

@Suite("Prepared statements")
struct PreparedStatementTests {
    @Test func aTableChangedUnderACachedStatementIsPreparedAgain() async throws {
        let pool = try ownerPool(maxConnections: 1)
        defer { Task { await pool.close() } }
        try await pool.withConnection { connection in
            try await connection.execute(unsafeSQL: "CREATE TEMP TABLE changing (id int, name text)")
            try await connection.query("INSERT INTO changing VALUES (\(1), \("a"))")
            let before = try await connection.query("SELECT * FROM changing WHERE id = \(1)")
            #expect(before.columns.count == 2)
            // A migration adds a column while the statement is cached.
            try await connection.execute(unsafeSQL: "ALTER TABLE changing ADD COLUMN extra text DEFAULT 'x'")
            let after = try await connection.query("SELECT * FROM changing WHERE id = \(1)")
            #expect(after.columns.map(\.name) == ["id", "name", "extra"])
            #expect(try after.first((Int, String, String).self)?.2 == "x")
        }
    }
}
