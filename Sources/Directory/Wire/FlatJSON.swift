import AccordCore
import PGStore

/// A JSON array of flat objects (string values, or null) read without JSONDecoder: the shape of an
/// entry's names, subject areas and teaching languages. Anything else goes to JSONDecoder.
struct PGFlatJSONArray<Element: FlatJSONObject>: PGDecodable, Sendable {
    var elements: [Element]

    static func accepts(_ type: PGType) -> Bool { type == .jsonb || type == .json }

    static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> PGFlatJSONArray {
        if let objects = FlatJSON.arrayOfObjects(text.bindMemory(to: UInt8.self)) {
            var elements: [Element] = []
            elements.reserveCapacity(objects.count)
            for fields in objects {
                guard let element = Element(fields: fields) else { break }
                elements.append(element)
            }
            if elements.count == objects.count { return PGFlatJSONArray(elements: elements) }
        }
        return PGFlatJSONArray(elements: try PGJSONB<[Element]>.decode(text: text, type: type).value)
    }
}

/// A value made from one flat JSON object's fields (null ones left out); nil when a field it needs
/// is missing, and JSONDecoder then says what is wrong.
protocol FlatJSONObject: Codable, Sendable {
    init?(fields: [(key: String, value: String)])
}

extension FlatJSONObject {
    static func field(_ key: String, in fields: [(key: String, value: String)]) -> String? {
        fields.last { $0.key == key }?.value
    }
}

extension LocalizedName: FlatJSONObject {
    init?(fields: [(key: String, value: String)]) {
        guard let lang = Self.field("lang", in: fields), let value = Self.field("value", in: fields) else { return nil }
        self.init(lang: lang, value: value)
    }
}

extension SubjectArea: FlatJSONObject {
    init?(fields: [(key: String, value: String)]) {
        guard let code = Self.field("code", in: fields) else { return nil }
        self.init(code: code, strength: Self.field("strength", in: fields))
    }
}

extension TeachingLanguage: FlatJSONObject {
    init?(fields: [(key: String, value: String)]) {
        guard let code = Self.field("code", in: fields), let level = Self.field("level", in: fields) else { return nil }
        self.init(code: code, level: level)
    }
}

enum FlatJSON {
    /// The objects of `[{"k": "v", "n": null}, …]`, each as its fields with a string value in order;
    /// nil for any other JSON (or not JSON).
    static func arrayOfObjects(_ bytes: UnsafeBufferPointer<UInt8>) -> [[(key: String, value: String)]]? {
        var reader = Reader(bytes: bytes)
        guard reader.take(UInt8(ascii: "[")) else { return nil }
        var objects: [[(key: String, value: String)]] = []
        if reader.take(UInt8(ascii: "]")) { return reader.atEnd ? objects : nil }
        repeat {
            guard reader.take(UInt8(ascii: "{")) else { return nil }
            var fields: [(key: String, value: String)] = []
            if !reader.take(UInt8(ascii: "}")) {
                repeat {
                    guard let key = reader.string(), reader.take(UInt8(ascii: ":")) else { return nil }
                    if reader.takeNull() { continue }
                    guard let value = reader.string() else { return nil }
                    fields.append((key, value))
                } while reader.take(UInt8(ascii: ","))
                guard reader.take(UInt8(ascii: "}")) else { return nil }
            }
            objects.append(fields)
        } while reader.take(UInt8(ascii: ","))
        guard reader.take(UInt8(ascii: "]")), reader.atEnd else { return nil }
        return objects
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        var atEnd: Bool {
            mutating get {
                skipSpace()
                return i == bytes.count
            }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipSpace()
            guard i < bytes.count, bytes[i] == byte else { return false }
            i += 1
            return true
        }

        mutating func takeNull() -> Bool {
            skipSpace()
            guard i + 4 <= bytes.count, bytes[i] == UInt8(ascii: "n"), bytes[i + 1] == UInt8(ascii: "u"),
                bytes[i + 2] == UInt8(ascii: "l"), bytes[i + 3] == UInt8(ascii: "l")
            else { return false }
            i += 4
            return true
        }

        /// A JSON string, its escapes resolved; nil if there is none here or it is malformed.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = i
            // Without escapes (nearly always), the bytes as they are.
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") {
                guard bytes[i] >= 0x20 else { return nil }
                i += 1
            }
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "\"") {
                i += 1
                return String(validating: UnsafeBufferPointer(rebasing: bytes[start..<(i - 1)]), as: UTF8.self)
            }
            var out = Array(bytes[start..<i])
            while i < bytes.count {
                let byte = bytes[i]
                i += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { return nil }
                    let escape = bytes[i]
                    i += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard take(UInt8(ascii: "\\")), i < bytes.count, bytes[i] == UInt8(ascii: "u") else { return nil }
                            i += 1
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { return nil }
                        out.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        return nil
                    }
                default:
                    guard byte >= 0x20 else { return nil }
                    out.append(byte)
                }
            }
            return nil
        }

        private mutating func hex4() -> UInt32? {
            guard i + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[i]
                i += 1
                let digit: UInt32
                switch byte {
                case 0x30...0x39: digit = UInt32(byte - 0x30)
                case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }
    }
}
