import Foundation
import Hummingbird
import NIOCore

/// Reads JSON request bodies, turning every failure into a problem that names the field at fault.
public enum JSONBody {
    /// Decodes the body as `T`: 415 when it is declared as something else than JSON, 413 over the
    /// context's limit, 400 for malformed JSON, 422 naming the field for a wrong type or a missing
    /// field.
    public static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        try await decodeWithData(type, from: request, context: context).value
    }

    /// Decodes the body as `T` like `decode`, and refuses (422) a field `T` does not know, so that
    /// nothing sent is silently dropped: for bodies that are stored as they are (agreement terms).
    public static func decodeStrictly<T: Codable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let (value, data) = try await decodeWithData(type, from: request, context: context)
        let sent = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        let kept = try? JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
        if let sent, let kept, let field = unknownField(sent, known: kept, at: "") {
            throw Problem.invalid(field: field, "is not a field of this document")
        }
        return value
    }

    /// The pointer of the first field of `sent` that `known` does not have (null values aside).
    static func unknownField(_ sent: Any, known: Any, at path: String) -> String? {
        if let object = sent as? [String: Any] {
            let knownObject = known as? [String: Any] ?? [:]
            for key in object.keys.sorted() where !(object[key] is NSNull) {
                let field = path + "/" + key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
                guard let knownValue = knownObject[key] else { return field }
                if let found = unknownField(object[key]!, known: knownValue, at: field) { return found }
            }
        } else if let array = sent as? [Any], let knownArray = known as? [Any], array.count == knownArray.count {
            for (index, element) in array.enumerated() {
                if let found = unknownField(element, known: knownArray[index], at: path + "/\(index)") { return found }
            }
        }
        return nil
    }

    static func decodeWithData<T: Decodable>(
        _ type: T.Type, from request: Request, context: some RequestContext
    ) async throws -> (value: T, data: Data) {
        if let type = request.headers[.contentType], !isJSON(type) {
            throw Problem(
                type: Problem.type("unsupported-media-type"), status: .unsupportedMediaType, title: "Unsupported media type",
                detail: "The body must be JSON, sent as Content-Type: application/json (not \(type.prefix(80))).")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch {
            throw Problem.payloadTooLarge(limit: context.maxUploadSize)
        }
        guard buffer.readableBytes > 0 else { throw Problem.badRequest("The request needs a JSON body.") }
        // PostgreSQL text cannot hold NUL; refuse it here rather than fail later.
        if containsEscapedNUL(buffer.readableBytesView) {
            throw Problem.invalid(field: "/", "strings may not contain the NUL character (\\u0000)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let data = Data(buffer.readableBytesView)
        do {
            return (try decoder.decode(T.self, from: data), data)
        } catch let error as DecodingError {
            throw problem(for: error)
        } catch {
            throw Problem.badRequest("The body is not valid JSON.")
        }
    }

    /// Whether a Content-Type names JSON: application/json or a +json type, whatever its parameters.
    static func isJSON(_ contentType: String) -> Bool {
        let media = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json"))
    }

    /// Whether JSON text holds `\u0000` (an escaped backslash before it does not count).
    static func containsEscapedNUL(_ bytes: ByteBufferView) -> Bool {
        let pattern = Array("u0000".utf8)
        var backslashes = 0
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                backslashes += 1
            } else {
                if byte == UInt8(ascii: "u"), backslashes % 2 == 1, bytes.distance(from: index, to: bytes.endIndex) >= 5,
                    bytes[index..<bytes.index(index, offsetBy: 5)].elementsEqual(pattern)
                {
                    return true
                }
                backslashes = 0
            }
            index = bytes.index(after: index)
        }
        return false
    }

    public static func problem(for error: DecodingError) -> Problem {
        switch error {
        case .keyNotFound(let key, let context):
            return .invalid(field: pointer(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return .invalid(field: pointer(context.codingPath), "must be \(describe(type))")
        case .valueNotFound(let type, let context):
            return .invalid(field: pointer(context.codingPath), "must be \(describe(type)), not null")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return .badRequest("The body is not valid JSON.") }
            return .invalid(field: pointer(context.codingPath), context.debugDescription)
        @unknown default:
            return .badRequest("The body could not be read.")
        }
    }

    /// A JSON pointer (RFC 6901) for a coding path: `/institution/names/0/lang`.
    public static func pointer(_ path: [any CodingKey]) -> String {
        if path.isEmpty { return "/" }
        return path.map { key in
            let name = key.intValue.map(String.init) ?? key.stringValue
            return "/" + name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
        }.joined()
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int32.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default:
            if "\(type)".hasPrefix("Array") { "an array" } else if "\(type)".hasPrefix("Dictionary") { "an object" } else { "of type \(type)" }
        }
    }
}

/// Collects validation failures so that one 422 names every invalid field at once: one entry per
/// field, at most `maxErrors` (an answer never grows with a hostile body).
public struct Validator {
    public private(set) var errors: [Problem.FieldError] = []
    /// Failures beyond `maxErrors`, counted but not listed.
    public private(set) var omitted = 0
    public static let maxErrors = 20
    /// The failures `detail` spells out; `errors` lists the rest.
    static let maxErrorsInDetail = 6

    public init() {}

    public mutating func fail(_ field: String, _ message: String) {
        if errors.contains(where: { $0.field == field }) { return }
        if errors.count >= Self.maxErrors {
            omitted += 1
        } else {
            errors.append(.init(field: field, message: message))
        }
    }

    public mutating func check(_ condition: Bool, _ field: String, _ message: @autoclosure () -> String) {
        if !condition { fail(field, message()) }
    }

    /// Checks a text: its length as PostgreSQL counts it (code points, see `Formats.length`) and,
    /// for `singleLine` (names, titles, cities …), no control characters or line breaks; for
    /// longer prose, none but tab and line breaks.
    public mutating func text(_ value: String, _ field: String, _ lengths: ClosedRange<Int>, singleLine: Bool = true) {
        let length = Formats.length(value)
        if !lengths.contains(length) {
            fail(
                field,
                lengths.lowerBound == 0
                    ? "must have at most \(lengths.upperBound) characters" : "must have \(lengths.lowerBound) to \(lengths.upperBound) characters")
        } else if singleLine ? !Formats.isSingleLine(value) : !Formats.isMultiLine(value) {
            fail(field, singleLine ? "must be one line without control characters" : "must not contain control characters")
        }
    }

    /// Checks the length of a list: when it is too long, says so once and returns false, so that
    /// its elements are not checked one by one.
    public mutating func list(_ count: Int, _ field: String, _ lengths: ClosedRange<Int>) -> Bool {
        guard lengths.contains(count) else {
            fail(
                field,
                lengths.lowerBound == 0
                    ? "must have at most \(lengths.upperBound) entries" : "must have \(lengths.lowerBound) to \(lengths.upperBound) entries")
            return false
        }
        return true
    }

    /// Throws a 422 naming every failure, if there was any.
    public func validate() throws {
        guard !errors.isEmpty else { return }
        let shown = errors.prefix(Self.maxErrorsInDetail).map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        let more = errors.count + omitted - min(errors.count, Self.maxErrorsInDetail)
        let detail = more > 0 ? "\(shown); and \(more) more" : shown
        throw Problem.invalid(errors, detail: detail)
    }
}
