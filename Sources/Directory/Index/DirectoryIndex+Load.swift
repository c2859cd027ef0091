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
        /// The document's lexemes in its order (byte order), and each one's positions: those of
        /// lexeme i are positions[positionStart[i] ..< positionStart[i + 1]].
        var lexemes: [String] = []
        var positionStart: [Int32] = [0]
        var positions: [UInt16] = []
        var namesFolded: String
        var sortName: String

        init(row: PGRow) throws {
            let document: String
            (id, acronym, schac, students, tags, document, namesFolded, sortName) = try row.decode(
                (UUID, String?, String, Int?, String, String, String, String).self)
            var lexemes: [String] = []
            var positionStart: [Int32] = [0]
            var positions: [UInt16] = []
            let readable = DirectoryIndex.forEachLexeme(in: document) { word, wordPositions in
                lexemes.append(word)
                positions.append(contentsOf: wordPositions)
                positionStart.append(Int32(positions.count))
            }
            guard readable else { throw UnreadableDocument(id: id) }
            (self.lexemes, self.positionStart, self.positions) = (lexemes, positionStart, positions)
        }
    }

    /// A document the index cannot read (not a tsvector as PostgreSQL prints one).
    struct UnreadableDocument: Error, CustomStringConvertible {
        var id: UUID
        var description: String { "the directory index cannot read the document of entry \(id)" }
    }

    /// Reads every entry, in batches in id order.
    static func load(pool: PGPool, batch: Int) async throws -> Store {
        var store = Store()
        var after: UUID?
        while true {
            let condition: PGQuery = after.map { "WHERE e.id > \($0)" } ?? ""
            let rows = try await pool.query(Self.select(condition, orderedLimit: batch))
            for row in rows { store.append(try Entry(row: row)) }
            guard rows.count == batch, let last = rows.last else { break }
            after = try last.column(0, as: UUID.self)  // e.id
        }
        store.lexicon.sortWords()
        // The name order, as PostgreSQL sorts (its collation): an entry changed since gets a new
        // slot without a place in it.
        // And the order of creation, newest first, for pages in newest order.
        let (byName, byCreation) = try await pool.withConnection { connection in
            (
                try await connection.query("SELECT id FROM directory_entries ORDER BY sort_name, id"),
                try await connection.query("SELECT id FROM directory_entries ORDER BY created_at DESC, id DESC")
            )
        }
        var place: Int32 = 0
        for row in byName {
            if let slot = store.slotOf[try row.column(0, as: UUID.self)] {
                store.namePlace[Int(slot)] = place
                store.unplaced -= 1
            }
            place += 1
        }
        place = 0
        for row in byCreation {
            if let slot = store.slotOf[try row.column(0, as: UUID.self)] { store.createdPlace[Int(slot)] = place }
            place += 1
        }
        return store
    }
}
