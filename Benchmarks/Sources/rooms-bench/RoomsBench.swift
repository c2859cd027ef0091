import ArgumentParser
import Dispatch
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The load generator of `Benchmarks/rooms` (see Benchmarks/README.md): room sockets over real TCP
/// with the WebSocket client of the Hummingbird project, against `accord serve`.
@main
struct RoomsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rooms-bench", abstract: "Room socket benchmarks.", subcommands: [Sockets.self, Fanout.self, Sends.self])
}

/// Nanoseconds on a clock every socket of this process shares.
func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

/// `(room, token)` pairs, one per line.
func readPairs(_ path: String) throws -> [(room: String, token: String)] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
        let parts = line.split(separator: " ")
        return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
    }
}

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
}

/// CPU seconds this process has used (user and system).
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Resident memory of a process, in KiB.
func residentKiB(of pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
}

/// One socket: counts what it is sent, hands `message` frames to `onMessage` (raw text), and
/// sends what `send` is given. Connected when `hello` arrived.
final class BenchSocket: Sendable {
    private let outgoing: AsyncStream<String>.Continuation
    private let box = Box()
    private let task: Task<Void, Never>

    init(url: String, token: String, onText: @escaping @Sendable (String) -> Void) {
        let (stream, outgoing) = AsyncStream.makeStream(of: String.self)
        self.outgoing = outgoing
        let box = self.box
        task = Task {
            do {
                try await WebSocketClient.connect(
                    url: url, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: [.authorization: "Bearer \(token)"]),
                    logger: Logger(label: "bench")
                ) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { for await text in stream { try await outbound.write(.text(text)) } }
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            if case .text(let text) = message {
                                if text.contains(#""type":"hello""#) { box.markOpen() }
                                onText(text)
                            }
                        }
                        group.cancelAll()
                    }
                }
            } catch {
                box.fail("\(error)")
            }
        }
    }

    final class Box: Sendable {
        let state = Mutex<(open: Bool, failure: String?)>((false, nil))
        func markOpen() { state.withLock { $0.open = true } }
        func fail(_ text: String) { state.withLock { $0.failure = text } }
    }

    var isOpen: Bool { box.state.withLock { $0.open } }
    var failed: String? { box.state.withLock { $0.failure } }

    func send(_ text: String) { outgoing.yield(text) }

    func close() {
        outgoing.finish()
        task.cancel()
    }
}

/// Opens sockets, at most `parallel` handshakes at a time, and waits for every hello.
func openAll(
    _ specs: [(url: String, token: String)], parallel: Int = 100, onText: @escaping @Sendable (Int, String) -> Void
) async throws
    -> [BenchSocket]
{
    var sockets: [BenchSocket] = []
    for (index, spec) in specs.enumerated() {
        sockets.append(BenchSocket(url: spec.url, token: spec.token) { onText(index, $0) })
        if sockets.count % parallel == 0 { try await waitOpen(Array(sockets.suffix(parallel))) }
    }
    try await waitOpen(sockets)
    return sockets
}

