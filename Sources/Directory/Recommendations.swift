import AccordCore
import Foundation
import PGStore

/// Institutions that complement the caller's, best first, each with its score and its reasons.
public struct Recommendations: Codable, Sendable {
    public struct Item: Codable, Sendable {
        public var institution: DirectoryItem
        public var score: Double
        /// In words a person understands: "offers joint degrees, which you seek".
        public var reasons: [String]
    }

    public var items: [Item]
}

extension DirectoryService {
    /// How many entries the first pass keeps for the exact scoring.
    static let recommendationCandidates = 300

    /// Ranks the other active institutions by how well they complement the caller's: they offer what
    /// it seeks and seek what it offers; shared subject areas, above all where one is strong and the
    /// other growing; a common teaching language at B2 or above. Leaves out the caller's own, and
    /// the institutions it already has a partnership with (proposed, negotiating or active) or
    /// that declined one or saw theirs declined.
    ///
    /// A first pass keeps the best few hundred by a coarse score (from the index in memory when it
    /// serves, else in SQL; both keep the same entries); Swift scores those exactly and says why.
    public func recommendations(caller: Identity, limit: Int) async throws -> Recommendations {
        guard let own = caller.institutionID else {
            throw Problem.forbidden("Recommendations are for the members of an institution.")
        }
        let ownProfile: PGQuery = "SELECT offers, seeks, subject_areas, teaching_languages FROM institutions WHERE id = \(own)"
        var known: Set<UUID> = []
        var profile: Profile?
        var candidates: PGRows?
        if let index, index.isServing {
            // The first pass from memory, once the index has every change committed before now.
            let first = try await pool.readAsTenant(caller, [ownProfile, "SELECT version FROM directory_version", Self.partners(of: own)])
            profile = try Self.profile(first[0])
            let version = try first[1].scalar(Int64.self)
            known = Set(try first[2].decode(UUID.self))
            if let profile,
                let ids = index.complements(
                    offers: Set(profile.offers), seeks: Set(profile.seeks), broadFields: Set(profile.fields.map { String($0.code.prefix(2)) }),
                    excluding: own, count: Self.recommendationCandidates + known.count, directoryVersion: version)
            {
                candidates = try await pool.readAsTenant(
                    caller, "SELECT \(unsafeRaw: DirectoryItem.columns("e")) FROM directory_entries e WHERE e.id = ANY (\(ids))")
            }
        }
        if candidates == nil {
            let results = try await pool.readAsTenant(caller, settings: [("jit", "off")], [ownProfile, Self.firstPass(own)])
            profile = try Self.profile(results[0])
            candidates = results[1]
        }
        guard let profile, let candidates else { throw Problem.notFound("Your institution is not visible.") }
        let lists = try await reference.lists()
        var scored: [Recommendations.Item] = []
        for row in candidates {
            let item = try DirectoryItem(row: row)
            guard !known.contains(item.id) else { continue }
            let (score, reasons) = Self.complementarity(of: item, to: profile, lists: lists)
            guard score > 0 else { continue }
            scored.append(.init(institution: item, score: (score * 10).rounded() / 10, reasons: reasons))
        }
        scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.institution.id.uuidString < $1.institution.id.uuidString }
        return Recommendations(items: Array(scored.prefix(limit)))
    }

    /// The institutions `own` has a partnership with, open or declined (row-level security shows
    /// only its own partnerships).
    static func partners(of own: UUID) -> PGQuery {
        """
        SELECT CASE WHEN initiator_id = \(own) THEN partner_id ELSE initiator_id END FROM partnerships
        WHERE stage IN ('invited', 'negotiating', 'active', 'declined')
        """
    }

    /// The caller's own profile, from the first row of `rows`; nil when it is not visible.
    static func profile(_ rows: PGRows) throws -> Profile? {
        guard let mine = try rows.first(([String], [String], PGJSONB<[SubjectArea]>, PGJSONB<[TeachingLanguage]>).self) else { return nil }
        return Profile(offers: mine.0, seeks: mine.1, fields: mine.2.value, languages: mine.3.value)
    }

    /// The first pass in SQL (the index not serving): PostgreSQL scores every entry coarsely from
    /// bit masks, reading only a covering index, and keeps the best few hundred, ties by id.
    static func firstPass(_ own: UUID) -> PGQuery {
        """
        WITH me AS MATERIALIZED (
            SELECT i.id, accord_activity_mask(i.offers) AS om, accord_activity_mask(i.seeks) AS sm,
                   accord_fields_mask(i.subject_areas) AS fm
            FROM institutions i WHERE i.id = \(own)
        ),
        top AS (
            SELECT e.id FROM directory_entries e, me
            WHERE e.id <> me.id AND e.id NOT IN (\(partners(of: own)))
            ORDER BY 3 * bit_count((e.offers_mask & me.sm)::bit(8)) + 2 * bit_count((e.seeks_mask & me.om)::bit(8))
                     + bit_count((e.fields_mask & me.fm)::bit(12)) DESC, e.id
            LIMIT \(Self.recommendationCandidates)
        )
        SELECT \(unsafeRaw: DirectoryItem.columns("e")) FROM top JOIN directory_entries e ON e.id = top.id
        """
    }

    struct Profile {
        var offers: [String]
        var seeks: [String]
        var fields: [SubjectArea]
        var languages: [TeachingLanguage]
    }

    /// The exact score of `other` for `me`, and its reasons, strongest first.
    static func complementarity(of other: DirectoryItem, to me: Profile, lists: ReferenceData.Lists) -> (Double, [String]) {
        var parts: [(Double, String)] = []
        for activity in other.offers where me.seeks.contains(activity) {
            parts.append((3, "offers \(label(activity)), which you seek"))
        }
        for activity in other.seeks where me.offers.contains(activity) {
            parts.append((2, "seeks \(label(activity)), which you offer"))
        }
        // Subject areas: the closest pair for each of theirs (a code matches its ancestors and
        // descendants: 07 and 0714 are the same area at two levels).
        var fieldParts: [(Double, String)] = []
        for theirs in other.fields {
            var best: (Double, String)?
            for mine in me.fields where theirs.code.hasPrefix(mine.code) || mine.code.hasPrefix(theirs.code) {
                let code = theirs.code.count >= mine.code.count ? theirs.code : mine.code
                let name = "\(code) \(lists.iscedNames[code] ?? "")".trimmingCharacters(in: .whitespaces)
                let candidate: (Double, String)
                switch (theirs.strength, mine.strength) {
                case ("strong", "growing"): candidate = (2, "strong in \(name), where you are growing")
                case ("growing", "strong"): candidate = (1.5, "growing in \(name), where you are strong")
                case ("strong", _): candidate = (1.25, "strong in \(name)")
                default: candidate = (1, "also active in \(name)")
                }
                if best == nil || candidate.0 > best!.0 { best = candidate }
            }
            if let best { fieldParts.append(best) }
        }
        fieldParts.sort { $0.0 > $1.0 }
        parts.append(contentsOf: fieldParts.prefix(4))
        for theirs in other.languages {
            guard let level = CEFRLevel(rawValue: theirs.level), level >= .b2,
                let mine = me.languages.first(where: { $0.code == theirs.code }),
                let myLevel = CEFRLevel(rawValue: mine.level), myLevel >= .b2
            else { continue }
            parts.append((1, "teaches in \(lists.languageNames[theirs.code] ?? theirs.code) at \(theirs.level)"))
        }
        parts.sort { $0.0 > $1.0 }
        return (parts.reduce(0) { $0 + $1.0 }, parts.map(\.1))
    }

    /// An activity in words; a value outside the vocabulary as it is.
    static func label(_ activity: String) -> String { Activity(rawValue: activity)?.label ?? activity }
}
