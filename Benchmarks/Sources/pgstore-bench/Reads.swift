import Foundation
import PGStore
import PostgresNIO

/// The read cases: `concurrency` tasks, each looping one-row primary-key SELECTs with random aids.
enum Reads {
    static let sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"

    /// Runs `query` in `concurrency` tasks for `warmup` + `duration`; counts and times the queries
    /// that start and finish inside the measurement window. Task `i` draws its aids from the same
    /// seeded sequence for every client, and prefers `executors[i % count]` when there are any.
    /// `query` is `nonisolated(nonsending)`: each call runs on its task's executor, with no executor
    /// switch of the harness's own per query, for every client alike.
    static func measure(
        concurrency: Int, warmup: Duration, duration: Duration, maxAid: Int,
        executors: [any TaskExecutor] = [],
        _ query: nonisolated(nonsending) @escaping @Sendable (Int32) async throws -> Int
    ) async -> Sample {
        let clock = ContinuousClock()
        let start = clock.now
        let measureFrom = start + warmup
        let end = measureFrom + duration
        return await withTaskGroup(of: Sample.self) { group in
            for index in 0..<concurrency {
                group.addTask(executorPreference: executors.isEmpty ? nil : executors[index % executors.count]) {
                    var random = SplitMix64(seed: UInt64(index + 1))
                    var sample = Sample()
                    sample.latencies.reserveCapacity(1 << 17)
                    while true {
                        let aid = Int32(Int(random.next() % UInt64(maxAid)) + 1)
                        let began = clock.now
                        if began >= end { break }
                        do {
                            let balance = try await query(aid)
                            let finished = clock.now
                            if began >= measureFrom, finished <= end {
                                sample.latencies.append((finished - began).nanoseconds)
                            }
                            sample.checksum &+= balance
                        } catch {
                            sample.fail(error)
                            if sample.errors >= 100 { break }
                        }
                    }
                    return sample
                }
            }
            var total = Sample()
            for await sample in group { total.merge(sample) }
            return total
        }
    }

    /// PGStore's `pool.query`; with `onPoolExecutors` the tasks prefer the pool's I/O loops
    /// (`PGPool.executors`), otherwise they run on the global executor.
    static func pgstore(
        url: String, concurrency: Int, warmup: Duration, duration: Duration, maxAid: Int, onPoolExecutors: Bool = false
    ) async throws -> CaseResult {
        let pool = PGPool(configuration: try PGConfiguration(url: url, maxConnections: concurrency, applicationName: "pgstore-bench"))
        let sample = await withWatchdog(
            "pgstore read at \(concurrency) tasks", limit: warmup + duration + .seconds(30),
            diagnostics: { "pool statistics \(pool.statistics)" }
        ) {
            await measure(
                concurrency: concurrency, warmup: warmup, duration: duration, maxAid: maxAid,
                executors: onPoolExecutors ? pool.executors : []
            ) { aid in
                try await pool.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(aid)").scalar(Int.self)
            }
        }
        await pool.close()
        return CaseResult(
            kind: .read, client: onPoolExecutors ? "pgstore-executors" : "pgstore", concurrency: concurrency, sample: sample, window: duration)
    }

    /// postgres-nio's `PostgresClient.query`: one round trip of Parse/Bind/Describe/Execute/Sync
    /// with the unnamed statement (what an application writes by default).
    static func postgresNIO(url: String, concurrency: Int, warmup: Duration, duration: Duration, maxAid: Int) async throws -> CaseResult {
        let client = PostgresClient(configuration: try clientConfiguration(url: url, maxConnections: concurrency))
        let sample = await withTaskGroup(of: Void.self, returning: Sample.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return await withWatchdog("postgres-nio read at \(concurrency) tasks", limit: warmup + duration + .seconds(30)) {
                await measure(concurrency: concurrency, warmup: warmup, duration: duration, maxAid: maxAid) { aid in
                    let rows = try await client.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(aid)")
                    var balance = 0
                    for try await value in rows.decode(Int.self) { balance = value }
                    return balance
                }
            }
        }
        return CaseResult(kind: .read, client: "postgres-nio", concurrency: concurrency, sample: sample, window: duration)
    }

    struct BalanceStatement: PostgresPreparedStatement {
        static let name = "bench_balance"
        static let sql = Reads.sql
        typealias Row = Int
        var aid: Int32
        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings()
            bindings.append(aid)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
    }

    /// postgres-nio's `PostgresClient.execute(PostgresPreparedStatement)`: a named statement
    /// prepared once per connection (informational: the like-for-like of PGStore and pgbench -M prepared).
    static func postgresNIOPrepared(url: String, concurrency: Int, warmup: Duration, duration: Duration, maxAid: Int) async throws -> CaseResult {
        let client = PostgresClient(configuration: try clientConfiguration(url: url, maxConnections: concurrency))
        let sample = await withTaskGroup(of: Void.self, returning: Sample.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return await withWatchdog("postgres-nio prepared read at \(concurrency) tasks", limit: warmup + duration + .seconds(30)) {
                await measure(concurrency: concurrency, warmup: warmup, duration: duration, maxAid: maxAid) { aid in
                    var balance = 0
                    for try await value in try await client.execute(BalanceStatement(aid: aid)) { balance = value }
                    return balance
                }
            }
        }
        return CaseResult(kind: .read, client: "postgres-nio-prepared", concurrency: concurrency, sample: sample, window: duration)
    }

    /// A `PostgresClient` configuration for the same server, role and database as `url`.
    static func clientConfiguration(url: String, maxConnections: Int) throws -> PostgresClient.Configuration {
        func option(_ name: String) -> String? {
            guard let value = PGConfiguration.option(name, in: url), !value.isEmpty else { return nil }
            return value
        }
        guard let user = option("user") else { throw BenchError("the database URL names no user") }
        let password = option("password")
        let database = option("dbname") ?? user
        let host = option("host") ?? "localhost"
        var configuration: PostgresClient.Configuration
        if host.hasPrefix("/") {
            let port = option("port") ?? "5432"
            configuration = .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS = option("sslmode") == "disable" ? .disable : .prefer(.makeClientConfiguration())
            configuration = .init(
                host: host, port: Int(option("port") ?? "5432") ?? 5432, username: user,
                password: password, database: database, tls: tls)
        }
        configuration.options.maximumConnections = maxConnections
        configuration.options.minimumConnections = 0
        return configuration
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
