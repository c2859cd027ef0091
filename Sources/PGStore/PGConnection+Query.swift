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

extension PGConnection {
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
    func sendPrepared(_ query: PGQuery, name: String) throws {
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
