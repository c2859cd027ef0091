import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryItem {
    /// The entry columns an item is read from, in order, from the table or subquery `alias`; a
    /// statement may add columns after them.
    static func columns(_ alias: String) -> String {
        [
            "id", "schac", "names", "acronym", "country::text", "city", "type", "tier", "student_count",
            "subject_areas", "teaching_languages", "offers", "seeks", "services",
        ].map { "\(alias).\($0)" }.joined(separator: ", ")
    }

    static let columnCount = 14

    /// The item in the first `columnCount` columns of `row` (see `columns`), without a snippet.
    init(row: PGRow) throws {
        let r = try row.decode(
            (
                UUID, String, PGFlatJSONArray<LocalizedName>, String?, String, String?, String, String, Int?,
                PGFlatJSONArray<SubjectArea>, PGFlatJSONArray<TeachingLanguage>, [String], [String], [String]
            ).self)
        self.init(
            id: r.0, schac: r.1, names: r.2.elements, acronym: r.3, country: r.4, city: r.5, type: r.6, tier: r.7,
            studentCount: r.8, fields: r.9.elements, languages: r.10.elements, offers: r.11, seeks: r.12, services: r.13)
    }
}
