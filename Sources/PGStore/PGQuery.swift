import Foundation

/// A SQL statement and its bound values.
///
/// Built by string interpolation, every interpolated value becomes a bind parameter (`$1`, `$2`, …)
/// and never part of the SQL text, which removes SQL injection as a class:
///
/// ```swift
/// let rows = try await pool.query("SELECT id, name FROM institutions WHERE schac = \(schac)")
/// ```
///
/// SQL text that is not a literal needs the loud spelling `PGQuery(unsafeSQL:)` or
/// `\(unsafeRaw: fragment)`; identifiers can be quoted safely with `\(identifier: name)`.
public struct PGQuery: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public internal(set) var sql: String
    public internal(set) var binds: PGBindings

    /// A statement from SQL text that the caller vouches for. Values must still go in `binds`.
    public init(unsafeSQL sql: String, binds: PGBindings = PGBindings()) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.sql = value
        self.binds = PGBindings()
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.binds = stringInterpolation.binds
    }

    public var description: String { sql }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        public typealias StringLiteralType = String
        var sql: String
        var binds: PGBindings

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql = ""
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds = PGBindings(capacity: interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// A bound value: becomes `$n`.
        public mutating func appendInterpolation<Value: PGEncodable>(_ value: Value) {
            binds.append(value)
            appendPlaceholder()
        }

        /// A bound value or NULL: becomes `$n`.
        public mutating func appendInterpolation<Value: PGEncodable>(_ value: Value?) {
            binds.append(value)
            appendPlaceholder()
        }

        /// `$n` for the value just bound.
        private mutating func appendPlaceholder() {
            let number = binds.count
            if number < PGQuery.placeholders.count {
                sql += PGQuery.placeholders[number]
            } else {
                sql += "$\(number)"
            }
        }

        /// An identifier (table, column, channel name), double-quoted and escaped.
        public mutating func appendInterpolation(identifier: String) {
            sql += PGQuery.quoteIdentifier(identifier)
        }

        /// SQL text spliced in as it is. Never pass user input here.
        public mutating func appendInterpolation(unsafeRaw fragment: String) {
            sql += fragment
        }

        /// Another query, its placeholders renumbered after the ones already bound.
        public mutating func appendInterpolation(_ query: PGQuery) {
            sql += PGQuery.renumber(query.sql, offset: binds.count)
            binds.append(contentsOf: query.binds)
        }
    }

    /// `$0` to `$99`, made once: most statements bind fewer values.
    static let placeholders: [String] = (0..<100).map { "$\($0)" }

    /// Double-quotes an identifier, doubling embedded quotes (PostgreSQL's rule).
    public static func quoteIdentifier(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Shifts `$n` placeholders by `offset`, leaving quoted strings and identifiers alone.
    static func renumber(_ sql: String, offset: Int) -> String {
        guard offset > 0 else { return sql }
        var result = ""
        var scalars = Array(sql.unicodeScalars)[...]
        var quote: Unicode.Scalar?
        while let scalar = scalars.popFirst() {
            if let open = quote {
                result.unicodeScalars.append(scalar)
                if scalar == open { quote = nil }
                continue
            }
            if scalar == "'" || scalar == "\"" {
                quote = scalar
                result.unicodeScalars.append(scalar)
                continue
            }
            if scalar == "$", let first = scalars.first, first.properties.numericType != nil, first.isASCII {
                var digits = ""
                while let next = scalars.first, next.isASCII, next.properties.numericType != nil {
                    digits.unicodeScalars.append(next)
                    scalars.removeFirst()
                }
                result += "$\(Int(digits)! + offset)"
                continue
            }
            result.unicodeScalars.append(scalar)
        }
        return result
    }
}

extension PGQuery {
    /// Appends another query, renumbering its placeholders.
    public mutating func append(_ other: PGQuery) {
        sql += PGQuery.renumber(other.sql, offset: binds.count)
        binds.append(contentsOf: other.binds)
    }

    /// `SELECT set_config(name, value, true), …`: transaction-local settings, all bound.
    public static func setConfig(_ settings: [(String, String)]) -> PGQuery {
        joined(settings.map { "set_config(\($0.0), \($0.1), true)" }, prefix: "SELECT ", separator: ", ")
    }

    /// Joins queries with a separator, renumbering placeholders.
    public static func joined(_ parts: [PGQuery], prefix: String = "", separator: String) -> PGQuery {
        var result = PGQuery(unsafeSQL: prefix)
        for (index, part) in parts.enumerated() {
            if index > 0 { result.sql += separator }
            result.append(part)
        }
        return result
    }
}

/// The bound values of a statement: their encoded bytes in one buffer, and one entry per
/// parameter (type, format, where its bytes are). Two arrays, whatever the number of parameters:
/// building a statement costs few allocations.
public struct PGBindings: Sendable, Hashable {
    /// Encoded values back to back; each text value is NUL-terminated for libpq.
    var bytes: [UInt8] = []
    var parameters: [Parameter] = []
    /// The first encoding failure, reported when the statement runs.
    var encodingError: String?

    /// One bound value: its declared type and wire format, and its bytes in `bytes`.
    struct Parameter: Sendable, Hashable {
        var type: UInt32
        var format: Int32
        /// Start of the value in `bytes`, or -1 for NULL.
        var offset: Int32
        var length: Int32
    }

    /// The largest encoded size of all values of one statement; PostgreSQL takes no message
    /// over 1 GiB, and offsets into `bytes` are 32-bit.
    static let maxBytes = 1 << 30

    public init() {}

    init(capacity: Int) {
        guard capacity > 0 else { return }
        parameters.reserveCapacity(capacity)
        bytes.reserveCapacity(capacity * 16)
    }

