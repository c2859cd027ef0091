import AccordCore
import AccordCrypto
import Foundation

/// Where a directory page ended: the sort key and id of its last item, bound to the query that
/// produced it. Keyset paging on (key, id) stays stable while entries are added or removed: an entry
/// appears at most once, in its place. Opaque to clients (base64url of JSON); anything that does not
/// decode into a cursor of the same query is a 400.
struct DirectoryCursor: Codable, Equatable {
    enum Key: Equatable {
        /// Relevance: the rank (exactly as PostgreSQL computed it, a float8).
        case rank(Double)
        /// Name: the folded first name.
        case name(String)
        /// Newest: the creation time, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
        case created(String)
    }

    var sort: String
    var rank: Double?
    var text: String?
    var id: UUID
    /// The query's fingerprint, hashed.
    var query: String

    init(key: Key, id: UUID, query: DirectoryQuery) {
        self.id = id
        self.query = Self.hash(query)
        switch key {
        case .rank(let value):
            sort = DirectoryQuery.Sort.relevance.rawValue
            rank = value
        case .name(let value):
            sort = DirectoryQuery.Sort.name.rawValue
            text = value
        case .created(let value):
            sort = DirectoryQuery.Sort.newest.rawValue
            text = value
        }
    }

    var key: Key? {
        switch DirectoryQuery.Sort(rawValue: sort) {
        case .relevance: rank.flatMap { $0.isFinite ? .rank($0) : nil }
        case .name: text.map { .name($0) }
        case .newest: text.flatMap { Timestamp.isPrecise($0) ? .created($0) : nil }
        case nil: nil
        }
    }

    static func hash(_ query: DirectoryQuery) -> String {
        String(Secrets.sha256Hex(Array(query.fingerprint.utf8)).prefix(16))
    }

    /// The cursor as a client sees it (the shared cursor codec).
    var encoded: String { Cursor.encode(self) }

    /// The cursor `text` for `query`, or a 400 that says why not.
    static func decode(_ text: String, for query: DirectoryQuery) throws -> (key: Key, id: UUID) {
        let cursor = try Cursor.decode(DirectoryCursor.self, from: text)
        guard let key = cursor.key else { throw Cursor.invalid }
        guard cursor.query == hash(query), cursor.sort == query.sort.rawValue else {
            throw Problem.badRequest("The cursor belongs to another query: page with the same q, filters and sort.")
        }
        return (key, cursor.id)
    }
}
