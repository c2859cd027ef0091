import DequeModule
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A bounded pool of PostgreSQL connections, run as a `Service` until graceful shutdown.
///
/// When all `maxConnections` are leased, a caller waits up to `connectionWaitTimeout`, then gets
/// `PGError.poolTimeout`. Broken connections are replaced on demand. Blocking libpq calls run on the
/// pool's own thread pool, never on an event loop or the Swift concurrency pool.
public final class PGPool: Service, Sendable {
    public let configuration: PGConfiguration
    let logger: Logger
    let threads: NIOThreadPool
    let loops: [PGIOLoop]
    private let nextLoop = Atomic<Int>(0)
    private let state: Mutex<State>

    struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
    }

    /// What a waiting caller receives: an idle connection, or the right to open a new one.
    enum Grant: @unchecked Sendable {
        case connection(PGConnection)
        case open
    }

    struct State {
        var idle: [PGConnection] = []
        /// Connections open or being opened.
        var open = 0
        var leased = 0
        var peakLeased = 0
        var waiters = Deque<Waiter>()
        var nextWaiterID: UInt64 = 0
        var closed = false
        /// Callers that had to wait for a connection, their total wait, and those that gave up.
        var waits = 0
        var waitTime = Duration.zero
        var timeouts = 0
    }

    public init(configuration: PGConfiguration, logger: Logger = Logger(label: "accord.pgstore")) {
        self.configuration = configuration
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: configuration.maxConnections + 1)
        self.threads.start()
        self.loops = (0..<configuration.ioThreads).map { _ in PGIOLoop(configuration.ioBackend) }
        self.state = Mutex(State())
    }

    deinit {
        threads.shutdownGracefully { _ in }
        loops.forEach { $0.shutdown() }
    }

    // MARK: Executors

    /// The pool's I/O loops as task executors, for tasks that mostly run statements: such a task
    /// is resumed on the loop's thread, with no thread hop per statement. Spread tasks over all of
    /// them; keep CPU-heavy work on the global executor, since it delays the loop's other answers.
    public var executors: [any TaskExecutor] { loops }

    /// The loop the caller runs on, if it runs on one of this pool's.
    private var currentLoop: PGIOLoop? {
        loops.first { $0.isCurrent }
    }

    /// The loop for a new connection: the caller's, else the next in turn.
    private func loopForNewConnection() -> PGIOLoop {
        currentLoop ?? loops[nextLoop.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    // MARK: Service

    /// Runs until graceful shutdown (or cancellation), then closes all connections.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    /// Closes the pool: idle connections now, leased ones when they come back; waiters fail.
    public func close() async {
        let (idle, waiters) = state.withLock { state -> ([PGConnection], Deque<Waiter>) in
            state.closed = true
            let idle = state.idle
            let waiters = state.waiters
            state.open -= idle.count
            state.idle.removeAll()
            state.waiters.removeAll()
            return (idle, waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: PGError(.poolClosed, message: "the connection pool is shut down"))
        }
        for connection in idle { connection.markClosed() }
        if !idle.isEmpty { logger.debug("closed \(idle.count) idle connections") }
        // The connections close (PQfinish) when their last reference goes.
    }

    // MARK: Statistics

    /// Connections open right now, and the most that were ever leased at once.
    public var statistics: (open: Int, leased: Int, peakLeased: Int, idle: Int) {
        state.withLock { ($0.open, $0.leased, $0.peakLeased, $0.idle.count) }
    }

    /// What operators watch (see docs/operations.md): connections open, leased, idle; callers
    /// waiting now; and, since the pool started, callers that waited, their total wait and
    /// those that waited in vain (`PGError.poolTimeout`).
    public struct Metrics: Sendable {
        public var open: Int
        public var leased: Int
        public var idle: Int
        public var waiting: Int
        public var waits: Int
        public var waitSeconds: Double
        public var timeouts: Int
    }

    public var metrics: Metrics {
        state.withLock { state in
            Metrics(
                open: state.open, leased: state.leased, idle: state.idle.count, waiting: state.waiters.count, waits: state.waits,
                waitSeconds: Double(state.waitTime.components.seconds) + Double(state.waitTime.components.attoseconds) / 1e18,
                timeouts: state.timeouts)
        }
    }

    // MARK: Leasing

    /// Leases a connection for the duration of `body`.
    @discardableResult
    nonisolated(nonsending) public func withConnection<Result: Sendable>(
        _ body: nonisolated(nonsending) (PGConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            await release(connection)
            return result
        } catch {
            await release(connection)
            throw error
        }
    }

    nonisolated(nonsending) func lease() async throws -> PGConnection {
        let loop = loops.count > 1 ? currentLoop : nil
        while true {
            let grant: Grant? = try state.withLock { state in
                if state.closed { throw PGError(.poolClosed, message: "the connection pool is shut down") }
                // On a loop, a connection that loop serves first: its answer resumes us in place.
                if let loop, let index = state.idle.lastIndex(where: { $0.io === loop }) {
                    state.noteLease()
                    return .connection(state.idle.remove(at: index))
                }
                if let connection = state.idle.popLast() {
                    state.noteLease()
                    return .connection(connection)
                }
                if state.open < configuration.maxConnections {
                    state.open += 1
                    state.noteLease()
                    return .open
                }
                return nil
            }
            let resolved: Grant
            if let grant { resolved = grant } else { resolved = try await waitForGrant() }
            switch resolved {
            case .connection(let connection):
                if connection.isLendable() { return connection }
                logger.info("dropping a broken idle connection", metadata: ["pid": "\(connection.backendPID)"])
                discard(connection, wasLeased: true)
            case .open:
                return try await openGranted()
            }
        }
    }

    /// Opens a connection for a caller that holds an `open` grant; gives the grant back on failure.
    private func openGranted() async throws -> PGConnection {
        do {
            return try await PGConnection.open(configuration, threads: threads, io: loopForNewConnection())
        } catch {
            returnGrant()
            throw error
        }
    }

    private func waitForGrant() async throws -> Grant {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timeout = configuration.connectionWaitTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.failWaiter(id, PGError(.poolTimeout, message: "no database connection became free within \(timeout)"))
        }
        let started = ContinuousClock.now
        defer {
            timer.cancel()
            let waited = ContinuousClock.now - started
            state.withLock { state in
                state.waits += 1
                state.waitTime += waited
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let refused: PGError? = state.withLock { state in
                    if state.closed { return PGError(.poolClosed, message: "the connection pool is shut down") }
                    // A connection may have come back between the first check and now.
                    if let connection = state.idle.popLast() {
                        state.noteLease()
                        continuation.resume(returning: .connection(connection))
                        return nil
                    }
                    if state.open < configuration.maxConnections {
                        state.open += 1
                        state.noteLease()
                        continuation.resume(returning: .open)
                        return nil
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let refused { continuation.resume(throwing: refused) }
            }
        } onCancel: {
            failWaiter(id, PGError(.cancelled, message: "cancelled while waiting for a connection"))
        }
    }

    private func failWaiter(_ id: UInt64, _ error: PGError) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            if error.kind == .poolTimeout { state.timeouts += 1 }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// Gives an `open` grant back when opening failed: a waiter may try instead.
    private func returnGrant() {
        let waiter = state.withLock { state -> Waiter? in
            state.leased -= 1
            if let waiter = state.waiters.popFirst() {
                state.leased += 1
                return waiter
            }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .open)
    }

    /// Returns a leased connection: to a waiter, to the idle list, or closed when it broke.
    nonisolated(nonsending) func release(_ connection: PGConnection) async {
        if connection.isUsable && !connection.isIdle {
            // Left inside a transaction (an error or cancellation mid-way): roll back first.
            _ = try? await Task { try await connection.execute(unsafeSQL: "ROLLBACK") }.value
        }
        guard connection.isUsable, connection.isIdle else {
            discard(connection, wasLeased: true)
            return
        }
        connection.returnedAt = PGConnection.now()
        let (waiter, keep) = state.withLock { state -> (Waiter?, Bool) in
            if state.closed {
                state.open -= 1
                state.leased -= 1
                return (nil, false)
            }
            if let waiter = state.waiters.popFirst() { return (waiter, true) }
            state.leased -= 1
            state.idle.append(connection)
            return (nil, true)
        }
        if let waiter { waiter.continuation.resume(returning: .connection(connection)) }
        if !keep { connection.markClosed() }
    }

    /// Drops a broken connection; its slot goes to a waiter as the right to open a new one.
    private func discard(_ connection: PGConnection, wasLeased: Bool) {
        connection.markClosed()
        let waiter = state.withLock { state -> Waiter? in
            if wasLeased { state.leased -= 1 }
            if !state.closed, let waiter = state.waiters.popFirst() {
                state.leased += 1
                return waiter
            }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .open)
    }

    // MARK: Conveniences

    /// Runs one statement on a pooled connection.
    @discardableResult
    nonisolated(nonsending) public func query(_ query: PGQuery) async throws -> PGRows {
        try await withConnection { try await $0.query(query) }
    }

    /// Runs `body` in a transaction on one pooled connection (see `PGConnection.withTransaction`).
    @discardableResult
    nonisolated(nonsending) public func withTransaction<Result: Sendable>(
        settings: [(String, String)] = [],
        _ body: nonisolated(nonsending) (PGConnection) async throws -> Result
    ) async throws -> Result {
        try await withConnection { try await $0.withTransaction(settings: settings, body) }
    }

    /// Runs many statements in one round trip, atomically (one implicit transaction).
    @discardableResult
    public func pipeline(_ queries: [PGQuery]) async throws -> [PGRows] {
        try await withConnection { try await $0.pipeline(queries) }
    }

    /// Sends a notification with `pg_notify($1, $2)`.
    public func notify(channel: String, payload: String) async throws {
        try await query("SELECT pg_notify(\(channel), \(payload))")
    }
}

extension PGPool.State {
    mutating func noteLease() {
        leased += 1
        if leased > peakLeased { peakLeased = leased }
    }
}
