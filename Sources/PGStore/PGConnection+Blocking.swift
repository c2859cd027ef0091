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

    func executeOnce(_ query: PGQuery, key: StatementKey) throws -> PGRows {
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
}
