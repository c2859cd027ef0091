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
}
