import Foundation

/// How a bound value travels to the server.
public enum PGFormat: Int32, Sendable {
    case text = 0
    case binary = 1
}

/// A Swift value that can be bound as a statement parameter.
public protocol PGEncodable: Sendable {
    /// The PostgreSQL type the parameter is declared as.
    static var pgType: PGType { get }
    /// The wire format of `encode(into:)`'s bytes; text unless said otherwise.
    static var pgFormat: PGFormat { get }
    /// Appends the value's bytes (without a terminator) to `buffer`.
    func encode(into buffer: inout [UInt8]) throws
}

extension PGEncodable {
    public static var pgFormat: PGFormat { .text }
}

/// A Swift value that a result column decodes into.
///
/// Decoding checks the column's type and throws `PGError` on a mismatch or an unexpected NULL; it
/// never substitutes a default value.
public protocol PGDecodable: Sendable {
    /// Whether a column of this PostgreSQL type may decode into `Self`.
    static func accepts(_ type: PGType) -> Bool
    /// Decodes the text-format bytes of a non-NULL value.
    static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Self
    /// The value for SQL NULL; throws `unexpectedNull` unless `Self` is optional.
    static func decodeNull() throws -> Self
}

extension PGDecodable {
    public static func decodeNull() throws -> Self {
        throw PGError(.unexpectedNull, message: "NULL where \(Self.self) was expected")
    }
}

/// A type that is both bound and decoded.
public typealias PGCodable = PGEncodable & PGDecodable

extension Optional: PGDecodable where Wrapped: PGDecodable {
    public static func accepts(_ type: PGType) -> Bool { Wrapped.accepts(type) }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Self {
        try Wrapped.decode(text: text, type: type)
    }
    public static func decodeNull() throws -> Self { nil }
}

// MARK: - helpers

@inline(__always)
func invalid(_ text: UnsafeRawBufferPointer, as type: Any.Type) -> PGError {
    let shown = String(decoding: text.prefix(64), as: UTF8.self)
    return PGError(.invalidValue, message: "cannot decode '\(shown)' as \(type)")
}

@inline(__always)
func appendASCII(_ string: String, to buffer: inout [UInt8]) {
    buffer.append(contentsOf: string.utf8)
}

/// Appends an integer's decimal digits (with a leading minus sign when negative), without making a
/// String of it first.
@inline(__always)
func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
    if value < 0 { buffer.append(UInt8(ascii: "-")) }
    var magnitude = value.magnitude
    var digits = 1
    var probe = magnitude
    while probe >= 10 {
        probe /= 10
        digits += 1
    }
    let start = buffer.count
    buffer.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
    buffer.withUnsafeMutableBufferPointer { bytes in
        var index = start + digits - 1
        repeat {
            bytes[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
    }
}

/// Parses an optionally signed decimal integer without allocating.
@inline(__always)
func parseInteger(_ text: UnsafeRawBufferPointer) -> Int64? {
    var index = 0
    var negative = false
    guard !text.isEmpty else { return nil }
    if text[0] == UInt8(ascii: "-") {
        negative = true
        index = 1
    } else if text[0] == UInt8(ascii: "+") {
        index = 1
    }
    guard index < text.count else { return nil }
    var value: Int64 = 0
    while index < text.count {
        let digit = text[index] &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(digit)) : m.addingReportingOverflow(Int64(digit))
        guard !o1, !o2 else { return nil }
        value = s
        index += 1
    }
    return value
}

// MARK: - Bool

extension Bool: PGEncodable, PGDecodable {
    public static var pgType: PGType { .bool }
    public func encode(into buffer: inout [UInt8]) throws { buffer.append(self ? UInt8(ascii: "t") : UInt8(ascii: "f")) }
    public static func accepts(_ type: PGType) -> Bool { type == .bool }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Bool {
        if text.count == 1, text[0] == UInt8(ascii: "t") { return true }
        if text.count == 1, text[0] == UInt8(ascii: "f") { return false }
        throw invalid(text, as: Bool.self)
    }
}

// MARK: - Integers

extension Int: PGEncodable, PGDecodable {
    public static var pgType: PGType { .int8 }
    public func encode(into buffer: inout [UInt8]) throws { appendDecimal(Int64(self), to: &buffer) }
    public static func accepts(_ type: PGType) -> Bool { type == .int8 || type == .int4 || type == .int2 }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Int {
        guard let value = parseInteger(text) else { throw invalid(text, as: Int.self) }
        return Int(value)
    }
}

extension Int64: PGEncodable, PGDecodable {
    public static var pgType: PGType { .int8 }
    public func encode(into buffer: inout [UInt8]) throws { appendDecimal(self, to: &buffer) }
    public static func accepts(_ type: PGType) -> Bool { type == .int8 || type == .int4 || type == .int2 }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Int64 {
        guard let value = parseInteger(text) else { throw invalid(text, as: Int64.self) }
        return value
    }
}

extension Int32: PGEncodable, PGDecodable {
    public static var pgType: PGType { .int4 }
    public func encode(into buffer: inout [UInt8]) throws { appendDecimal(Int64(self), to: &buffer) }
    public static func accepts(_ type: PGType) -> Bool { type == .int4 || type == .int2 }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Int32 {
        guard let value = parseInteger(text), let narrow = Int32(exactly: value) else { throw invalid(text, as: Int32.self) }
        return narrow
    }
}

extension Int16: PGEncodable, PGDecodable {
    public static var pgType: PGType { .int2 }
    public func encode(into buffer: inout [UInt8]) throws { appendDecimal(Int64(self), to: &buffer) }
    public static func accepts(_ type: PGType) -> Bool { type == .int2 }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Int16 {
        guard let value = parseInteger(text), let narrow = Int16(exactly: value) else { throw invalid(text, as: Int16.self) }
        return narrow
    }
}

