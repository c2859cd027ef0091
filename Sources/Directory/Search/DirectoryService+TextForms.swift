import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryService {
    /// The forms of q the statements use, computed by PostgreSQL in a first round trip so that the
    /// statements carry them as constants.
    public struct TextForms: Sendable {
        /// Every word a prefix, misspelled words widened (`accord_directory_tsquery(q, true)`); nil
        /// when q has no word.
        public var fuzzy: String?
        /// Every word a prefix, nothing widened.
        public var strict: String?
        /// q folded (accents and case).
        public var folded: String
        /// q as a domain, for an exact SCHAC match.
        public var domain: String?
        /// The directory's version when the search began (Schema/0009): the index answers only if
        /// it has applied every change up to it.
        public var directoryVersion: Int64 = 0

        public static func compute(_ q: String, domain: String?, run: ([PGQuery]) async throws -> [PGRows]) async throws -> TextForms {
            let rows = try await run([
                """
                SELECT accord_directory_tsquery(\(q), true)::text, accord_directory_tsquery(\(q), false)::text, accord_fold(\(q)),
                       (SELECT version FROM directory_version)
                """
            ])
            let r = try rows[0].first((String?, String?, String, Int64).self)!
            return TextForms(fuzzy: r.0, strict: r.1, folded: r.2, domain: domain, directoryVersion: r.3)
        }
    }
}