func waitOpen(_ sockets: [BenchSocket]) async throws {
    let deadline = ContinuousClock.now + .seconds(120)
    while !sockets.allSatisfy(\.isOpen) {
        if let failure = sockets.lazy.compactMap(\.failed).first { throw ValidationError("a socket failed: \(failure)") }
        guard ContinuousClock.now < deadline else { throw ValidationError("sockets did not open within 120 s") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// The send time carried in a benchmark message's body: `"body":"bench <ns> …"`.
func sentAt(_ text: String) -> UInt64? {
    guard text.contains(#""type":"message""#), let range = text.range(of: #""body":"bench "#) else { return nil }
    var value: UInt64 = 0
    for character in text[range.upperBound...] {
        guard let digit = character.wholeNumberValue else { break }
        value = value * 10 + UInt64(digit)
    }
    return value
}

struct Sockets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open many sockets; report the server's resident memory per socket.")
    @Option(help: "ws://host:port of the server.") var url: String
    @Option(help: "File of `room token` lines, one socket each.") var pairs: String
    @Option(help: "The server's process id (its /proc/PID/status is read).") var serverPid: Int32

    func run() async throws {
        let pairs = try readPairs(pairs)
        let before = residentKiB(of: serverPid)
        let started = ContinuousClock.now
        let sockets = try await openAll(pairs.map { ("\(url)/v1/rooms/\($0.room)/socket", $0.token) }) { _, _ in }
        let opened = ContinuousClock.now - started
        try await Task.sleep(for: .seconds(5))
        let after = residentKiB(of: serverPid)
        let perSocket = Double(after - before) / Double(sockets.count)
        print(
            "sockets=\(sockets.count) open_seconds=\(String(format: "%.1f", opened.seconds)) rss_before_kib=\(before) rss_after_kib=\(after) kib_per_socket=\(String(format: "%.1f", perSocket))"
        )
        for socket in sockets { socket.close() }
    }
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A room's members receive messages sent at a steady rate: send-to-receipt latency.")
    @Option(help: "ws://host:port of the servers; receivers are spread over them, senders use the first.") var url: [String]
    @Option(help: "The room.") var room: String
    @Option(help: "File of receiver tokens, one per line.") var receivers: String
    @Option(help: "File of sender tokens (each sends at most 20 a second), one per line.") var senders: String
    @Option(help: "Messages per second in all.") var rate = 200
    @Option(help: "Seconds of sending.") var seconds = 10

    func run() async throws {
        let receiverTokens = try String(contentsOfFile: receivers, encoding: .utf8).split(separator: "\n").map(String.init)
        let senderTokens = try String(contentsOfFile: senders, encoding: .utf8).split(separator: "\n").map(String.init)
        let perSender = Double(rate) / Double(senderTokens.count)
        guard perSender <= 20 else { throw ValidationError("\(rate)/s needs at least \(rate / 20) senders") }
        let latencies = Shared<[UInt64]>([])
        latencies.withLock { $0.reserveCapacity(rate * seconds * receiverTokens.count) }
        let specs = receiverTokens.enumerated().map { ("\(url[$0.offset % url.count])/v1/rooms/\(room)/socket", $0.element) }
        let receiving = try await openAll(specs) { _, text in
            if let sent = sentAt(text) { latencies.withLock { $0.append(now() - sent) } }
        }
        let sending = try await openAll(senderTokens.map { ("\(url[0])/v1/rooms/\(room)/socket", $0) }) { _, _ in }
        log("\(receiving.count) receivers and \(sending.count) senders open; sending \(rate)/s for \(seconds) s")
        let interval = Duration.nanoseconds(Int64(1e9 / perSender))
        let cpuBefore = cpuSeconds()
        let sent = Shared(0)
        let runID = UUID().uuidString.prefix(8)
        await withTaskGroup(of: Void.self) { group in
            for (index, sender) in sending.enumerated() {
                group.addTask {
                    var next = ContinuousClock.now + interval * Double(index) / Double(sending.count)
                    let end = ContinuousClock.now + .seconds(seconds)
                    var count = 0
                    while next < end {
                        try? await Task.sleep(until: next)
                        count += 1
                        sender.send(#"{"type":"send","clientId":"\#(runID)-\#(index)-\#(count)","body":"bench \#(now()) x"}"#)
                        next += interval
                    }
                    sent.withLock { $0 += count }
                }
            }
        }
        let expected = sent.withLock { $0 } * receiverTokens.count
        let drainEnd = ContinuousClock.now + .seconds(10)
        while latencies.withLock({ $0.count }) < expected, ContinuousClock.now < drainEnd { try await Task.sleep(for: .milliseconds(100)) }
        let sorted = latencies.withLock { $0 }.sorted()
        print(
            "receivers=\(receiving.count) instances=\(url.count) rate=\(rate) seconds=\(seconds) receipts=\(sorted.count) expected=\(expected) "
                + "p50_ms=\(String(format: "%.1f", percentile(sorted, 0.5))) p99_ms=\(String(format: "%.1f", percentile(sorted, 0.99))) "
                + "max_ms=\(String(format: "%.1f", percentile(sorted, 1.0))) client_cpu_seconds=\(String(format: "%.1f", cpuSeconds() - cpuBefore))")
        for socket in receiving + sending { socket.close() }
    }
}

struct Sends: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sends through one instance at rising load: sends per second and ack latency (each step opens its own sockets).")
    @Option(help: "ws://host:port of the server.") var url: String
    @Option(help: "File of `room token` lines, one sender socket each (at most 20 sends a second).") var pairs: String
    @Option(help: "Seconds per step.") var seconds = 8

    func run() async throws {
        let pairs = try readPairs(pairs)
        let acks = Shared<[String: UInt64]>([:])
        let latencies = Shared<[UInt64]>([])
        var best = 0.0
        for connections in [5, 10, 20, 40, 50, 60, 70, 80, 100, 120, 160, 320, 640] where connections <= pairs.count {
            let sockets = try await openAll(pairs.prefix(connections).map { ("\(url)/v1/rooms/\($0.room)/socket", $0.token) }) { _, text in
                guard text.contains(#""type":"ack""#), let range = text.range(of: #""clientId":""#) else { return }
                let id = String(text[range.upperBound...].prefix { $0 != "\"" })
                if let sent = acks.withLock({ $0.removeValue(forKey: id) }) { latencies.withLock { $0.append(now() - sent) } }
            }
            latencies.withLock { $0.removeAll() }
            let started = ContinuousClock.now
            await withTaskGroup(of: Void.self) { group in
                for (index, socket) in sockets.enumerated() {
                    group.addTask {
                        let interval = Duration.milliseconds(50)  // 20 a second: the protocol's limit
                        var next = ContinuousClock.now + interval * Double(index) / Double(connections)
                        let end = ContinuousClock.now + .seconds(seconds)
                        var count = 0
                        while next < end {
                            try? await Task.sleep(until: next)
                            count += 1
                            let id = "s\(connections)-\(index)-\(count)-\(UUID().uuidString.prefix(6))"
                            acks.withLock { $0[id] = now() }
                            socket.send(#"{"type":"send","clientId":"\#(id)","body":"load"}"#)
                            next += interval
                        }
                    }
                }
            }
            try await Task.sleep(for: .seconds(2))
            let elapsed = (ContinuousClock.now - started).seconds - 2
            let sorted = latencies.withLock { $0 }.sorted()
            let perSecond = Double(sorted.count) / elapsed
            let p99 = percentile(sorted, 0.99)
            print(
                "connections=\(connections) offered=\(connections * 20)/s acked_per_second=\(String(format: "%.0f", perSecond)) "
                    + "p50_ms=\(String(format: "%.1f", percentile(sorted, 0.5))) p99_ms=\(String(format: "%.1f", p99))")
            for socket in sockets { socket.close() }
            acks.withLock { $0.removeAll() }
            if p99 <= 100 { best = max(best, perSecond) } else { break }
            try await Task.sleep(for: .seconds(2))
        }
        print("best_sends_per_second_p99_under_100ms=\(String(format: "%.0f", best))")
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// State that sockets' tasks share.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result { value.withLock { body(&$0) } }
}
