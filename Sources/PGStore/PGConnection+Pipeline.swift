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
    func flushBlocking() throws {
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
}