    public var count: Int { parameters.count }

    /// The parameters' declared types, in order (to prepare a statement).
    var types: [UInt32] { parameters.map(\.type) }

    public mutating func append<Value: PGEncodable>(_ value: Value) {
        let start = bytes.count
        do {
            try value.encode(into: &bytes)
        } catch {
            bytes.removeSubrange(start...)
            if encodingError == nil { encodingError = "parameter $\(parameters.count + 1) (\(Value.self)): \(error)" }
        }
        if bytes.count >= Self.maxBytes {
            bytes.removeSubrange(start...)
            if encodingError == nil {
                encodingError = "parameter $\(parameters.count + 1) (\(Value.self)): the values of one statement exceed \(Self.maxBytes) bytes"
            }
        }
        parameters.append(
            Parameter(
                type: Value.pgType.oid, format: Value.pgFormat.rawValue,
                offset: Int32(start), length: Int32(bytes.count - start)
            ))
        if Value.pgFormat == .text { bytes.append(0) }
    }

    public mutating func append<Value: PGEncodable>(_ value: Value?) {
        guard let value else {
            parameters.append(Parameter(type: Value.pgType.oid, format: Value.pgFormat.rawValue, offset: -1, length: 0))
            return
        }
        append(value)
    }

    mutating func append(contentsOf other: PGBindings) {
        if bytes.count + other.bytes.count >= Self.maxBytes {
            if encodingError == nil { encodingError = "the values of one statement exceed \(Self.maxBytes) bytes" }
            parameters.append(contentsOf: other.parameters.map { Parameter(type: $0.type, format: $0.format, offset: -1, length: 0) })
            return
        }
        let base = Int32(bytes.count)
        bytes.append(contentsOf: other.bytes)
        parameters.append(
            contentsOf: other.parameters.map { parameter in
                var moved = parameter
                if moved.offset >= 0 { moved.offset += base }
                return moved
            })
        if encodingError == nil { encodingError = other.encodingError }
    }

    /// Calls `body` with the C arrays libpq takes (values, lengths, formats), written into
    /// `scratch`, which the caller owns and reuses from statement to statement.
    func withCParameters<R>(
        scratch: PGParameterScratch,
        _ body: (
            UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?
        ) throws -> R
    ) rethrows -> R {
        if parameters.isEmpty { return try body(nil, nil, nil) }
        scratch.reserve(parameters.count)
        return try bytes.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress)
            let empty: StaticString = ""
            let emptyValue = UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self)
            for (index, parameter) in parameters.enumerated() {
                if parameter.offset < 0 {
                    scratch.values[index] = nil
                } else if parameter.length == 0 || base == nil {
                    // An empty value: point at a NUL byte that outlives the call.
                    scratch.values[index] = emptyValue
                } else {
                    scratch.values[index] = (base! + Int(parameter.offset)).assumingMemoryBound(to: CChar.self)
                }
                scratch.lengths[index] = parameter.length
                scratch.formats[index] = parameter.format
            }
            return try body(UnsafePointer(scratch.values), UnsafePointer(scratch.lengths), UnsafePointer(scratch.formats))
        }
    }
}

/// The C arrays of one statement's parameters, reused by a connection from statement to statement
/// instead of allocated per statement. Used by one caller at a time, like its connection.
final class PGParameterScratch: @unchecked Sendable {
    private(set) var values: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private(set) var lengths: UnsafeMutablePointer<Int32>
    private(set) var formats: UnsafeMutablePointer<Int32>
    private var capacity: Int

    init(capacity: Int = 16) {
        self.capacity = capacity
        values = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
        formats = .allocate(capacity: capacity)
    }

    deinit {
        values.deallocate()
        lengths.deallocate()
        formats.deallocate()
    }

    /// Makes room for `count` parameters.
    func reserve(_ count: Int) {
        guard count > capacity else { return }
        values.deallocate()
        lengths.deallocate()
        formats.deallocate()
        capacity = max(count, capacity * 2)
        values = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
        formats = .allocate(capacity: capacity)
    }
}

extension PGQuery {
    /// The statement with its bound values written in as quoted, typed literals: for tooling that
    /// needs plain SQL (a pgbench script, a plan to read), never for running a request, which always
    /// binds. Binary-format values are written as bytea hex.
    public var inlinedForTooling: String {
        var values: [String] = []
        for index in 0..<binds.count {
            let parameter = binds.parameters[index]
            guard parameter.offset >= 0 else {
                values.append("NULL")
                continue
            }
            let offset = Int(parameter.offset)
            let bytes = binds.bytes[offset..<(offset + Int(parameter.length))]
            let type = PGType(oid: parameter.type)
            let typeName = PGType.names[type.oid].map { "::\($0)" } ?? ""
            if parameter.format == 1 {
                values.append("'\\x" + bytes.map { String(format: "%02x", $0) }.joined() + "'::bytea")
            } else {
                let text = String(decoding: bytes, as: UTF8.self)
                values.append("'" + text.replacingOccurrences(of: "'", with: "''") + "'" + typeName)
            }
        }
        // One pass: each placeholder $n becomes its value (values are never scanned again).
        var result = ""
        var scalars = sql.unicodeScalars[...]
        while let scalar = scalars.popFirst() {
            guard scalar == "$", let first = scalars.first, first.properties.numericType != nil, first.isASCII else {
                result.unicodeScalars.append(scalar)
                continue
            }
            var number = 0
            while let digit = scalars.first, digit.isASCII, let value = Int(String(digit)) {
                number = number * 10 + value
                scalars.removeFirst()
            }
            result += number >= 1 && number <= values.count ? values[number - 1] : "$\(number)"
        }
        return result
    }
}
