import ArgumentParser
import Foundation
import PGStore

@main
struct PGStoreBench: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "pgstore-bench",
            abstract: "PGStore vs postgres-nio (one-row primary-key reads) and pipelined vs one-by-one inserts.",
            discussion: """
                The database must hold pgbench's tables at --scale (pgbench -i -s SCALE); ./run sets it up, \
                runs pgbench itself and prints the combined summary.
                """
        )
    }

    @Option(help: "A libpq URL of the server (default: $ACCORD_MIGRATION_DATABASE_URL); its database is replaced by --database.")
    var url: String?

    @Option(help: "The benchmark database (holds pgbench_accounts; bench_inserts is created there). Empty: the URL's own.")
    var database = "accord_bench"

    @Option(help: "Seconds measured per case.")
    var duration = 10.0

    @Option(help: "Seconds of warm-up before each case (not counted).")
    var warmup = 2.0

    @Option(help: "Comma-separated numbers of concurrent tasks for the read cases; each client gets a pool of that size.")
    var concurrency = "1,16"

    @Option(help: "pgbench scale factor of the database (aids are drawn from 1...100000*scale).")
    var scale = 10

    @Option(
        help: "Comma-separated cases: postgres-nio, postgres-nio-prepared, pgstore, pgstore-executors (the tasks on the pool's executors), inserts.")
    var cases = "postgres-nio,postgres-nio-prepared,pgstore,pgstore-executors,inserts"

    @Option(help: "INSERTs per batch in the insert cases.")
    var rows = 1000

    @Option(help: "Append the results as tab-separated lines to this file.")
    var tsv: String?

    @Option(help: "Print the summary of a TSV file written by --tsv (and ./run) and exit; runs nothing.")
    var report: String?

    func run() async throws {
        if let report {
            let text = try String(contentsOfFile: report, encoding: .utf8)
            let results = text.split(separator: "\n").compactMap(CaseResult.init(tsv:))  // the header line does not parse
            print(Report.markdown(results, rows: rows), terminator: "")
            return
        }
        guard let base = url ?? ProcessInfo.processInfo.environment["ACCORD_MIGRATION_DATABASE_URL"] else {
            throw ValidationError("no --url and no ACCORD_MIGRATION_DATABASE_URL (eval \"$(Deploy/local/env)\")")
        }
        let url = database.isEmpty ? base : try PGConfiguration.url(base, replacingDatabase: database)
        let levels = try concurrency.split(separator: ",").map { part -> Int in
            guard let level = Int(part.trimmingCharacters(in: .whitespaces)), level > 0 else {
                throw ValidationError("--concurrency takes positive numbers, like 1,16")
            }
            return level
        }
        let selected = Set(cases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let known: Set = ["postgres-nio", "postgres-nio-prepared", "pgstore", "pgstore-executors", "inserts"]
        guard selected.isSubset(of: known) else {
            throw ValidationError("unknown case \(selected.subtracting(known).sorted()); known: \(known.sorted())")
        }
        let warmup = Duration.milliseconds(Int(self.warmup * 1000))
        let duration = Duration.milliseconds(Int(self.duration * 1000))
        let maxAid = 100_000 * scale
        let redacted = (try? PGConfiguration(url: url).redactedURL) ?? "?"

        var results: [CaseResult] = []
        func record(_ result: CaseResult) {
            results.append(result)
            let unit = result.kind == .read ? "queries/s" : "batches/s"
            log(
                "  \(result.client) @\(result.concurrency): \(String(format: "%.1f", result.opsPerSecond)) \(unit), "
                    + "p50 \(Report.micro(result.p50)) µs, p99 \(Report.micro(result.p99)) µs, errors \(result.errors)")
        }

        if !selected.subtracting(["inserts"]).isEmpty {
            try await checkScale(url: url, maxAid: maxAid)
            for level in levels {
                log("reads on \(redacted), \(level) task(s), \(self.warmup) s warm-up + \(self.duration) s")
                if selected.contains("postgres-nio") {
                    record(try await Reads.postgresNIO(url: url, concurrency: level, warmup: warmup, duration: duration, maxAid: maxAid))
                }
                if selected.contains("postgres-nio-prepared") {
                    record(try await Reads.postgresNIOPrepared(url: url, concurrency: level, warmup: warmup, duration: duration, maxAid: maxAid))
                }
                if selected.contains("pgstore") {
                    record(try await Reads.pgstore(url: url, concurrency: level, warmup: warmup, duration: duration, maxAid: maxAid))
                }
                if selected.contains("pgstore-executors") {
                    record(
                        try await Reads.pgstore(
                            url: url, concurrency: level, warmup: warmup, duration: duration, maxAid: maxAid, onPoolExecutors: true))
                }
            }
        }
        if selected.contains("inserts") {
            log("inserts on \(redacted): \(rows) per batch, \(self.warmup) s warm-up + \(self.duration) s per mode")
            for result in try await Inserts.run(url: url, rows: rows, warmup: warmup, duration: duration) { record(result) }
        }

        print(Report.markdown(results, rows: rows), terminator: "")
        if let tsv {
            var text = FileManager.default.fileExists(atPath: tsv) ? "" : CaseResult.tsvHeader + "\n"
            for result in results { text += result.tsv + "\n" }
            if let handle = FileHandle(forWritingAtPath: tsv) {
                handle.seekToEndOfFile()
                handle.write(Data(text.utf8))
                try handle.close()
            } else {
                try text.write(toFile: tsv, atomically: true, encoding: .utf8)
            }
        }
    }

    /// Fails early, with a hint, when pgbench's tables are missing or of another scale.
    func checkScale(url: String, maxAid: Int) async throws {
        let pool = PGPool(configuration: try PGConfiguration(url: url, maxConnections: 1, applicationName: "pgstore-bench"))
        let highest: Int?
        do {
            highest = try await pool.query("SELECT max(aid) FROM pgbench_accounts").scalar(Int?.self)
            await pool.close()
        } catch {
            await pool.close()
            throw ValidationError("cannot read pgbench_accounts (\(error)); set the database up with ./run or pgbench -i -s \(scale)")
        }
        guard highest == maxAid else {
            throw ValidationError("pgbench_accounts goes up to aid \(highest.map(String.init) ?? "none"), not \(maxAid): pass the right --scale")
        }
    }
}
