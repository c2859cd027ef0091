import Foundation
import Hummingbird
import NIOCore

/// The JSON of every response body and socket frame: as `JSONEncoder` writes it (dates in ISO 8601,
/// keys in the order they are encoded), except that UUIDs are written in lower case, as RFC 9562
/// recommends (`JSONEncoder` writes `uuidString`, in upper case, and has no option for it). Ids are
/// read in either case.
public struct WireEncoder: ResponseEncoder, Sendable {
    public init() {}

    /// The JSON text of `value`.
    public func encode(_ value: some Encodable) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        try Self.write(try Self.tree(value, codingPath: []), into: &output)
        return output
    }

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        let bytes = try encode(value)
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .contentLength: String(bytes.count)],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    // MARK: The tree of a value

    /// A JSON value, objects keeping their keys' order.
    indirect enum Node {
        case null
        case bool(Bool)
        case integer(String)
        case number(Double)
        case string(String)
        case array(Box)
        case object(Box)
    }

    /// The children of an array or an object, shared by the containers that fill them.
    final class Box {
        var keys: [String] = []
        var values: [Node] = []

        func set(_ key: String, _ value: Node) {
            if let index = keys.firstIndex(of: key) {
                values[index] = value
            } else {
                keys.append(key)
                values.append(value)
            }
        }
    }

    static let dateFormat = Date.ISO8601FormatStyle()

    static func tree(_ value: some Encodable, codingPath: [any CodingKey]) throws -> Node {
        switch value {
        case let uuid as UUID: return .string(uuid.uuidString.lowercased())
        case let date as Date: return .string(date.formatted(dateFormat))
        case let url as URL: return .string(url.absoluteString)
        case let data as Data: return .string(data.base64EncodedString())
        default:
            let encoder = TreeEncoder(codingPath: codingPath)
            try value.encode(to: encoder)
            return encoder.result ?? .object(Box())
        }
    }

    // MARK: Writing

    static func write(_ node: Node, into output: inout [UInt8]) throws {
        switch node {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let text): output.append(contentsOf: text.utf8)
        case .number(let value):
            guard value.isFinite else {
                throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "JSON has no \(value)"))
            }
            if value == value.rounded(), abs(value) < 1e15 {
                output.append(contentsOf: String(Int64(value)).utf8)
            } else {
                output.append(contentsOf: "\(value)".utf8)
            }
        case .string(let text): writeString(text, into: &output)
        case .array(let box):
            output.append(UInt8(ascii: "["))
            for (index, element) in box.values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                try write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let box):
            output.append(UInt8(ascii: "{"))
            for index in box.keys.indices {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(box.keys[index], into: &output)
                output.append(UInt8(ascii: ":"))
                try write(box.values[index], into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
            case 0x0A: output.append(contentsOf: #"\n"#.utf8)
            case 0x0D: output.append(contentsOf: #"\r"#.utf8)
            case 0x09: output.append(contentsOf: #"\t"#.utf8)
            case 0x08: output.append(contentsOf: #"\b"#.utf8)
            case 0x0C: output.append(contentsOf: #"\f"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: #"\u00"#.utf8)
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// The `Encoder` behind `WireEncoder`: builds a `Node`.
private final class TreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var result: WireEncoder.Node?

    init(codingPath: [any CodingKey]) { self.codingPath = codingPath }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: WireEncoder.Box
        if case .object(let existing) = result {
            box = existing
        } else {
            box = WireEncoder.Box()
            result = .object(box)
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: WireEncoder.Box
        if case .array(let existing) = result {
            box = existing
        } else {
            box = WireEncoder.Box()
            result = .array(box)
        }
        return UnkeyedContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleContainer(encoder: self) }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

private func node<T: Encodable>(_ value: T, at codingPath: [any CodingKey]) throws -> WireEncoder.Node {
    switch value {
    case let value as Bool: return .bool(value)
    case let value as String: return .string(value)
    case let value as Int: return .integer(String(value))
    case let value as Int64: return .integer(String(value))
    case let value as Int32: return .integer(String(value))
    case let value as UInt8: return .integer(String(value))
    case let value as UInt: return .integer(String(value))
    case let value as Double: return .number(value)
    case let value as Float: return .number(Double(value))
    default: return try WireEncoder.tree(value, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: WireEncoder.Box
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { box.set(key.stringValue, .null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.set(key.stringValue, try node(value, at: codingPath + [key]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = WireEncoder.Box()
        box.set(key.stringValue, .object(nested))
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = WireEncoder.Box()
        box.set(key.stringValue, .array(nested))
        return UnkeyedContainer(box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        ReferencingEncoder(codingPath: codingPath + [key]) { [box] node in box.set(key.stringValue, node) }
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let box: WireEncoder.Box
    let codingPath: [any CodingKey]
    var count: Int { box.values.count }

    private var nextKey: AnyKey { AnyKey(intValue: box.values.count) }

    mutating func encodeNil() throws { box.values.append(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws { box.values.append(try node(value, at: codingPath + [nextKey])) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = WireEncoder.Box()
        let key = nextKey
        box.values.append(.object(nested))
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = WireEncoder.Box()
        let key = nextKey
        box.values.append(.array(nested))
        return UnkeyedContainer(box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        let index = box.values.count
        box.values.append(.null)
        return ReferencingEncoder(codingPath: codingPath + [AnyKey(intValue: index)]) { [box] node in box.values[index] = node }
    }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.result = .null }

    mutating func encode<T: Encodable>(_ value: T) throws { encoder.result = try node(value, at: codingPath) }
}

/// An encoder whose result goes into a place of its parent when it is done (`superEncoder`).
private final class ReferencingEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    let inner: TreeEncoder
    let store: (WireEncoder.Node) -> Void

    init(codingPath: [any CodingKey], store: @escaping (WireEncoder.Node) -> Void) {
        self.codingPath = codingPath
        self.inner = TreeEncoder(codingPath: codingPath)
        self.store = store
    }

    deinit { store(inner.result ?? .object(WireEncoder.Box())) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { inner.container(keyedBy: type) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { inner.unkeyedContainer() }
    func singleValueContainer() -> any SingleValueEncodingContainer { inner.singleValueContainer() }
}
