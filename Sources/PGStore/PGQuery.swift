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
            sql += "$\(binds.count)"
        }

        /// A bound value or NULL: becomes `$n`.
        public mutating func appendInterpolation<Value: PGEncodable>(_ value: Value?) {
            binds.append(value)
            sql += "$\(binds.count)"
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

/// The bound values of a statement: types, formats and encoded bytes, kept in one buffer.
public struct PGBindings: Sendable, Hashable {
    /// Encoded values back to back; each text value is NUL-terminated for libpq.
    var bytes: [UInt8] = []
    var types: [UInt32] = []
    var formats: [Int32] = []
    /// Start offset of each value in `bytes`, or -1 for NULL.
    var offsets: [Int] = []
    var lengths: [Int32] = []
    /// The first encoding failure, reported when the statement runs.
    var encodingError: String?

    public init() {}

    init(capacity: Int) {
        types.reserveCapacity(capacity)
        formats.reserveCapacity(capacity)
        offsets.reserveCapacity(capacity)
        lengths.reserveCapacity(capacity)
    }

    public var count: Int { types.count }

    public mutating func append<Value: PGEncodable>(_ value: Value) {
        types.append(Value.pgType.oid)
        formats.append(Value.pgFormat.rawValue)
        let start = bytes.count
        do {
            try value.encode(into: &bytes)
        } catch {
            bytes.removeSubrange(start...)
            if encodingError == nil { encodingError = "parameter $\(types.count) (\(Value.self)): \(error)" }
        }
        offsets.append(start)
        lengths.append(Int32(bytes.count - start))
        if Value.pgFormat == .text { bytes.append(0) }
    }

    public mutating func append<Value: PGEncodable>(_ value: Value?) {
        guard let value else {
            types.append(Value.pgType.oid)
            formats.append(Value.pgFormat.rawValue)
            offsets.append(-1)
            lengths.append(0)
            return
        }
        append(value)
    }

    mutating func append(contentsOf other: PGBindings) {
        let base = bytes.count
        bytes.append(contentsOf: other.bytes)
        types.append(contentsOf: other.types)
        formats.append(contentsOf: other.formats)
        offsets.append(contentsOf: other.offsets.map { $0 < 0 ? $0 : $0 + base })
        lengths.append(contentsOf: other.lengths)
        if encodingError == nil { encodingError = other.encodingError }
    }

    /// Calls `body` with the C arrays libpq takes: values, lengths, formats.
    func withCParameters<R>(
        _ body: (
            UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?
        ) throws -> R
    ) rethrows -> R {
        if types.isEmpty { return try body(nil, nil, nil) }
        return try bytes.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress)
            let empty: StaticString = ""
            var pointers = [UnsafePointer<CChar>?]()
            pointers.reserveCapacity(offsets.count)
            for (index, offset) in offsets.enumerated() {
                if offset < 0 {
                    pointers.append(nil)
                } else if lengths[index] == 0 || base == nil {
                    // An empty value: point at a NUL byte that outlives the call.
                    pointers.append(UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self))
                } else {
                    pointers.append((base! + offset).assumingMemoryBound(to: CChar.self))
                }
            }
            return try pointers.withUnsafeBufferPointer { values in
                try lengths.withUnsafeBufferPointer { lengthBuffer in
                    try formats.withUnsafeBufferPointer { formatBuffer in
                        try body(values.baseAddress, lengthBuffer.baseAddress, formatBuffer.baseAddress)
                    }
                }
            }
        }
    }
}

extension PGQuery {
    /// The statement with its bound values written in as quoted, typed literals: for tooling that
    /// needs plain SQL (a pgbench script, a plan to read), never for running a request, which always
    /// binds. Binary-format values are written as bytea hex.
    public var inlinedForTooling: String {
        var values: [String] = []
        for index in 0..<binds.count {
            let offset = binds.offsets[index]
            guard offset >= 0 else { values.append("NULL"); continue }
            let bytes = binds.bytes[offset..<(offset + Int(binds.lengths[index]))]
            let type = PGType(oid: binds.types[index])
            let typeName = PGType.names[type.oid].map { "::\($0)" } ?? ""
            if binds.formats[index] == 1 {
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
