import CLibPQ
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A notification received on a channel (`NOTIFY channel, 'payload'` or `pg_notify`).
public struct PGNotification: Sendable, Hashable {
    public let channel: String
    public let payload: String
    /// The server process that sent it.
    public let senderPID: Int32
}

/// LISTEN on a dedicated connection, with notifications delivered as an `AsyncSequence`.
///
/// The connection waits in `poll` on a thread of its own. A dropped connection is re-opened with
/// backoff and LISTENs again; notifications sent meanwhile are lost. A subscription UNLISTENs when
/// its sequence ends.
public final class PGListener: Service, Sendable {
    private let configuration: PGConfiguration
    private let logger: Logger
    private let shared: Mutex<Shared>
    private let wakeRead: Int32
    private let wakeWrite: Int32

    typealias Continuation = AsyncStream<PGNotification>.Continuation

    enum Command {
        case listen(String, CheckedContinuation<Void, any Error>)
        case unlisten(String)
    }

    struct Shared {
        var subscribers: [String: [UInt64: Continuation]] = [:]
        var commands: [Command] = []
        var nextID: UInt64 = 0
        var stopped = false
        var started = false
        var backendPID: Int32?
        var reconnects = 0
        /// Counts the connections on which every subscribed channel was LISTENed; nil while there
        /// is none.
        var epoch: Int?
        var connections = 0
    }

