import CLibPQ
import Foundation
import Logging
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection. A connection is used by one caller at a time (the pool hands it out as a
/// lease); every blocking libpq call runs on the pool's thread pool, never on an event-loop thread or
/// the Swift concurrency pool.
public final class PGConnection: @unchecked Sendable {
    let handle: OpaquePointer
    let cancelHandle: OpaquePointer?
    let threads: NIOThreadPool
    /// The pool's I/O loop that awaits this connection's answers.
    let io: PGIOLoop?
    let cacheLimit: Int
    /// Prepared statements of this connection: (SQL, parameter types) -> statement name.
    var statements: [StatementKey: String] = [:]
    /// The statement looked up last: a loop that runs one statement over and over finds it
    /// without hashing its SQL.
    var lastStatement: (key: StatementKey, name: String)?
    var statementCounter = 0
    /// The C arrays of parameters, reused from statement to statement.
    let scratch = PGParameterScratch()
    /// Which operation is running, for cancellation; guarded so that `PQcancel` never targets the
    /// next caller's statement.
    let operation = Mutex(OperationState())
    /// The server process serving this connection.
    public let backendPID: Int32
    /// Unique among the process's connections (a closed connection's socket number and address
    /// are reused; this is not).
    let serial = PGConnection.nextSerial.wrappingAdd(1, ordering: .relaxed).newValue
    static let nextSerial = Atomic<UInt64>(0)
    /// When the pool last took the connection back (monotonic nanoseconds).
    var returnedAt: UInt64 = 0

    /// A prepared statement's identity: its SQL and its parameters' types.
    struct StatementKey: Hashable {
        let sql: String
        /// The statement's parameters, of which only the types count.
        let parameters: [PGBindings.Parameter]

        init(_ query: PGQuery) {
            sql = query.sql
            parameters = query.binds.parameters
        }

        static func == (lhs: StatementKey, rhs: StatementKey) -> Bool {
            lhs.parameters.count == rhs.parameters.count
                && zip(lhs.parameters, rhs.parameters).allSatisfy { $0.type == $1.type }
                && lhs.sql == rhs.sql
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(sql)
            hasher.combine(parameters.count)
            for parameter in parameters { hasher.combine(parameter.type) }
        }
    }

    /// The name under which this connection prepared `key`'s statement, if it did.
    func preparedName(_ key: StatementKey) -> String? {
        if let lastStatement, lastStatement.key == key { return lastStatement.name }
        guard let name = statements[key] else { return nil }
        lastStatement = (key, name)
        return name
    }

    /// Forgets a prepared statement (the server dropped its plan).
    func forgetStatement(_ key: StatementKey) -> String? {
        if let lastStatement, lastStatement.key == key { self.lastStatement = nil }
        return statements.removeValue(forKey: key)
    }

    struct OperationState {
        var running: UInt64?
        var cancelledBeforeStart: Set<UInt64> = []
        var nextID: UInt64 = 0
        var closed = false
    }

    init(handle: OpaquePointer, threads: NIOThreadPool, io: PGIOLoop?, cacheLimit: Int) {
        self.handle = handle
        self.threads = threads
        self.io = io
        self.cacheLimit = cacheLimit
        self.cancelHandle = PQgetCancel(handle)
        self.backendPID = PQbackendPID(handle)
    }

    deinit {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        PQfinish(handle)
    }

    // MARK: State

    /// Whether libpq still considers the connection usable.
    var isUsable: Bool { PQstatus(handle) == CONNECTION_OK }

    /// Whether the connection is idle outside a transaction.
    var isIdle: Bool { PQtransactionStatus(handle) == PQTRANS_IDLE }

    /// Monotonic nanoseconds, for `returnedAt`.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// How long an idle connection is taken to be alive without a look at its socket.
    static let trustedIdleNanoseconds: UInt64 = 1_000_000

    /// Whether the pool should look at the connection before lending it: it was idle for longer
    /// than `trustedIdleNanoseconds`, or something arrived while it was idle.
    func needsLivenessCheck() -> Bool {
        if Self.now() &- returnedAt > Self.trustedIdleNanoseconds { return true }
        return io?.takeSuspect(self) ?? true
    }

    /// Whether an idle connection may be lent: trusted as it is, or found alive by `checkAlive`.
    func isLendable() -> Bool {
        !needsLivenessCheck() || checkAlive()
    }

    /// Non-blocking check for an idle connection whose server went away (terminated backend,
    /// restart): reads whatever arrived and reports whether the connection is still good.
    func checkAlive() -> Bool {
        guard isUsable else { return false }
        // A terminated backend first sends its FATAL message, then closes: read until the socket
        // has nothing more, so that the close is seen too.
        for _ in 0..<4 {
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            if PQconsumeInput(handle) == 0 { return false }
            while let notification = PQnotifies(handle) { PQfreemem(notification) }
            guard isUsable else { return false }
        }
        return isUsable
    }

    // MARK: Running blocking work

    /// Runs `body` on the thread pool; cancelling the task cancels the statement on the server.
    func run<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        let id = operation.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        do {
            return try await withTaskCancellationHandler {
                try await threads.runIfActive {
                    try self.begin(id)
                    defer { self.end(id) }
                    return try body(self)
                }
            } onCancel: {
                self.cancel(id)
            }
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw PGError(.poolClosed, message: "the connection pool is shut down")
        } catch is CancellationError {
            throw PGError(.cancelled, message: "the task was cancelled")
        } catch var error as PGError where error.sqlState == PGError.Code.queryCanceled && Task.isCancelled {
            error.kind = .cancelled
            throw error
        }
    }

    func begin(_ id: UInt64) throws {
        try operation.withLock { state in
            if state.cancelledBeforeStart.remove(id) != nil {
                throw PGError(.cancelled, message: "the task was cancelled")
            }
            state.running = id
        }
    }

    func end(_ id: UInt64) {
        operation.withLock { state in
            if state.running == id { state.running = nil }
        }
    }

    func cancel(_ id: UInt64) {
        operation.withLock { state in
            guard !state.closed else { return }
            if state.running == id {
                guard let cancelHandle else { return }
                var buffer = [CChar](repeating: 0, count: 256)
                _ = PQcancel(cancelHandle, &buffer, 256)
            } else if state.running == nil || state.running! < id {
                state.cancelledBeforeStart.insert(id)
            }
        }
    }

    func markClosed() {
        operation.withLock { $0.closed = true }
    }

}

/// Server notices (`NOTICE: relation already exists, skipping`, warnings) go to the log at debug
/// level instead of libpq's default of printing them on standard error.
let pgNoticeLogger = Logger(label: "accord.pgstore.notice")

func pgNoticeReceiver(_ context: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let result, let message = PQresultErrorMessage(result) else { return }
    pgNoticeLogger.debug("\(String(cString: message).trimmingWhitespace())")
}
