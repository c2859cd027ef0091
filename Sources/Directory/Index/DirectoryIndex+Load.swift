import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex {
    /// The statement an `Entry` is read from (`Entry.init(row:)` decodes its columns in this order):
    /// the document as text and the tags as one string.
    static func select(_ condition: PGQuery, orderedLimit: Int? = nil) -> PGQuery {
        var sql: PGQuery = """
            SELECT e.id, e.acronym_folded, e.schac, e.student_count, array_to_string(e.tags, ' '),
                   e.document::text, e.names_folded, e.sort_name
            FROM directory_entries e \(condition)
            """
        if let orderedLimit { sql.append(" ORDER BY e.id LIMIT \(orderedLimit)") }
        return sql
    }

    struct Entry {
        var id: UUID
        var acronym: String?
        var schac: String
        var students: Int?
        var tags: String
        /// The document as PostgreSQL prints a tsvector (`forEachLexemeBytes` reads it).
        var document: String
        var namesFolded: String
        var sortName: String

        init(row: PGRow) throws {
            (id, acronym, schac, students, tags, document, namesFolded, sortName) = try row.decode(
                (UUID, String?, String, Int?, String, String, String, String).self)
        }

        /// Whether the document is a tsvector as PostgreSQL prints one.
        var isReadable: Bool { DirectoryIndex.forEachLexemeBytes(in: document) { _, _ in } }
    }

    /// A document the index cannot read (not a tsvector as PostgreSQL prints one).
    struct UnreadableDocument: Error, CustomStringConvertible {
        var id: UUID
        var description: String { "the directory index cannot read the document of entry \(id)" }
    }

    /// Reads every entry, in batches in id order, the next batch coming while one is read in.
    static func load(pool: PGPool, batch: Int) async throws -> Store {
        let expected = try await pool.query("SELECT count(*) FROM directory_entries").scalar(Int.self)
        var store = Store()
        var builder = Lexicon.Builder(expectedPostings: expected * 48)
        var rows = try await pool.query(Self.select("", orderedLimit: batch))
        while true {
            let next: PGRows?
            if rows.count == batch, let last = rows.last {
                let after = try last.column(0, as: UUID.self)  // e.id
                async let following = pool.query(Self.select("WHERE e.id > \(after)", orderedLimit: batch))
                for row in rows { try store.appendLoaded(try Entry(row: row), into: &builder) }
                next = try await following
            } else {
                for row in rows { try store.appendLoaded(try Entry(row: row), into: &builder) }
                next = nil
            }
            guard let next else { break }
            rows = next
        }
        builder.build(into: &store.lexicon)
        store.compact()
        // The name order, as PostgreSQL sorts (its collation): an entry changed since gets a new
        // slot without a place in it. And the order of creation, newest first, for pages in newest order.
        let (byName, byCreation) = try await pool.withConnection { connection in
            (
                try await connection.query("SELECT id FROM directory_entries ORDER BY sort_name, id"),
                try await connection.query("SELECT id FROM directory_entries ORDER BY created_at DESC, id DESC")
            )
        }
        var place: Int32 = 0
        for row in byName {
            if let slot = store.slotOf(try row.column(0, as: UUID.self)) {
                store.namePlace[Int(slot)] = place
                store.unplaced -= 1
            }
            place += 1
        }
        place = 0
        for row in byCreation {
            if let slot = store.slotOf(try row.column(0, as: UUID.self)) { store.createdPlace[Int(slot)] = place }
            place += 1
        }
        return store
    }
}
