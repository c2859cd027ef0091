import AccordCore
import Foundation

/// A directory search as the API takes it (`GET /v1/directory`), validated against the real
/// vocabularies. Every filter is repeatable (`country=BE&country=NL`, or `country=BE,NL`): values of
/// one filter are alternatives (OR), filters combine with AND.
public struct DirectoryQuery: Sendable, Equatable {
    public enum Sort: String, Sendable, CaseIterable {
        case relevance, name, newest
    }

    /// The filters that have a facet, and the tag prefix each reads (Schema/0006_directory.sql).
    public enum Facet: String, Sendable, CaseIterable {
        case country, region, field, language, offers, type

        var prefix: String {
            switch self {
            case .country: "c:"
            case .region: "r:"
            case .field: "f:"
            case .language: "l:"
            case .offers: "o:"
            case .type: "t:"
            }
        }
    }

    public static let maxQueryLength = 200
    public static let defaultLimit = 20

    /// The text as typed, trimmed; nil for none.
    public var text: String?
    public var countries: [String] = []
    /// M49 codes.
    public var regions: [String] = []
    public var types: [String] = []
    public var fields: [String] = []
    public var languages: [String] = []
    public var minCefr: String?
    public var offers: [String] = []
    public var seeks: [String] = []
    public var services: [String] = []
    public var tiers: [String] = []
    public var minStudents: Int?
    public var maxStudents: Int?
    public var sort: Sort = .name
    public var limit: Int = defaultLimit
    public var cursor: String?
    public var withFacets = true

    public init() {}

    static let parameters: Set<String> = [
        "q", "country", "region", "type", "field", "language", "minCefr", "offers", "seeks", "service", "tier",
        "minStudents", "maxStudents", "sort", "limit", "cursor", "facets",
    ]

    /// Parses query parameters (name, value pairs in order). Every problem is named in one 422.
    public static func parse(_ parameters: [(String, String)], reference: ReferenceData.Lists) throws -> DirectoryQuery {
        var query = DirectoryQuery()
        var v = Validator()
        var values: [String: [String]] = [:]
        for (name, value) in parameters {
            guard Self.parameters.contains(name) else {
                v.fail(name, "is not a parameter of the directory (known: \(Self.parameters.sorted().joined(separator: ", ")))")
                continue
            }
            if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                v.fail(name, "must not contain control characters")
                continue
            }
            values[name, default: []].append(value)
        }
        func single(_ name: String) -> String? {
            guard let list = values[name] else { return nil }
            if list.count > 1 { v.fail(name, "may be given once") }
            return list.last
        }
        /// Every value of a repeatable filter, comma-separated values split, each checked.
        func list(_ name: String, normalize: (String) -> String = { $0 }, _ valid: (String) -> Bool, _ expected: String) -> [String] {
            var result: [String] = []
            for raw in values[name] ?? [] {
                for part in raw.split(separator: ",", omittingEmptySubsequences: false) {
                    let value = normalize(part.trimmingCharacters(in: .whitespaces))
                    if valid(value) {
                        if !result.contains(value) { result.append(value) }
                    } else {
                        v.fail(name, "'\(String(part.prefix(60)))' is not \(expected)")
                    }
                }
            }
            if result.count > 50 { v.fail(name, "takes at most 50 values") }
            return result
        }

