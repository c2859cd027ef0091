import AccordCore
import Foundation
import PGStore
import Synchronization

extension DirectoryService {
    /// The text condition: the document matches the fuzzy form, or the acronym or SCHAC code is q.
    private static func textMatch(_ t: TextForms) -> PGQuery {
        if let fuzzy = t.fuzzy {
            return "(e.document @@ \(fuzzy)::tsquery OR e.acronym_folded = \(t.folded) OR e.schac = \(t.domain))"
        }
        return "(e.acronym_folded = \(t.folded) OR e.schac = \(t.domain))"
    }

    /// Relevance: an exact acronym or SCHAC/domain match first, then entries whose words all match as
    /// typed (no misspelling needed), then the weighted text rank (names over city over description
    /// over goals) plus how close the names are to q as a whole (trigram similarity). `strictMatch`
    /// is the condition "the document matches the strict form" when known already.
    static func rank(_ t: TextForms, strictMatch: PGQuery? = nil) -> PGQuery {
        var rank: PGQuery = "((CASE WHEN e.acronym_folded = \(t.folded) OR e.schac = \(t.domain) THEN 100 ELSE 0 END)"
        if let fuzzy = t.fuzzy, let strict = t.strict {
            rank.append(
                " + (CASE WHEN \(strictMatch ?? "e.document @@ \(strict)::tsquery") THEN 1 ELSE 0 END) + ts_rank(e.document, \(fuzzy)::tsquery)")
        }
        rank.append(" + similarity(e.names_folded, \(t.folded)))::float8")
        return rank
    }

    /// Conditions every listed or counted entry meets: text, the filters without a facet, the
    /// student range.
    static func baseConditions(_ query: DirectoryQuery, text: TextForms?, plan: FilterPlan) -> [PGQuery] {
        var conditions: [PGQuery] = []
        if let text { conditions.append(textMatch(text)) }
        for tags in query.plainTagFilters { conditions.append(plan.condition(tags)) }
        if let low = query.minStudents { conditions.append("e.student_count >= \(low)") }
        if let high = query.maxStudents { conditions.append("e.student_count <= \(high)") }
        return conditions
    }

    /// The faceted filters of `query`, each with its condition.
    static func facetConditions(_ query: DirectoryQuery, plan: FilterPlan) -> [(DirectoryQuery.Facet, PGQuery)] {
        DirectoryQuery.Facet.allCases.compactMap { facet in
            query.tags(for: facet).map { (facet, plan.condition($0)) }
        }
    }
}
