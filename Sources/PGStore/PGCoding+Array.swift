import Foundation

/// An element type of a one-dimensional PostgreSQL array.
public protocol PGArrayElement: PGCodable {
    /// The array type whose elements are `Self` (for example `text[]` for `String`).
    static var pgArrayType: PGType { get }
    /// Whether an array column of this type may decode into `[Self]`.
    static func acceptsArray(_ type: PGType) -> Bool
}

extension String: PGArrayElement {
    public static var pgArrayType: PGType { .textArray }
    public static func acceptsArray(_ type: PGType) -> Bool {
        type == .textArray || type == .varcharArray || type == .bpcharArray
    }
}

extension Int: PGArrayElement {
    public static var pgArrayType: PGType { Int64.pgArrayType }
    public static func acceptsArray(_ type: PGType) -> Bool { Int64.acceptsArray(type) }
}

extension Int64: PGArrayElement {
    public static var pgArrayType: PGType { .int8Array }
    public static func acceptsArray(_ type: PGType) -> Bool {
        type == .int8Array || type == .int4Array || type == .int2Array
    }
}

extension Int32: PGArrayElement {
    public static var pgArrayType: PGType { .int4Array }
    public static func acceptsArray(_ type: PGType) -> Bool { type == .int4Array || type == .int2Array }
}

extension UUID: PGArrayElement {
    public static var pgArrayType: PGType { .uuidArray }
    public static func acceptsArray(_ type: PGType) -> Bool { type == .uuidArray }
}

extension Double: PGArrayElement {
    public static var pgArrayType: PGType { .float8Array }
    public static func acceptsArray(_ type: PGType) -> Bool { type == .float8Array }
}

extension Bool: PGArrayElement {
    public static var pgArrayType: PGType { .boolArray }
    public static func acceptsArray(_ type: PGType) -> Bool { type == .boolArray }
}

/// One-dimensional arrays in PostgreSQL's text form: `{"a","b \"c\"",NULL}`.
extension Array: PGEncodable where Element: PGArrayElement {
    public static var pgType: PGType { Element.pgArrayType }

    public func encode(into buffer: inout [UInt8]) throws {
        buffer.append(UInt8(ascii: "{"))
        var element: [UInt8] = []
        for (index, value) in enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            element.removeAll(keepingCapacity: true)
            try value.encode(into: &element)
            buffer.append(UInt8(ascii: "\""))
            for byte in element {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { buffer.append(UInt8(ascii: "\\")) }
                buffer.append(byte)
            }
            buffer.append(UInt8(ascii: "\""))
        }
        buffer.append(UInt8(ascii: "}"))
    }
}

extension Array: PGDecodable where Element: PGArrayElement {
    public static func accepts(_ type: PGType) -> Bool { Element.acceptsArray(type) }

    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> [Element] {
        let elementType = elementType(of: type)
        var result: [Element] = []
        var index = 0
        // Arrays with a lower bound other than 1 are printed as "[0:2]={…}".
        if index < text.count, text[index] == UInt8(ascii: "[") {
            while index < text.count, text[index] != UInt8(ascii: "=") { index += 1 }
            index += 1
        }
        guard index < text.count, text[index] == UInt8(ascii: "{"), text.last == UInt8(ascii: "}") else {
            throw invalid(text, as: [Element].self)
        }
        index += 1
        let end = text.count - 1
        if index == end { return [] }
        var element: [UInt8] = []
        while index <= end {
            element.removeAll(keepingCapacity: true)
            var quoted = false
            if text[index] == UInt8(ascii: "{") {
                throw PGError(.invalidValue, message: "multi-dimensional arrays are not supported")
            }
            if text[index] == UInt8(ascii: "\"") {
                quoted = true
                index += 1
                while index < end, text[index] != UInt8(ascii: "\"") {
                    if text[index] == UInt8(ascii: "\\") { index += 1 }
                    element.append(text[index])
                    index += 1
                }
                index += 1  // closing quote
            } else {
                while index < end, text[index] != UInt8(ascii: ",") {
                    element.append(text[index])
                    index += 1
                }
            }
            if !quoted, element.count == 4, element.elementsEqual("NULL".utf8) {
                result.append(try Element.decodeNull())
            } else {
                let value = try element.withUnsafeBytes { try Element.decode(text: $0, type: elementType) }
                result.append(value)
            }
            guard index == end || text[index] == UInt8(ascii: ",") else { throw invalid(text, as: [Element].self) }
            index += 1
        }
        return result
    }

    private static func elementType(of arrayType: PGType) -> PGType {
        switch arrayType {
        case .textArray: .text
        case .varcharArray: .varchar
        case .bpcharArray: .bpchar
        case .int2Array: .int2
        case .int4Array: .int4
        case .int8Array: .int8
        case .float8Array: .float8
        case .uuidArray: .uuid
        case .boolArray: .bool
        default: .unknown
        }
    }
}
