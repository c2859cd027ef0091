import Foundation
import PGStore

/// The insert cases: `rows` INSERTs in one transaction, one round trip each vs one pipeline.
enum Inserts {
    enum Mode: String, CaseIterable, Sendable {
        /// `conn.withTransaction { tx in for ... { try await tx.query(INSERT) } }`: rows + 2 round trips.
        case oneByOne = "one-by-one"
        /// `conn.pipeline([INSERT, ...])`: one round trip, one implicit transaction (no BEGIN/COMMIT).
        case pipelined
    }

    static func run(url: String, rows: Int, warmup: Duration, duration: Duration) async throws -> [CaseResult] {
        let pool = PGPool(configuration: try PGConfiguration(url: url, maxConnections: 1, applicationName: "pgstore-bench"))
        try await pool.query("CREATE TABLE IF NOT EXISTS bench_inserts (id bigint, label text, created timestamptz)")
        var results: [CaseResult] = []
        for mode in Mode.allCases {
            // One batch takes about `rows` round trips at worst; allow for a slow machine.
            let limit = warmup + duration + .seconds(120)
            let sample = try await withWatchdog("\(mode.rawValue) inserts", limit: limit, diagnostics: { "pool statistics \(pool.statistics)" }) {
                try await pool.withConnection { connection in
                    try await measure(mode, connection: connection, rows: rows, warmup: warmup, duration: duration)
                }
            }
            // Batches per second of time spent in batches (the TRUNCATE between rounds is not timed).
            let busy = Duration.nanoseconds(sample.latencies.reduce(0, +))
            results.append(CaseResult(kind: .insert, client: mode.rawValue, concurrency: 1, sample: sample, window: busy))
        }
        try await pool.query("DROP TABLE IF EXISTS bench_inserts")
        await pool.close()
        return results
    }

    /// Rounds of TRUNCATE (untimed), one batch (timed), row count check (untimed): first for
    /// `warmup`, then for `duration`.
    static func measure(_ mode: Mode, connection: PGConnection, rows: Int, warmup: Duration, duration: Duration) async throws -> Sample {
        let clock = ContinuousClock()
        let measureFrom = clock.now + warmup
        let end = measureFrom + duration
        var sample = Sample()
        var round = 0
        while clock.now < end {
            try await connection.execute(unsafeSQL: "TRUNCATE bench_inserts")
            let base = Int64(round) * Int64(rows)
            round += 1
            let measured = clock.now >= measureFrom
            let began = clock.now
            do {
                try await batch(mode, connection: connection, base: base, rows: rows)
            } catch {
                sample.fail(error)
                if sample.errors >= 10 { break }
                continue
            }
            let elapsed = clock.now - began
            let inserted = try await connection.query("SELECT count(*) FROM bench_inserts").scalar(Int.self)
            if inserted != rows {
                sample.fail(BenchError("\(mode.rawValue): \(inserted) rows in bench_inserts after a batch of \(rows)"))
                continue
            }
            if measured { sample.latencies.append(elapsed.nanoseconds) }
        }
        return sample
    }

    static func batch(_ mode: Mode, connection: PGConnection, base: Int64, rows: Int) async throws {
        let created = Date()
        switch mode {
        case .oneByOne:
            try await connection.withTransaction { tx in
                for index in 0..<rows {
                    let id = base + Int64(index)
                    try await tx.query("INSERT INTO bench_inserts (id, label, created) VALUES (\(id), \("row \(id)"), \(created))")
                }
            }
        case .pipelined:
            var queries: [PGQuery] = []
            queries.reserveCapacity(rows)
            for index in 0..<rows {
                let id = base + Int64(index)
                queries.append("INSERT INTO bench_inserts (id, label, created) VALUES (\(id), \("row \(id)"), \(created))")
            }
            let results = try await connection.pipeline(queries)
            guard results.count == rows, results.allSatisfy({ $0.affectedRows == 1 }) else {
                throw BenchError("pipelined: the pipeline returned \(results.count) results, not \(rows) single-row inserts")
            }
        }
    }
}