// MARK: - Floating point

extension Double: PGEncodable, PGDecodable {
    public static var pgType: PGType { .float8 }
    public func encode(into buffer: inout [UInt8]) throws {
        if isNaN {
            appendASCII("NaN", to: &buffer)
        } else if self == .infinity {
            appendASCII("Infinity", to: &buffer)
        } else if self == -.infinity {
            appendASCII("-Infinity", to: &buffer)
        } else {
            // Swift prints the shortest text that reads back as the same Double.
            appendASCII(description, to: &buffer)
        }
    }
    public static func accepts(_ type: PGType) -> Bool { type == .float8 || type == .float4 || type == .numeric }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Double {
        guard let value = Double(String(decoding: text, as: UTF8.self)) else { throw invalid(text, as: Double.self) }
        return value
    }
}

// MARK: - Text

extension String: PGEncodable, PGDecodable {
    public static var pgType: PGType { .text }
    public func encode(into buffer: inout [UInt8]) throws {
        if utf8.contains(0) {
            throw PGError(.invalidValue, message: "text may not contain a NUL character")
        }
        buffer.append(contentsOf: utf8)
    }
    public static func accepts(_ type: PGType) -> Bool { PGType.textLike.contains(type.oid) }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> String {
        String(decoding: text, as: UTF8.self)
    }
}

// MARK: - UUID

/// UUIDs in their canonical text form, written and read without `uuidString` and
/// `UUID(uuidString:)`, which go through `sprintf` and a `String`.
extension UUID: PGEncodable, PGDecodable {
    public static var pgType: PGType { .uuid }

    public func encode(into buffer: inout [UInt8]) throws {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        withUnsafeBytes(of: uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { buffer.append(UInt8(ascii: "-")) }
                buffer.append(digits[Int(byte >> 4)])
                buffer.append(digits[Int(byte & 0x0F)])
            }
        }
    }

    public static func accepts(_ type: PGType) -> Bool { type == .uuid }

    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> UUID {
        guard text.count == 36 else { throw invalid(text, as: UUID.self) }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        var position = 0
        for index in 0..<16 {
            if index == 4 || index == 6 || index == 8 || index == 10 {
                guard text[position] == UInt8(ascii: "-") else { throw invalid(text, as: UUID.self) }
                position += 1
            }
            guard let high = nibble(text[position]), let low = nibble(text[position + 1]) else { throw invalid(text, as: UUID.self) }
            bytes[index] = high << 4 | low
            position += 2
        }
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}

// MARK: - bytea

extension Data: PGEncodable, PGDecodable {
    public static var pgType: PGType { .bytea }
    public static var pgFormat: PGFormat { .binary }
    public func encode(into buffer: inout [UInt8]) throws { buffer.append(contentsOf: self) }
    public static func accepts(_ type: PGType) -> Bool { type == .bytea }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Data {
        // Text output of bytea is hex: \x0a1b…
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0 else {
            throw invalid(text, as: Data.self)
        }
        var data = Data(capacity: (text.count - 2) / 2)
        var index = 2
        while index < text.count {
            guard let high = hexValue(text[index]), let low = hexValue(text[index + 1]) else { throw invalid(text, as: Data.self) }
            data.append(high << 4 | low)
            index += 2
        }
        return data
    }
}

@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}

// MARK: - JSONB

/// A Codable value stored as `jsonb` (decodes from `json` too).
public struct PGJSONB<Value: Codable & Sendable>: PGCodable {
    public var value: Value
    public init(_ value: Value) { self.value = value }

    public static var pgType: PGType { .jsonb }
    public func encode(into buffer: inout [UInt8]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        buffer.append(contentsOf: try encoder.encode(value))
    }
    public static func accepts(_ type: PGType) -> Bool { type == .jsonb || type == .json }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> PGJSONB<Value> {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return PGJSONB(try decoder.decode(Value.self, from: Data(text)))
        } catch {
            throw PGError(.invalidValue, message: "cannot decode JSON as \(Value.self): \(error)")
        }
    }
}

extension PGJSONB: Equatable where Value: Equatable {}
extension PGJSONB: Hashable where Value: Hashable {}

/// A `json`/`jsonb` value kept as its text, for passing JSON that PostgreSQL built straight to a
/// response without decoding and encoding it again.
public struct PGRawJSON: PGDecodable, Sendable {
    public let bytes: [UInt8]
    public static func accepts(_ type: PGType) -> Bool { type == .jsonb || type == .json }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> PGRawJSON {
        PGRawJSON(bytes: Array(text))
    }
}

// MARK: - Text enumerations

/// A string-backed enumeration binds and decodes as its raw value: declaring the conformances
/// (`extension Status: PGEncodable, PGDecodable {}`) is all it takes. A value that is not one of
/// its cases fails to decode with `.invalidValue`.
extension PGEncodable where Self: RawRepresentable, RawValue == String {
    public static var pgType: PGType { .text }
    public func encode(into buffer: inout [UInt8]) throws { try rawValue.encode(into: &buffer) }
}

extension PGDecodable where Self: RawRepresentable, RawValue == String {
    public static func accepts(_ type: PGType) -> Bool { String.accepts(type) }
    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Self {
        let raw = try String.decode(text: text, type: type)
        guard let value = Self(rawValue: raw) else { throw PGError(.invalidValue, message: "\(raw) is not a \(Self.self)") }
        return value
    }
}
