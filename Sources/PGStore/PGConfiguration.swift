import CLibPQ
import Foundation

/// How to reach PostgreSQL and how the pool behaves.
public struct PGConfiguration: Sendable {
    /// A libpq connection URL (`postgresql://user:password@host:port/db?sslmode=require`) or a
    /// `key=value` connection string. TLS follows the URL's `sslmode`.
    public var url: String
    /// The most connections the pool opens at once.
    public var maxConnections: Int
    /// How long a caller waits for a free connection before `PGError.poolTimeout`.
    public var connectionWaitTimeout: Duration
    /// Seconds to wait for a connection to open (libpq's `connect_timeout`), unless the URL says.
    public var connectTimeoutSeconds: Int
    /// Server-side limit for one statement; nil leaves the server's setting.
    public var statementTimeout: Duration?
    /// Shown in `pg_stat_activity`.
    public var applicationName: String
    /// Most prepared statements kept per connection; past it statements run unprepared.
    public var preparedStatementCacheSize: Int
    /// Threads that await the pool's answers (each an I/O loop and a `TaskExecutor`, see
    /// `PGPool.executors`); the pool's connections are spread over them. Default: one per core, at
    /// most 4.
    public var ioThreads: Int
    /// How the I/O loops wait: `epoll` on Linux, `poll` elsewhere; tests set `poll` on Linux too.
    var ioBackend: PGPoller.Backend = .platformDefault

    /// Checks that `url` parses before anything connects; throws `.invalidConfiguration` with the
    /// parser's message otherwise.
    public init(
        url: String,
        maxConnections: Int = 10,
        connectionWaitTimeout: Duration = .seconds(10),
        connectTimeoutSeconds: Int = 5,
        statementTimeout: Duration? = .seconds(30),
        applicationName: String = "accord",
        preparedStatementCacheSize: Int = 512,
        ioThreads: Int = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4)
    ) throws {
        precondition(maxConnections > 0, "maxConnections must be positive")
        precondition(ioThreads > 0, "ioThreads must be positive")
        self.ioThreads = ioThreads
        self.url = url
        self.maxConnections = maxConnections
        self.connectionWaitTimeout = connectionWaitTimeout
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.statementTimeout = statementTimeout
        self.applicationName = applicationName
        self.preparedStatementCacheSize = preparedStatementCacheSize
        _ = try Self.parse(url)
    }

    /// The URL's options as libpq understands them.
    static func parse(_ url: String) throws -> [(String, String)] {
        if url.isEmpty {
            throw PGError(.invalidConfiguration, message: "the database URL is empty")
        }
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &errorMessage) else {
            var message = "the database URL is malformed"
            if let errorMessage {
                message += ": " + String(cString: errorMessage).trimmingWhitespace()
                PQfreemem(errorMessage)
            }
            throw PGError(.invalidConfiguration, message: message)
        }
        defer { PQconninfoFree(options) }
        var result: [(String, String)] = []
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                result.append((String(cString: keyword), String(cString: value)))
            }
            cursor += 1
        }
        return result
    }

    /// Keyword/value pairs for `PQconnectdbParams`: the URL's own options plus our session defaults.
    func connectionParameters() throws -> [(String, String)] {
        var parameters = try Self.parse(url)
        func setDefault(_ key: String, _ value: String) {
            if !parameters.contains(where: { $0.0 == key }) { parameters.append((key, value)) }
        }
        setDefault("connect_timeout", String(connectTimeoutSeconds))
        setDefault("application_name", applicationName)
        parameters.removeAll { $0.0 == "client_encoding" }
        parameters.append(("client_encoding", "UTF8"))
        // Fixed session settings that decoding relies on.
        var options = parameters.first(where: { $0.0 == "options" })?.1 ?? ""
        options += " -c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601"
        if let statementTimeout {
            let (seconds, attoseconds) = statementTimeout.components
            let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
            options += " -c statement_timeout=\(millis)"
        }
        parameters.removeAll { $0.0 == "options" }
        parameters.append(("options", options.trimmingWhitespace()))
        return parameters
    }

    /// The URL with any password replaced by `***`, for logs and messages.
    public var redactedURL: String {
        guard let parameters = try? Self.parse(url) else { return "(malformed URL)" }
        let host = parameters.first { $0.0 == "host" }?.1 ?? "localhost"
        let port = parameters.first { $0.0 == "port" }?.1 ?? "5432"
        let user = parameters.first { $0.0 == "user" }?.1 ?? ""
        let database = parameters.first { $0.0 == "dbname" }?.1 ?? user
        return "postgresql://\(user)@\(host):\(port)/\(database)"
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}

extension PGConfiguration {
    /// The same connection settings as `url`, pointed at database `database` (a `key=value`
    /// connection string). Used to reach throwaway databases in tests and tools.
    public static func url(_ url: String, replacingDatabase database: String) throws -> String {
        var parameters = try parse(url).filter { $0.0 != "dbname" }
        parameters.append(("dbname", database))
        return parameters.map { key, value in
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            return "\(key)='\(escaped)'"
        }.joined(separator: " ")
    }

    /// The value of one connection option of `url` (for example `user` or `dbname`), if set.
    public static func option(_ name: String, in url: String) -> String? {
        (try? parse(url))?.first { $0.0 == name }?.1
    }
}