        if let q = single("q") {
            let trimmed = q.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.count > maxQueryLength {
                v.fail("q", "must have at most \(maxQueryLength) characters")
            } else if !trimmed.isEmpty {
                query.text = trimmed
            }
        }
        query.countries = list("country", normalize: { $0.uppercased() }, reference.countries.contains, "an ISO 3166-1 alpha-2 country code")
        let regionNames = Dictionary(reference.regions.map { ($0.value.lowercased(), $0.key) }, uniquingKeysWith: { a, _ in a })
        query.regions = list(
            "region", normalize: { regionNames[$0.lowercased()] ?? $0 }, { reference.regions[$0] != nil },
            "a UN M49 region or sub-region (a code such as 150 or a name such as Western Europe)")
        query.types = list(
            "type", { InstitutionType(rawValue: $0) != nil },
            "an institution type (\(InstitutionType.allCases.map(\.rawValue).joined(separator: ", ")))")
        query.fields = list("field", reference.iscedCodes.contains, "an ISCED-F 2013 code")
        query.languages = list("language", normalize: { $0.lowercased() }, reference.languages.contains, "an ISO 639-1 language code")
        if let level = single("minCefr") {
            let upper = level.uppercased()
            if CEFRLevel(rawValue: upper) == nil {
                v.fail("minCefr", "'\(String(level.prefix(20)))' is not a CEFR level (A1, A2, B1, B2, C1, C2)")
            } else if query.languages.isEmpty, values["language"] == nil {
                v.fail("minCefr", "needs language: the level is the level of teaching in that language")
            } else {
                query.minCefr = upper
            }
        }
        let activities = "an activity (\(Activity.allCases.map(\.rawValue).joined(separator: ", ")))"
        query.offers = list("offers", { Activity(rawValue: $0) != nil }, activities)
        query.seeks = list("seeks", { Activity(rawValue: $0) != nil }, activities)
        query.services = list(
            "service", { PartnerService(rawValue: $0) != nil },
            "a service (\(PartnerService.allCases.map(\.rawValue).joined(separator: ", ")))")
        query.tiers = list("tier", Tiers.isWellFormed, "a tier code (such as member)")
        func count(_ name: String) -> Int? {
            guard let text = single(name) else { return nil }
            guard let value = Int(text), (0...10_000_000).contains(value) else {
                v.fail(name, "must be a whole number from 0 to 10000000")
                return nil
            }
            return value
        }
        query.minStudents = count("minStudents")
        query.maxStudents = count("maxStudents")
        if let low = query.minStudents, let high = query.maxStudents, low > high {
            v.fail("maxStudents", "must not be less than minStudents")
        }
        if let sort = single("sort") {
            if let value = Sort(rawValue: sort) {
                query.sort = value
                if value == .relevance, query.text == nil { v.fail("sort", "relevance needs q") }
            } else {
                v.fail("sort", "must be relevance, name or newest")
            }
        } else {
            query.sort = query.text == nil ? .name : .relevance
        }
        if let limit = single("limit") {
            if let value = Int(limit), (1...100).contains(value) { query.limit = value } else { v.fail("limit", "must be between 1 and 100") }
        }
        query.cursor = single("cursor")
        if let facets = single("facets") {
            switch facets {
            case "true": query.withFacets = true
            case "false": query.withFacets = false
            default: v.fail("facets", "must be true or false")
            }
        }
        try v.validate()
        return query
    }

    /// The tags that satisfy `facet`'s filter (any of them), or nil when that filter is not used.
    func tags(for facet: Facet) -> [String]? {
        let values: [String]
        switch facet {
        case .country: values = countries
        case .region: values = regions
        case .type: values = types
        case .field: values = fields
        case .offers: values = offers
        case .language:
            guard !languages.isEmpty else { return nil }
            return languages.map { language in minCefr.map { "l:\(language):\($0)" } ?? "l:\(language)" }
        }
        return values.isEmpty ? nil : values.map { facet.prefix + $0 }
    }

    /// Whether any filter is given (a facet's, another tag filter or a student range).
    public var hasFilters: Bool {
        Facet.allCases.contains { tags(for: $0) != nil } || !plainTagFilters.isEmpty || minStudents != nil || maxStudents != nil
    }

    /// Filters without a facet: every one must hold for every counted row.
    var plainTagFilters: [[String]] {
        [seeks.map { "s:" + $0 }, services.map { "v:" + $0 }, tiers.map { "k:" + $0 }].filter { !$0.isEmpty }
    }

    /// What a cursor is bound to: the same text, filters and sort (not limit, not facets).
    var fingerprint: String {
        let parts: [String] = [
            text ?? "", countries.joined(separator: ","), regions.joined(separator: ","), types.joined(separator: ","),
            fields.joined(separator: ","), languages.joined(separator: ","), minCefr ?? "", offers.joined(separator: ","),
            seeks.joined(separator: ","), services.joined(separator: ","), tiers.joined(separator: ","),
            minStudents.map(String.init) ?? "", maxStudents.map(String.init) ?? "", sort.rawValue,
        ]
        return parts.joined(separator: "\u{1F}")
    }

    /// q as a domain, for an exact SCHAC match: `https://www.unibo.it/en` → `unibo.it`.
    public var domain: String? {
        guard var text = text?.lowercased() else { return nil }
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text.removeFirst(scheme.count) }
        if text.hasPrefix("www.") { text.removeFirst(4) }
        if let slash = text.firstIndex(of: "/") { text = String(text[..<slash]) }
        return text
    }
}
