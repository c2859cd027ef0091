import Foundation

/// The Markdown tables: reads with ratios against postgres-nio and pgbench at the same
/// concurrency, inserts with the ratio against one-by-one, and the targets.
///
/// A read case may have run in several rounds (`./run` interleaves them: pgbench, then the Swift
/// cases, again and again, so that a change in the machine's load between a baseline and a client
/// hits both). The k-th result of a client pairs with the k-th of pgbench at the same
/// concurrency; a ratio to pgbench is the median of the per-round ratios, and each client's row
/// shows its median round.
enum Report {
    static let readOrder = ["pgbench", "postgres-nio", "postgres-nio-prepared", "pgstore", "pgstore-executors"]
    static let clientNames = [
        "pgbench": "pgbench -M prepared -S", "postgres-nio": "postgres-nio `PostgresClient.query`",
        "postgres-nio-prepared": "postgres-nio prepared statement", "pgstore": "**PGStore** `pool.query`",
        "pgstore-executors": "**PGStore** `pool.query`, tasks on `pool.executors`",
        "one-by-one": "one round trip each, in `withTransaction`", "pipelined": "**`conn.pipeline`**, one round trip",
    ]
    /// PGStore's read cases, with their label in the targets.
    static let pgstoreCases = [("pgstore", "PGStore"), ("pgstore-executors", "PGStore on `pool.executors`")]