    public init(configuration: PGConfiguration, logger: Logger = Logger(label: "accord.pgstore.listener")) {
        self.configuration = configuration
        self.logger = logger
        var fds: [Int32] = [0, 0]
        let created = pipe(&fds)
        precondition(created == 0, "cannot create the listener's wake-up pipe")
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        wakeRead = fds[0]
        wakeWrite = fds[1]
        shared = Mutex(Shared())
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// The server process of the current connection, nil while disconnected.
    public var backendPID: Int32? { shared.withLock { $0.backendPID } }

    /// Nil while no connection LISTENs on every subscribed channel; otherwise a number that changes
    /// with each such connection. Notifications can be missed only across a change or a nil.
    public var connectionEpoch: Int? { shared.withLock { $0.epoch } }

    /// How many times the connection was re-established after a loss.
    public var reconnectCount: Int { shared.withLock { $0.reconnects } }

    /// Subscribes to `channel`. Returns once the server LISTENs, so a NOTIFY sent after this returns
    /// is delivered. The sequence ends when the listener shuts down; a consumer that stops iterating
    /// unsubscribes. Up to `bufferSize` notifications are buffered for a slow consumer; older ones
    /// are dropped beyond that.
    public func notifications(channel: String, bufferSize: Int = 10_000) async throws -> AsyncStream<PGNotification> {
        guard !channel.isEmpty, channel.utf8.count <= 63 else {
            throw PGError(.invalidValue, message: "a channel name must have 1 to 63 bytes")
        }
        let (stream, continuation) = AsyncStream<PGNotification>.makeStream(bufferingPolicy: .bufferingNewest(bufferSize))
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, any Error>) in
            let outcome: Result<UInt64, PGError> = shared.withLock { shared in
                if shared.stopped { return .failure(PGError(.poolClosed, message: "the listener is shut down")) }
                shared.nextID += 1
                let id = shared.nextID
                let firstOnChannel = shared.subscribers[channel, default: [:]].isEmpty
                shared.subscribers[channel, default: [:]][id] = continuation
                if firstOnChannel {
                    shared.commands.append(.listen(channel, ready))
                } else {
                    ready.resume()
                }
                if !shared.started {
                    shared.started = true
                    let thread = Thread { [self] in self.loop() }
                    thread.name = "accord-pg-listener"
                    thread.start()
                }
                return .success(id)
            }
            switch outcome {
            case .failure(let error):
                ready.resume(throwing: error)
            case .success(let id):
                continuation.onTermination = { [weak self] _ in self?.unsubscribe(channel: channel, id: id) }
                wake()
            }
        }
        return stream
    }

    private func unsubscribe(channel: String, id: UInt64) {
        let needsWake = shared.withLock { shared -> Bool in
            shared.subscribers[channel]?[id] = nil
            guard shared.subscribers[channel]?.isEmpty ?? false else { return false }
            shared.subscribers[channel] = nil
            shared.commands.append(.unlisten(channel))
            return true
        }
        if needsWake { wake() }
    }

    /// Follows `channel` until graceful shutdown: runs `body` with the notifications and, whenever
    /// the subscription fails or `body` ends, calls `lost` and subscribes again after a backoff
    /// (100 ms doubling up to 5 s). `lost` is where notification-kept state stops trusting itself.
    public func follow(
        channel: String,
        lost: @escaping @Sendable ((any Error)?) -> Void,
        _ body: @escaping @Sendable (AsyncStream<PGNotification>) async throws -> Void
    ) async {
        try? await cancelWhenGracefulShutdown {
            var backoff = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    let notifications = try await self.notifications(channel: channel)
                    backoff = .milliseconds(100)
                    try await body(notifications)
                    lost(nil)
                } catch let error as PGError where error.kind == .poolClosed {
                    lost(nil)
                    break  // the listener is shut down for good
                } catch is CancellationError {
                    lost(nil)
                    break
                } catch {
                    lost(error)
                }
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Runs until graceful shutdown, then stops the listener.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }

    /// Stops the listener thread and ends every subscription.
    public func shutdown() {
        let (continuations, pending) = shared.withLock { shared -> ([Continuation], [Command]) in
            shared.stopped = true
            let all = shared.subscribers.values.flatMap { $0.values }
            shared.subscribers.removeAll()
            let pending = shared.commands
            shared.commands.removeAll()
            return (all, pending)
        }
        for command in pending {
            if case .listen(_, let ready) = command {
                ready.resume(throwing: PGError(.poolClosed, message: "the listener is shut down"))
            }
        }
        continuations.forEach { $0.finish() }
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, 64) > 0 {}
    }

    // MARK: The listener thread

    private func loop() {
        var current: OpaquePointer?
        var listening: Set<String> = []
        var backoff = 0.1
        var hadConnection = false
        defer {
            if let current { PQfinish(current) }
        }
        while true {
            if shared.withLock({ $0.stopped }) { return }

            if current == nil || PQstatus(current) != CONNECTION_OK {
                if let old = current { PQfinish(old) }
                current = nil
                listening.removeAll()
                shared.withLock {
                    $0.backendPID = nil
                    $0.epoch = nil
                }
                do {
                    let opened = try openConnection()
                    current = opened
                    backoff = 0.1
                    let pid = PQbackendPID(opened)
                    shared.withLock {
                        $0.backendPID = pid
                        if hadConnection { $0.reconnects += 1 }
                    }
                    if hadConnection { logger.info("listener reconnected", metadata: ["pid": "\(pid)"]) }
                    hadConnection = true
                    // LISTEN again on every channel that has subscribers.
                    let channels = shared.withLock { Array($0.subscribers.keys) }
                    for channel in channels where execute(opened, "LISTEN \(PGQuery.quoteIdentifier(channel))") {
                        listening.insert(channel)
                    }
                    if listening.count == channels.count {
                        shared.withLock {
                            $0.connections += 1
                            $0.epoch = $0.connections
                        }
                    } else {
                        // A LISTEN failed: start over on a new connection rather than run half-deaf.
                        logger.warning("listener could not LISTEN again; reconnecting", metadata: ["error": "\(PGConnection.errorMessage(opened))"])
                        PQfinish(opened)
                        current = nil
                        waitForWake(seconds: backoff)
                        backoff = min(backoff * 2, 5)
                        continue
                    }
                } catch {
                    logger.warning("listener cannot connect; retrying", metadata: ["error": "\(String(reflecting: error))"])
                    failPendingListens(error)
                    waitForWake(seconds: backoff)
                    backoff = min(backoff * 2, 5)
                    continue
                }
            }
            guard let connection = current else { continue }

            // Commands from subscribers.
            let commands = shared.withLock { shared -> [Command] in
                defer { shared.commands.removeAll() }
                return shared.commands
            }
            for command in commands {
                switch command {
                case .listen(let channel, let ready):
                    if listening.contains(channel) || execute(connection, "LISTEN \(PGQuery.quoteIdentifier(channel))") {
                        listening.insert(channel)
                        ready.resume()
                    } else {
                        ready.resume(throwing: PGError(.connection, message: "LISTEN failed: \(PGConnection.errorMessage(connection))"))
                    }
                case .unlisten(let channel):
                    let stillWanted = shared.withLock { $0.subscribers[channel] != nil }
                    if !stillWanted, listening.remove(channel) != nil {
                        _ = execute(connection, "UNLISTEN \(PGQuery.quoteIdentifier(channel))")
                    }
                }
            }
            deliver(connection)

            // Sleep until the server sends something or a subscriber wakes us.
            var descriptors = [
                pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&descriptors, 2, 30_000)
            if ready < 0 && errno != EINTR { continue }
            if descriptors[1].revents != 0 { drainWake() }
            if descriptors[0].revents != 0 {
                if PQconsumeInput(connection) == 0 {
                    logger.warning("listener connection lost", metadata: ["error": "\(PGConnection.errorMessage(connection))"])
                    shared.withLock { $0.epoch = nil }
                    PQfinish(connection)
                    current = nil
                    continue  // the next turn reconnects
                }
                deliver(connection)
            } else if ready == 0 {
                // Idle for a while: make sure the server is still there.
                if !execute(connection, "SELECT 1") { continue }
            }
        }
    }

    private func openConnection() throws -> OpaquePointer {
        try PGConnection.connectHandle(configuration)
    }

    private func execute(_ connection: OpaquePointer, _ sql: String) -> Bool {
        guard let result = PQexec(connection, sql) else { return false }
        defer { PQclear(result) }
        return PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK
    }

    private func deliver(_ connection: OpaquePointer) {
        while let raw = PQnotifies(connection) {
            let notification = PGNotification(
                channel: String(cString: raw.pointee.relname),
                payload: String(cString: raw.pointee.extra),
                senderPID: raw.pointee.be_pid
            )
            PQfreemem(raw)
            let targets = shared.withLock { Array(($0.subscribers[notification.channel] ?? [:]).values) }
            for target in targets { target.yield(notification) }
        }
    }

    private func failPendingListens(_ error: any Error) {
        let (listens, streams) = shared.withLock { shared -> ([CheckedContinuation<Void, any Error>], [Continuation]) in
            var failed: [CheckedContinuation<Void, any Error>] = []
            var streams: [Continuation] = []
            shared.commands.removeAll { command in
                if case .listen(let channel, let ready) = command {
                    failed.append(ready)
                    // The subscriber learns of the failure; forget its registration.
                    if let continuations = shared.subscribers.removeValue(forKey: channel) {
                        streams.append(contentsOf: continuations.values)
                    }
                    return true
                }
                return false
            }
            return (failed, streams)
        }
        let failure = (error as? PGError) ?? PGError(.connection, message: "\(error)")
        listens.forEach { $0.resume(throwing: failure) }
        streams.forEach { $0.finish() }
    }

    private func waitForWake(seconds: Double) {
        var descriptor = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, Int32(seconds * 1000))
        if descriptor.revents != 0 { drainWake() }
    }
}
