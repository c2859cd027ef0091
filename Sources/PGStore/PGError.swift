/// An error from the store: a server error with its SQLSTATE and fields, a connection failure, a pool
/// timeout, or a value that could not be decoded.
///
/// Its `description` is deliberately generic, so that database detail never reaches an end user
/// by accident; log `String(reflecting:)` or the properties instead.
public struct PGError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Kind: String, Sendable {
        /// The server answered the statement with an error (see `sqlState`).
        case server
        /// The connection could not be opened or was lost.
        case connection
        /// The connection URL or an option could not be understood.
        case invalidConfiguration
        /// No connection became free within the pool's wait timeout.
        case poolTimeout
        /// The pool was shut down.
        case poolClosed
        /// The Swift task was cancelled; the statement was cancelled on the server.
        case cancelled
        /// A column's PostgreSQL type does not match the Swift type asked for.
        case typeMismatch
        /// A column was NULL where a non-optional Swift type was asked for.
        case unexpectedNull
        /// A value's text could not be decoded, or a value could not be encoded.
        case invalidValue
        /// A row had fewer columns than decoded, or a named column is missing.
        case missingColumn
    }

    public var kind: Kind
    /// The five-character SQLSTATE for server errors (for example `23505` for a unique violation).
    public var sqlState: String?
    /// The primary message: the server's, or ours for client-side errors.
    public var message: String
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var table: String?
    public var column: String?
    /// The SQL text of the failing statement, if any (never the bound values).
    public var query: String?

    public init(
        _ kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, table: String? = nil, column: String? = nil, query: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
        self.query = query
    }

    public var description: String {
        if let sqlState {
            return "PGError(\(kind.rawValue), SQLSTATE \(sqlState)): details hidden, use String(reflecting:) to log them"
        }
        return "PGError(\(kind.rawValue)): details hidden, use String(reflecting:) to log them"
    }

    public var debugDescription: String {
        var parts = ["PGError(\(kind.rawValue))"]
        if let sqlState { parts.append("SQLSTATE \(sqlState)") }
        parts.append(message)
        if let detail { parts.append("detail: \(detail)") }
        if let hint { parts.append("hint: \(hint)") }
        if let constraint { parts.append("constraint: \(constraint)") }
        if let query { parts.append("query: \(query)") }
        return parts.joined(separator: "; ")
    }

    /// One line for an operator (CLI output, startup logs): the real message without the SQL text.
    public var operatorMessage: String {
        var line = message
        if let detail { line += " (\(detail))" }
        return line
    }

    /// Well-known SQLSTATE codes.
    public enum Code {
        public static let uniqueViolation = "23505"
        public static let foreignKeyViolation = "23503"
        public static let checkViolation = "23514"
        public static let notNullViolation = "23502"
        public static let queryCanceled = "57014"
        public static let adminShutdown = "57P01"
        public static let invalidPassword = "28P01"
        public static let invalidAuthorization = "28000"
        public static let invalidCatalogName = "3D000"
        public static let undefinedTable = "42P01"
        public static let insufficientPrivilege = "42501"
        public static let serializationFailure = "40001"
        public static let deadlockDetected = "40P01"
    }

    public var isUniqueViolation: Bool { sqlState == Code.uniqueViolation }
}
