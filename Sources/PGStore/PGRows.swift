import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns a libpq result and frees it when the last reference goes. A result is immutable once
/// returned by libpq, so reading it from any thread is safe.
final class PGResultBox: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { PQclear(pointer) }
}

/// A result column: its name and PostgreSQL type.
public struct PGColumn: Sendable, Hashable {
    public let name: String
    public let type: PGType
}

/// The rows a statement returned, decoded lazily from libpq's result: making one allocates nothing
/// beyond the result's owner, whatever it is later asked.
public struct PGRows: Sendable, RandomAccessCollection {
    let box: PGResultBox?
    public let count: Int
    /// The number of result columns.
    let columnCount: Int

    init(box: PGResultBox?) {
        self.box = box
        guard let result = box?.pointer else {
            count = 0
            columnCount = 0
            return
        }
        count = Int(PQntuples(result))
        columnCount = Int(PQnfields(result))
    }

    /// The result's columns, in order.
    public var columns: [PGColumn] {
        (0..<columnCount).map(column)
    }

    /// Column `index`'s name and type.
    func column(_ index: Int) -> PGColumn {
        guard let result = box?.pointer else { preconditionFailure("an empty result has no columns") }
        return PGColumn(name: String(cString: PQfname(result, Int32(index))), type: PGType(oid: PQftype(result, Int32(index))))
    }

    /// The position of the column named exactly `name`, if there is one.
    func columnIndex(named name: String) -> Int? {
        guard let result = box?.pointer else { return nil }
        return name.withCString { wanted in
            (0..<columnCount).first { strcmp(PQfname(result, Int32($0)), wanted) == 0 }
        }
    }

    /// Rows inserted, updated or deleted, from the command tag.
    public var affectedRows: Int {
        guard let result = box?.pointer, let tuples = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: tuples)) ?? 0
    }

    static let empty = PGRows(box: nil)

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public subscript(position: Int) -> PGRow {
        precondition(position >= 0 && position < count, "row index out of range")
        return PGRow(rows: self, index: position)
    }

    /// Decodes every row into a typed tuple: `try rows.decode((UUID, String, Int?).self)`.
    public func decode<each Value: PGDecodable>(_ types: (repeat each Value).Type) throws -> [(repeat each Value)] {
        var result: [(repeat each Value)] = []
        result.reserveCapacity(count)
        for row in self { result.append(try row.decode(types)) }
        return result
    }

    /// Decodes the first row, or returns nil when there is none.
    public func first<each Value: PGDecodable>(_ types: (repeat each Value).Type) throws -> (repeat each Value)? {
        guard count > 0 else { return nil }
        return try self[0].decode(types)
    }

    /// Decodes the single value of a one-row, one-column result.
    public func scalar<Value: PGDecodable>(_ type: Value.Type = Value.self) throws -> Value {
        guard count > 0 else { throw PGError(.missingColumn, message: "expected a row, got none") }
        return try self[0].decode(Value.self)
    }
}

/// One row of a result.
public struct PGRow: Sendable {
    let rows: PGRows
    let index: Int

    public var columns: [PGColumn] { rows.columns }

    /// Decodes the columns in order, from column `start` (0-based) on, into a typed tuple; extra
    /// columns are ignored.
    public func decode<each Value: PGDecodable>(_ types: (repeat each Value).Type, from start: Int = 0) throws -> (repeat each Value) {
        var column = start
        func next<V: PGDecodable>(_ type: V.Type) throws -> V {
            defer { column += 1 }
            return try self.column(column, as: V.self)
        }
        return (repeat try next((each Value).self))
    }

    /// Decodes column `column` (0-based) as `Value`.
    public func column<Value: PGDecodable>(_ column: Int, as type: Value.Type = Value.self) throws -> Value {
        guard column >= 0, column < rows.columnCount, let result = rows.box?.pointer else {
            throw PGError(.missingColumn, message: "the result has \(rows.columnCount) columns; column \(column) was asked for")
        }
        let row = Int32(index)
        let field = Int32(column)
        let columnType = PGType(oid: PQftype(result, field))
        guard Value.accepts(columnType) else {
            let name = rows.column(column).name
            throw PGError(
                .typeMismatch, message: "column \(name) is \(columnType), which does not decode as \(Value.self)",
                column: name)
        }
        if PQgetisnull(result, row, field) == 1 {
            do { return try Value.decodeNull() } catch var error as PGError {
                let name = rows.column(column).name
                error.message = "column \(name) is NULL where \(Value.self) was expected"
                error.column = name
                throw error
            }
        }
        let length = Int(PQgetlength(result, row, field))
        let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, field), count: length)
        return try Value.decode(text: bytes, type: columnType)
    }

    /// Decodes the column named `name` as `Value`.
    public func column<Value: PGDecodable>(_ name: String, as type: Value.Type = Value.self) throws -> Value {
        guard let position = rows.columnIndex(named: name) else {
            throw PGError(.missingColumn, message: "no column named \(name)")
        }
        return try column(position, as: type)
    }
}
