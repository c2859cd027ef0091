import Foundation

/// What one case measured: latencies (nanoseconds) of the operations completed inside the
/// measurement window, plus errors.
struct Sample: Sendable {
    var latencies: [Int64] = []
    var errors = 0
    var firstError: String?
    /// Sum of the values read, so that the work cannot be optimised away (and as a sanity check).
    var checksum = 0

    mutating func merge(_ other: Sample) {
        latencies.append(contentsOf: other.latencies)
        errors += other.errors
        if firstError == nil { firstError = other.firstError }
        checksum &+= other.checksum
    }

    /// Counts an error; the first few go to standard error with a timestamp, to match with the server log.
    mutating func fail(_ error: any Error) {
        errors += 1
        let message = String(reflecting: error)
        if firstError == nil { firstError = message }
        if errors <= 5 { log("  error at \(Date()): \(message)") }
    }
}

/// One row of the results: a read case at some concurrency, or an insert mode.
struct CaseResult: Sendable {
    enum Kind: String, Sendable { case read, insert }
    var kind: Kind
    var client: String
    var concurrency: Int
    /// Queries per second (reads) or batches per second (inserts).
    var opsPerSecond: Double
    var count: Int
    var p50: Double?
    var p99: Double?
    var mean: Double?
    var errors: Int
    var firstError: String?

    /// `opsPerSecond` = completed operations / `window` (reads), or / time spent in batches (inserts).
    init(kind: Kind, client: String, concurrency: Int, sample: Sample, window: Duration) {
        self.kind = kind
        self.client = client
        self.concurrency = concurrency
        self.count = sample.latencies.count
        let seconds = window.seconds
        self.opsPerSecond = seconds > 0 ? Double(count) / seconds : 0
        let sorted = sample.latencies.sorted()
        if !sorted.isEmpty {
            p50 = Double(Self.percentile(sorted, 0.50)) / 1000
            p99 = Double(Self.percentile(sorted, 0.99)) / 1000
            mean = Double(sorted.reduce(0, +)) / Double(sorted.count) / 1000
        }
        errors = sample.errors
        firstError = sample.firstError
    }

    init(kind: Kind, client: String, concurrency: Int, opsPerSecond: Double, count: Int, p50: Double?, p99: Double?, mean: Double?, errors: Int) {
        self.kind = kind
        self.client = client
        self.concurrency = concurrency
        self.opsPerSecond = opsPerSecond
        self.count = count
        self.p50 = p50
        self.p99 = p99
        self.mean = mean
        self.errors = errors
    }

    /// Nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [Int64], _ fraction: Double) -> Int64 {
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank - 1, 0), sorted.count - 1)]
    }

    // MARK: TSV (how ./run collects the figures of several invocations and of pgbench)

    static let tsvHeader = "kind\tclient\tconcurrency\tops_per_s\tcount\tp50_us\tp99_us\tmean_us\terrors"

    var tsv: String {
        func field(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "" }
        return [
            kind.rawValue, client, String(concurrency), String(format: "%.1f", opsPerSecond), String(count),
            field(p50), field(p99), field(mean), String(errors),
        ].joined(separator: "\t")
    }

    init?(tsv line: Substring) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 9, let kind = Kind(rawValue: fields[0]), let concurrency = Int(fields[2]),
            let ops = Double(fields[3])
        else { return nil }
        self.init(
            kind: kind, client: fields[1], concurrency: concurrency, opsPerSecond: ops, count: Int(fields[4]) ?? 0,
            p50: Double(fields[5]), p99: Double(fields[6]), mean: Double(fields[7]), errors: Int(fields[8]) ?? 0)
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// SplitMix64: a tiny deterministic generator, so that every client reads the same aids.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Exits the process if `body` has not finished in time: a hang is a result too, and must not
/// stall `./run` forever.
func withWatchdog<T: Sendable>(
    _ label: String, limit: Duration, diagnostics: @escaping @Sendable () -> String = { "" },
    _ body: () async throws -> T
) async rethrows -> T {
    let watchdog = Task.detached {
        try await Task.sleep(for: limit)
        let extra = diagnostics()
        log("error: \(label) did not finish within \(limit)\(extra.isEmpty ? "" : ": " + extra); giving up")
        exit(3)
    }
    defer { watchdog.cancel() }
    return try await body()
}

func log(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
