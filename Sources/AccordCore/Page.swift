import AccordCrypto
import Foundation
import Hummingbird

/// One page of a keyset-paged list: `{"items": […], "nextCursor": "…"}`, the cursor left out on
/// the last page.
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public var items: [Item]
    /// Where the next page starts; nil on the last page.
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    /// The page of `limit` items out of `fetched` (read with `LIMIT limit + 1`): a cursor at the
    /// last item shown when there was one more.
    public init<Position: Encodable>(fetched: [Item], limit: Int, position: (Item) -> Position) {
        let items = Array(fetched.prefix(limit))
        self.items = items
        self.nextCursor = fetched.count > limit ? items.last.map { Cursor.encode(position($0)) } : nil
    }
}

extension Page: ResponseEncodable {}

/// The one codec of keyset cursors: a position (the sort key and id of a page's last item) as
/// base64url JSON with sorted keys, so the same position always reads the same. Opaque to
/// clients; anything that does not decode into a position is a 400.
public enum Cursor {
    /// The longest cursor accepted.
    public static let maximumLength = 1024

    public static func encode(_ position: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Base64URL.encode(Array((try? encoder.encode(position)) ?? Data()))
    }

    /// The position in `text`; a 400 when it is not one of type `Position`.
    public static func decode<Position: Decodable>(_ type: Position.Type, from text: String) throws -> Position {
        guard text.utf8.count <= maximumLength, let bytes = Base64URL.decode(text),
            let position = try? JSONDecoder().decode(Position.self, from: Data(bytes))
        else { throw invalid }
        return position
    }

    /// The problem of a cursor that is not one.
    public static let invalid = Problem.badRequest("The cursor is not valid: pass nextCursor back unchanged.")
}

/// A keyset position on (creation time, id), the order of most lists: the time as the API
/// printed it (`Timestamp.precise`), so that it compares exactly.
public struct CreatedPosition: Codable, Sendable {
    public var createdAt: String
    public var id: UUID

    public init(createdAt: String, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        createdAt = try container.decode(String.self, forKey: .createdAt)
        id = try container.decode(UUID.self, forKey: .id)
        guard Timestamp.isPrecise(createdAt) else {
            throw DecodingError.dataCorruptedError(forKey: .createdAt, in: container, debugDescription: "not a timestamp")
        }
    }

    enum CodingKeys: String, CodingKey { case createdAt, id }
}

/// The one parser of the `limit` query parameter.
public enum Limit {
    /// `text` as a limit: `fallback` when absent; a 422 naming `limit` unless a whole number in
    /// `range`.
    public static func parse(_ text: String?, default fallback: Int, range: ClosedRange<Int> = 1...100) throws -> Int {
        var v = Validator()
        let limit = parse(text, default: fallback, range: range, into: &v)
        try v.validate()
        return limit
    }

    /// As `parse(_:default:range:)`, collecting the failure in `v`.
    public static func parse(_ text: String?, default fallback: Int, range: ClosedRange<Int> = 1...100, into v: inout Validator) -> Int {
        guard let text else { return fallback }
        guard let limit = Int(text), range.contains(limit) else {
            v.fail("limit", "must be between \(range.lowerBound) and \(range.upperBound)")
            return fallback
        }
        return limit
    }
}
