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
    private let cancelHandle: OpaquePointer?
    private let threads: NIOThreadPool
    /// The pool's I/O loop that awaits this connection's answers.
    let io: PGIOLoop?
    private let cacheLimit: Int
    /// Prepared statements of this connection: (SQL, parameter types) -> statement name.
    private var statements: [StatementKey: String] = [:]
    /// The statement looked up last: a loop that runs one statement over and over finds it
    /// without hashing its SQL.
    private var lastStatement: (key: StatementKey, name: String)?
    private var statementCounter = 0
    /// The C arrays of parameters, reused from statement to statement.
    private let scratch = PGParameterScratch()
    /// Which operation is running, for cancellation; guarded so that `PQcancel` never targets the
    /// next caller's statement.
    private let operation = Mutex(OperationState())
    /// The server process serving this connection.
    public let backendPID: Int32
    /// Unique among the process's connections (a closed connection's socket number and address
    /// are reused; this is not).
    let serial = PGConnection.nextSerial.wrappingAdd(1, ordering: .relaxed).newValue
    private static let nextSerial = Atomic<UInt64>(0)
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
    private func preparedName(_ key: StatementKey) -> String? {
        if let lastStatement, lastStatement.key == key { return lastStatement.name }
        guard let name = statements[key] else { return nil }
        lastStatement = (key, name)
        return name
    }

    /// Forgets a prepared statement (the server dropped its plan).
    private func forgetStatement(_ key: StatementKey) -> String? {
        if let lastStatement, lastStatement.key == key { self.lastStatement = nil }
        return statements.removeValue(forKey: key)
    }

    struct OperationState {
        var running: UInt64?
        var cancelledBeforeStart: Set<UInt64> = []
        var nextID: UInt64 = 0
        var closed = false
    }

    private init(handle: OpaquePointer, threads: NIOThreadPool, io: PGIOLoop?, cacheLimit: Int) {
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

    // MARK: Opening

    /// Opens a libpq connection with `configuration`'s parameters (blocking), with server notices
    /// sent to the log. Throws a classified `PGError` when it fails.
    static func connectHandle(_ configuration: PGConfiguration) throws -> OpaquePointer {
        let parameters = try configuration.connectionParameters()
        let keywords = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let handle: OpaquePointer? = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 0)
            }
        }
        guard let handle else {
            throw PGError(.connection, message: "out of memory while connecting")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = Self.errorMessage(handle)
            PQfinish(handle)
            throw Self.classifyConnectError(message, configuration: configuration)
        }
        PQsetNoticeReceiver(handle, pgNoticeReceiver, nil)
        return handle
    }

    /// Opens a connection (blocking; call on a thread-pool thread).
    static func openBlocking(_ configuration: PGConfiguration, threads: NIOThreadPool, io: PGIOLoop? = nil) throws -> PGConnection {
        PGConnection(handle: try connectHandle(configuration), threads: threads, io: io, cacheLimit: configuration.preparedStatementCacheSize)
    }

    /// Opens a connection on `threads`.
    static func open(_ configuration: PGConfiguration, threads: NIOThreadPool, io: PGIOLoop? = nil) async throws -> PGConnection {
        do {
            return try await threads.runIfActive { try openBlocking(configuration, threads: threads, io: io) }
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw PGError(.poolClosed, message: "the connection pool is shut down")
        } catch is CancellationError {
            throw PGError(.cancelled, message: "cancelled while connecting")
        }
    }

    static func classifyConnectError(_ message: String, configuration: PGConfiguration) -> PGError {
        let target = configuration.redactedURL
        var error = PGError(.connection, message: "cannot connect to \(target): \(message)")
        if message.contains("password authentication failed") || message.contains("no password supplied") {
            error.sqlState = PGError.Code.invalidPassword
            error.message = "cannot connect to \(target): password authentication failed"
        } else if message.contains("does not exist") && message.contains("database") {
            error.sqlState = PGError.Code.invalidCatalogName
        } else if message.contains("no pg_hba.conf entry") || (message.contains("role") && message.contains("does not exist")) {
            error.sqlState = PGError.Code.invalidAuthorization
        }
        return error
    }

    static func errorMessage(_ handle: OpaquePointer) -> String {
        guard let raw = PQerrorMessage(handle) else { return "unknown error" }
        // libpq writes one line per address tried, prefixed with the address, plus hint lines;
        // keep each distinct line once, without the prefix (callers name the target themselves).
        var lines: [String] = []
        for line in String(cString: raw).split(separator: "\n") {
            var text = line.trimmingWhitespace()
            if text.hasPrefix("connection to server"), let range = text.range(of: " failed: ") {
                text = String(text[range.upperBound...]).trimmingWhitespace()
            }
            if text.hasPrefix("FATAL:") { text = String(text.dropFirst(6)).trimmingWhitespace() }
            if !text.isEmpty, !lines.contains(text) { lines.append(text) }
        }
        return lines.isEmpty ? "unknown error" : lines.joined(separator: "; ")
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
    private func needsLivenessCheck() -> Bool {
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

    private func begin(_ id: UInt64) throws {
        try operation.withLock { state in
            if state.cancelledBeforeStart.remove(id) != nil {
                throw PGError(.cancelled, message: "the task was cancelled")
            }
            state.running = id
        }
    }

    private func end(_ id: UInt64) {
        operation.withLock { state in
            if state.running == id { state.running = nil }
        }
    }

    private func cancel(_ id: UInt64) {
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

    // MARK: Blocking statements

    /// Runs one statement with bound parameters, preparing it once per connection.
    ///
    /// When a migration changed a table under a cached statement, PostgreSQL refuses the old plan
    /// ("cached plan must not change result type"); the statement is then prepared afresh, and
    /// re-run once if no transaction was open.
    func executeBlocking(_ query: PGQuery) throws -> PGRows {
        if let problem = query.binds.encodingError {
            throw PGError(.invalidValue, message: "cannot encode \(problem)", query: query.sql)
        }
        let key = StatementKey(query)
        do {
            return try executeOnce(query, key: key)
        } catch let error as PGError where error.sqlState == "0A000" && statements[key] != nil {
            let name = forgetStatement(key)!
            let wasIdle = isIdle
            _ = try? executeSimpleBlocking("DEALLOCATE \(name)")
            guard wasIdle else { throw error }
            return try executeOnce(query, key: key)
        }
    }

    private func executeOnce(_ query: PGQuery, key: StatementKey) throws -> PGRows {
        let binds = query.binds
        let count = Int32(binds.count)
        var name = preparedName(key)
        if name == nil, statements.count < cacheLimit {
            statementCounter += 1
            let newName = Self.statementName(statementCounter)
            let prepared = binds.types.withUnsafeBufferPointer { types in
                PQprepare(handle, newName, query.sql, count, types.baseAddress)
            }
            _ = try check(prepared, query: query.sql)
            statements[key] = newName
            name = newName
        }
        let result = binds.withCParameters(scratch: scratch) { values, lengths, formats in
            if let name {
                return PQexecPrepared(handle, name, count, values, lengths, formats, 0)
            }
            return binds.types.withUnsafeBufferPointer { types in
                PQexecParams(handle, query.sql, count, types.baseAddress, values, lengths, formats, 0)
            }
        }
        return try check(result, query: query.sql)
    }

    /// Runs SQL text with the simple protocol: no parameters, several statements allowed.
    func executeSimpleBlocking(_ sql: String) throws -> PGRows {
        try check(PQexec(handle, sql), query: sql)
    }

    /// Turns a libpq result into rows or a `PGError`.
    @discardableResult
    func check(_ result: OpaquePointer?, query: String) throws -> PGRows {
        guard let result else {
            throw PGError(.connection, message: Self.errorMessage(handle), query: query)
        }
        let box = PGResultBox(result)
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE, PGRES_PIPELINE_SYNC:
            return PGRows(box: box)
        default:
            throw serverError(result, query: query)
        }
    }

    func serverError(_ result: OpaquePointer, query: String) -> PGError {
        func field(_ code: UInt8) -> String? {
            guard let value = PQresultErrorField(result, Int32(code)) else { return nil }
            return String(cString: value)
        }
        guard let sqlState = field(UInt8(ascii: "C")) else {
            // No SQLSTATE: the connection failed (for example the server went away).
            var message = Self.errorMessage(handle)
            if let raw = PQresultErrorMessage(result), raw.pointee != 0 { message = String(cString: raw).trimmingWhitespace() }
            return PGError(.connection, message: message, query: query)
        }
        return PGError(
            .server,
            message: field(UInt8(ascii: "M")) ?? "server error",
            sqlState: sqlState,
            detail: field(UInt8(ascii: "D")),
            hint: field(UInt8(ascii: "H")),
            constraint: field(UInt8(ascii: "n")),
            table: field(UInt8(ascii: "t")),
            column: field(UInt8(ascii: "c")),
            query: query
        )
    }

    /// Runs statements in libpq's pipeline mode: all are sent before any result is read, so the
    /// batch costs one round trip. They run in one implicit transaction (one Sync), so a failure
    /// rolls back the whole batch unless an explicit transaction is open, in which case that
    /// transaction is aborted. Throws the first error.
    func pipelineBlocking(_ queries: [PGQuery]) throws -> [PGRows] {
        guard !queries.isEmpty else { return [] }
        for query in queries {
            if let problem = query.binds.encodingError {
                throw PGError(.invalidValue, message: "cannot encode \(problem)", query: query.sql)
            }
        }
        guard PQenterPipelineMode(handle) == 1 else {
            throw PGError(.connection, message: "cannot enter pipeline mode: \(Self.errorMessage(handle))")
        }
        enum Expected {
            case prepare(StatementKey, String, query: String)
            case execute(Int, query: String)
        }
        var expected: [Expected] = []
        expected.reserveCapacity(queries.count * 2)
        var pendingPrepares: [StatementKey: String] = [:]
        PQsetnonblocking(handle, 1)
        do {
            for (index, query) in queries.enumerated() {
                let binds = query.binds
                let count = Int32(binds.count)
                let key = StatementKey(query)
                var name = preparedName(key) ?? pendingPrepares[key]
                if name == nil, statements.count + pendingPrepares.count < cacheLimit {
                    statementCounter += 1
                    let newName = Self.statementName(statementCounter)
                    let sent = binds.types.withUnsafeBufferPointer { types in
                        PQsendPrepare(handle, newName, query.sql, count, types.baseAddress)
                    }
                    guard sent == 1 else { throw PGError(.connection, message: Self.errorMessage(handle), query: query.sql) }
                    pendingPrepares[key] = newName
                    expected.append(.prepare(key, newName, query: query.sql))
                    name = newName
                }
                let sent = binds.withCParameters(scratch: scratch) { values, lengths, formats in
                    if let name {
                        return PQsendQueryPrepared(handle, name, count, values, lengths, formats, 0)
                    }
                    return binds.types.withUnsafeBufferPointer { types in
                        PQsendQueryParams(handle, query.sql, count, types.baseAddress, values, lengths, formats, 0)
                    }
                }
                guard sent == 1 else { throw PGError(.connection, message: Self.errorMessage(handle), query: query.sql) }
                expected.append(.execute(index, query: query.sql))
                // Keep the server's answers flowing so that neither side blocks on a full buffer.
                if PQflush(handle) == 1, PQconsumeInput(handle) == 0 {
                    throw PGError(.connection, message: Self.errorMessage(handle))
                }
            }
            guard PQpipelineSync(handle) == 1 else { throw PGError(.connection, message: Self.errorMessage(handle)) }
            try flushBlocking()
        } catch {
            PQsetnonblocking(handle, 0)
            throw error
        }
        PQsetnonblocking(handle, 0)

        var results = [PGRows](repeating: .empty, count: queries.count)
        var firstError: PGError?
        for item in expected {
            guard let result = PQgetResult(handle) else {
                throw PGError(.connection, message: Self.errorMessage(handle))
            }
            let box = PGResultBox(result)
            let status = PQresultStatus(result)
            switch item {
            case .prepare(let key, let name, let query):
                if status == PGRES_COMMAND_OK {
                    statements[key] = name
                } else if status != PGRES_PIPELINE_ABORTED, firstError == nil {
                    firstError = serverError(result, query: query)
                }
            case .execute(let index, let query):
                switch status {
                case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                    results[index] = PGRows(box: box)
                case PGRES_PIPELINE_ABORTED:
                    break
                default:
                    if firstError == nil { firstError = serverError(result, query: query) }
                }
            }
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(handle) { PQclear(extra) }
        }
        // The Sync.
        if let sync = PQgetResult(handle) { PQclear(sync) }
        guard PQexitPipelineMode(handle) == 1 else {
            throw PGError(.connection, message: "cannot leave pipeline mode: \(Self.errorMessage(handle))")
        }
        if let firstError { throw firstError }
        return results
    }

    /// Sends everything libpq has buffered, reading input meanwhile (non-blocking mode).
    private func flushBlocking() throws {
        while true {
            let state = PQflush(handle)
            if state == 0 { return }
            if state < 0 { throw PGError(.connection, message: Self.errorMessage(handle)) }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN | POLLOUT), revents: 0)
            _ = poll(&descriptor, 1, 1000)
            if descriptor.revents & Int16(POLLIN) != 0, PQconsumeInput(handle) == 0 {
                throw PGError(.connection, message: Self.errorMessage(handle))
            }
        }
    }

    // MARK: Public async API

    /// Runs one statement and returns its rows.
    ///
    /// A statement this connection has prepared already is sent without blocking and its answer
    /// awaited on the pool's I/O loop; the first use of a statement prepares it on the thread pool.
    @discardableResult
    nonisolated(nonsending) public func query(_ query: PGQuery) async throws -> PGRows {
        guard let io, query.binds.encodingError == nil, let name = preparedName(StatementKey(query)) else {
            return try await run { try $0.executeBlocking(query) }
        }
        let result = try await onLoop(io, pipeline: false) {
            try self.sendPrepared(query, name: name)
        }.first
        do {
            return try check(result, query: query.sql)
        } catch var error as PGError where error.sqlState == PGError.Code.queryCanceled && Task.isCancelled {
            error.kind = .cancelled
            throw error
        } catch let error as PGError where error.sqlState == "0A000" {
            // A table changed under the cached plan: prepare afresh on the blocking path.
            return try await run { try $0.executeBlocking(query) }
        }
    }

    /// A prepared statement's name: 16 bytes or more, so a native string whose NUL-terminated UTF-8
    /// `withCString` hands to libpq without a copy.
    static func statementName(_ number: Int) -> String {
        "accord_statement_\(number)"
    }

    /// Sends a prepared statement without waiting for its answer (non-blocking mode).
    private func sendPrepared(_ query: PGQuery, name: String) throws {
        let sent = name.withCString { name in
            query.binds.withCParameters(scratch: scratch) { values, lengths, formats in
                PQsendQueryPrepared(handle, name, Int32(query.binds.count), values, lengths, formats, 0)
            }
        }
        guard sent == 1 else { throw PGError(.connection, message: Self.errorMessage(handle), query: query.sql) }
    }

    /// Sends with `send` in non-blocking mode and awaits the answer on the pool's I/O loop: one
    /// statement's first result, or a pipeline's results up to its Sync. Cancelling the task
    /// cancels the statement on the server.
    nonisolated(nonsending) private func onLoop(_ io: PGIOLoop, pipeline: Bool, send: () throws -> Void) async throws -> PGIOLoop.Answer {
        // A new id that is running at once: no cancellation can have been recorded for it yet.
        let id = operation.withLock { state -> UInt64 in
            state.nextID += 1
            state.running = state.nextID
            return state.nextID
        }
        defer { end(id) }
        defer {
            PQsetnonblocking(handle, 0)
            if pipeline { PQexitPipelineMode(handle) }
        }
        // The `_unsafeInheritExecutor_` spellings stay on the caller's executor, as this function
        // does; the plain ones would hop to the generic executor on entry and on return.
        return try await _unsafeInheritExecutor_withTaskCancellationHandler {
            // Unsafe (no checking allocation): the loop resumes each waiter exactly once, when it
            // removes it; a failed send resumes here and registers nothing.
            try await _unsafeInheritExecutor_withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<PGIOLoop.Answer, any Error>) in
                PQsetnonblocking(handle, 1)
                do {
                    try send()
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                io.await(self, needsWrite: PQflush(handle) == 1, pipeline: pipeline, continuation)
            }
        } onCancel: {
            self.cancel(id)
        }
    }

    /// Runs SQL text with the simple query protocol (several statements, no parameters). For
    /// migrations and administrative scripts; never pass user input.
    @discardableResult
    public func execute(unsafeSQL sql: String) async throws -> PGRows {
        try await run { try $0.executeSimpleBlocking(sql) }
    }

    /// Runs many statements in one round trip (libpq pipeline mode). See `PGPool.pipeline`.
    ///
    /// When every statement is prepared on this connection already, the batch is sent without
    /// blocking and its answers awaited on the pool's I/O loop.
    @discardableResult
    nonisolated(nonsending) public func pipeline(_ queries: [PGQuery]) async throws -> [PGRows] {
        guard let io, !queries.isEmpty, queries.count <= 64,
            let names = Optional(
                queries.compactMap { query -> String? in
                    query.binds.encodingError == nil ? preparedName(StatementKey(query)) : nil
                }), names.count == queries.count
        else {
            return try await run { try $0.pipelineBlocking(queries) }
        }
        let results = try await onLoop(io, pipeline: true) {
            guard PQenterPipelineMode(self.handle) == 1 else {
                throw PGError(.connection, message: "cannot enter pipeline mode: \(Self.errorMessage(self.handle))")
            }
            for (query, name) in zip(queries, names) { try self.sendPrepared(query, name: name) }
            guard PQpipelineSync(self.handle) == 1 else { throw PGError(.connection, message: Self.errorMessage(self.handle)) }
        }
        let boxes = results.all.map(PGResultBox.init)
        var rows = [PGRows](repeating: .empty, count: queries.count)
        var firstError: PGError?
        var next = 0
        for box in boxes {
            switch PQresultStatus(box.pointer) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                if next < rows.count { rows[next] = PGRows(box: box) }
            case PGRES_PIPELINE_ABORTED:
                break
            default:
                if firstError == nil { firstError = serverError(box.pointer, query: next < queries.count ? queries[next].sql : "") }
            }
            next += 1
        }
        if var firstError {
            if firstError.sqlState == PGError.Code.queryCanceled && Task.isCancelled { firstError.kind = .cancelled }
            throw firstError
        }
        guard next == queries.count else {
            throw PGError(.connection, message: "the pipeline ended after \(next) of \(queries.count) statements")
        }
        return rows
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    /// `settings` are applied with `set_config(name, value, true)`, so they last for this
    /// transaction only (the tenant context of row-level security travels this way).
    @discardableResult
    nonisolated(nonsending) public func withTransaction<Result: Sendable>(
        settings: [(String, String)] = [],
        _ body: nonisolated(nonsending) (PGConnection) async throws -> Result
    ) async throws -> Result {
        var opening: [PGQuery] = ["BEGIN"]
        if !settings.isEmpty { opening.append(.setConfig(settings)) }
        if opening.count == 1 {
            try await query("BEGIN")
        } else {
            try await pipeline(opening)
        }
        do {
            let result = try await body(self)
            if PQtransactionStatus(handle) == PQTRANS_INERROR {
                // The body swallowed a statement error; COMMIT would silently roll back.
                throw PGError(.server, message: "the transaction was aborted by an earlier error", sqlState: "25P02")
            }
            try await query("COMMIT")
            return result
        } catch {
            if isUsable && !isIdle {
                // Roll back even when the task was cancelled.
                _ = try? await Task { try await self.execute(unsafeSQL: "ROLLBACK") }.value
            }
            throw error
        }
    }
}

/// Server notices (`NOTICE: relation already exists, skipping`, warnings) go to the log at debug
/// level instead of libpq's default of printing them on standard error.
let pgNoticeLogger = Logger(label: "accord.pgstore.notice")

func pgNoticeReceiver(_ context: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let result, let message = PQresultErrorMessage(result) else { return }
    pgNoticeLogger.debug("\(String(cString: message).trimmingWhitespace())")
}