    static func markdown(_ results: [CaseResult], rows: Int) -> String {
        var out = ""
        let reads = results.filter { $0.kind == .read }
        let inserts = results.filter { $0.kind == .insert }
        func rounds(_ client: String, _ concurrency: Int) -> [CaseResult] {
            reads.filter { $0.client == client && $0.concurrency == concurrency }
        }
        /// The client's median round (the lower middle one of an even count).
        func find(_ client: String, _ concurrency: Int) -> CaseResult? {
            let sorted = rounds(client, concurrency).sorted { $0.opsPerSecond < $1.opsPerSecond }
            return sorted.isEmpty ? nil : sorted[(sorted.count - 1) / 2]
        }
        /// The client's throughput over pgbench's, round by round.
        func ratiosToPgbench(_ client: String, _ concurrency: Int) -> [Double] {
            zip(rounds(client, concurrency), rounds("pgbench", concurrency)).compactMap { result, baseline in
                baseline.opsPerSecond > 0 ? result.opsPerSecond / baseline.opsPerSecond : nil
            }
        }
        func toPgbench(_ client: String, _ concurrency: Int) -> String {
            Self.median(ratiosToPgbench(client, concurrency)).map { String(format: "%.2f×", $0) } ?? "—"
        }
        let concurrencies = Array(Set(reads.map(\.concurrency))).sorted()
        if !reads.isEmpty {
            out += "### One-row primary-key read (`SELECT abalance FROM pgbench_accounts WHERE aid = $1`)\n\n"
            out += "| client | tasks | rounds | queries/s | p50 µs | p99 µs | mean µs | errors | ÷ postgres-nio | ÷ pgbench |\n"
            out += "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
            for concurrency in concurrencies {
                let nio = find("postgres-nio", concurrency)
                let pgbench = find("pgbench", concurrency)
                let clients = reads.filter { $0.concurrency == concurrency }.map(\.client)
                let ordered = readOrder.filter(clients.contains) + clients.filter { !readOrder.contains($0) }
                for client in ordered {
                    guard let result = find(client, concurrency) else { continue }
                    let errors = rounds(client, concurrency).reduce(0) { $0 + $1.errors }
                    out += "| \(clientNames[client] ?? client) | \(concurrency) | \(rounds(client, concurrency).count) | "
                    out += "\(grouped(result.opsPerSecond)) | \(micro(result.p50)) | \(micro(result.p99)) | \(micro(result.mean)) | \(errors) | "
                    out += "\(ratio(result, nio)) | \(client == "pgbench" ? ratio(result, pgbench) : toPgbench(client, concurrency)) |\n"
                }
            }
            out += "\n"
            // Round by round, where there was more than one.
            for concurrency in concurrencies where rounds("pgbench", concurrency).count > 1 {
                let clients = pgstoreCases.map(\.0).filter { !rounds($0, concurrency).isEmpty }
                out += "Round by round at \(concurrency) task\(concurrency == 1 ? "" : "s") (pgbench, then each client):\n\n"
                out += "| round | pgbench queries/s | " + clients.map { "\(clientNames[$0] ?? $0) ÷ pgbench" }.joined(separator: " | ") + " |\n"
                out += "|--:|--:|" + String(repeating: "--:|", count: clients.count) + "\n"
                let ratios = clients.map { ratiosToPgbench($0, concurrency) }
                for (index, baseline) in rounds("pgbench", concurrency).enumerated() {
                    out += "| \(index + 1) | \(grouped(baseline.opsPerSecond)) | "
                    out += ratios.map { index < $0.count ? String(format: "%.2f×", $0[index]) : "—" }.joined(separator: " | ") + " |\n"
                }
                out += "\n"
            }
        }
        let oneByOne = inserts.last { $0.client == "one-by-one" }
        let pipelined = inserts.last { $0.client == "pipelined" }
        if !inserts.isEmpty {
            out += "### \(grouped(Double(rows))) INSERTs in one transaction (`bench_inserts`)\n\n"
            out += "| mode | batches/s | rows/s | p50 ms | p99 ms | errors | ÷ one-by-one |\n"
            out += "|---|--:|--:|--:|--:|--:|--:|\n"
            for result in [oneByOne, pipelined].compactMap({ $0 }) {
                out += "| \(clientNames[result.client] ?? result.client) | \(String(format: "%.1f", result.opsPerSecond)) | "
                out += "\(grouped(result.opsPerSecond * Double(rows))) | \(milli(result.p50)) | \(milli(result.p99)) | "
                out += "\(result.errors) | \(ratio(result, oneByOne)) |\n"
            }
            out += "\n"
        }
        var targets: [(String, Double?, String)] = []
        for concurrency in concurrencies {
            for (client, label) in pgstoreCases {
                guard let pgstore = find(client, concurrency) else { continue }
                let target16 = concurrency == 16
                let tasks = "\(concurrency) task\(concurrency == 1 ? "" : "s")"
                if let nio = find("postgres-nio", concurrency) {
                    targets.append(("\(label) ÷ postgres-nio, \(tasks)", pgstore.opsPerSecond / nio.opsPerSecond, target16 ? "≥ 1.2×" : "—"))
                }
                let ratios = ratiosToPgbench(client, concurrency)
                if let median = Self.median(ratios) {
                    let range =
                        ratios.count > 1 ? String(format: " (median of %d rounds, %.2f–%.2f×)", ratios.count, ratios.min()!, ratios.max()!) : ""
                    targets.append(("\(label) ÷ pgbench, \(tasks)\(range)", median, target16 ? "≥ 0.8×" : "—"))
                }
            }
        }
        if let oneByOne, let pipelined {
            targets.append(("pipelined ÷ one-by-one", pipelined.opsPerSecond / oneByOne.opsPerSecond, "≥ 3×"))
        }
        if !targets.isEmpty {
            out += "### Ratios and targets\n\n| ratio | measured | target | |\n|---|--:|--:|---|\n"
            for (name, value, target) in targets {
                var verdict = ""
                if let value, let threshold = Double(target.filter { $0.isNumber || $0 == "." }), target != "—" {
                    verdict = value >= threshold ? "met" : "**not met**"
                }
                out += "| \(name) | \(value.map { String(format: "%.2f×", $0) } ?? "—") | \(target) | \(verdict) |\n"
            }
            out += "\n"
        }
        let failures = results.filter { $0.errors > 0 }
        for failure in failures {
            out += "Errors in \(failure.client) at \(failure.concurrency): \(failure.errors)"
            if let first = failure.firstError { out += ", first: `\(first)`" }
            out += "\n"
        }
        return out
    }

    /// The middle value (the mean of the two middle ones of an even count).
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    static func ratio(_ result: CaseResult, _ baseline: CaseResult?) -> String {
        guard let baseline, baseline.opsPerSecond > 0 else { return "—" }
        return String(format: "%.2f×", result.opsPerSecond / baseline.opsPerSecond)
    }

    static func micro(_ value: Double?) -> String {
        guard let value else { return "—" }
        return value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }

    static func milli(_ value: Double?) -> String {
        guard let value else { return "—" }
        return String(format: "%.2f", value / 1000)
    }

    /// 12345.6 -> "12,346".
    static func grouped(_ value: Double) -> String {
        let digits = String(Int(value.rounded()))
        var out = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0, index % 3 == 0, character != "-" { out.append(",") }
            out.append(character)
        }
        return String(out.reversed())
    }
}
