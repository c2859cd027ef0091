import AccordCore
import AccordCrypto
import Foundation

/// The terms of one agreement version (`PUT /v1/partnerships/{id}/agreement`), in the shape of an
/// EWP inter-institutional agreement plus what the network adds (activities beyond mobility, KPIs,
/// the financial model).
public struct AgreementTerms: Codable, Sendable, Equatable {
    public var startDate: String
    public var endDate: String
    public var cooperationConditions: [CooperationCondition]
    public var activities: [AgreementActivity]?
    public var responsible: [ResponsiblePerson]?
    public var kpis: [KPI]?
    public var financial: Financial?
    /// Left out of the hash, as in EWP: contacts change without a new approval being owed.
    public var contacts: [Contact]?

    /// One direction of mobility between the parties.
    public struct CooperationCondition: Codable, Sendable, Equatable {
        public var kind: MobilityKind
        public var sending: UUID
        public var receiving: UUID
        public var academicYears: AcademicYears
        public var mobilitiesPerYear: Int
        /// Studies and traineeships.
        public var totalMonthsPerYear: Double?
        /// Staff mobility.
        public var totalDaysPerYear: Double?
        public var subjectAreas: [SubjectArea]?
        public var languages: [LanguageSkill]?
        public var eqfLevels: [Int]?
        public var blended: Bool?
    }

    public enum MobilityKind: String, Codable, Sendable, CaseIterable {
        case studentStudies, studentTraineeship, staffTeaching, staffTraining

        var isStudent: Bool { self == .studentStudies || self == .studentTraineeship }
    }

    public struct AcademicYears: Codable, Sendable, Equatable {
        public var first: String
        public var last: String
    }

    public struct SubjectArea: Codable, Sendable, Equatable {
        public var isced: String
        public var clarification: String?
    }

    public struct LanguageSkill: Codable, Sendable, Equatable {
        public var language: String
        public var cefr: String?
    }

    /// Cooperation beyond mobility (left out of the EWP export).
    public struct AgreementActivity: Codable, Sendable, Equatable {
        public var kind: ActivityKind
        public var title: String?
        public var description: String?
        public var isced: String?
    }

    public enum ActivityKind: String, Codable, Sendable, CaseIterable {
        case jointDegree, doubleDegree, research, coil, summerSchool
    }

    public struct ResponsiblePerson: Codable, Sendable, Equatable {
        public var institution: UUID
        public var name: String
        public var email: String
        public var role: String?
    }

    public struct KPI: Codable, Sendable, Equatable {
        public var key: String
        public var label: String
        public var target: Double
        public var period: KPIPeriod
    }

    public enum KPIPeriod: String, Codable, Sendable, CaseIterable {
        case academicYear, calendarYear
    }

    public struct Financial: Codable, Sendable, Equatable {
        public var model: FinancialModel
        public var notes: String?
    }

    public enum FinancialModel: String, Codable, Sendable, CaseIterable {
        case tuitionWaiver, costSharing, feePaying, externallyFunded
    }

    public struct Contact: Codable, Sendable, Equatable {
        public var institution: UUID
        public var name: String
        public var email: String
        public var role: String?
        public var phone: String?
    }
}

// MARK: Validation

extension AgreementTerms {
    /// Checks every field against the real vocabularies and the partnership's parties; a 422
    /// naming each field at fault.
    func validate(parties: Set<UUID>, lists: ReferenceData.Lists) throws {
        var v = Validator()
        let start = Self.date(startDate)
        let end = Self.date(endDate)
        v.check(start != nil, "/startDate", "must be a date (YYYY-MM-DD)")
        v.check(end != nil, "/endDate", "must be a date (YYYY-MM-DD)")
        if let start, let end { v.check(start < end, "/endDate", "must be after startDate") }
        // Academic years the agreement's dates reach: "2027/2028" starts in 2027.
        let years = start.flatMap { s in end.map { e in (Self.year(of: s) - 1)...Self.year(of: e) } }
        if v.list(cooperationConditions.count, "/cooperationConditions", 0...100) {
            for (n, c) in cooperationConditions.enumerated() {
                let at = "/cooperationConditions/\(n)"
                v.check(parties.contains(c.sending), "\(at)/sending", "must be one of the partnership's two institutions")
                v.check(parties.contains(c.receiving), "\(at)/receiving", "must be one of the partnership's two institutions")
                v.check(c.sending != c.receiving, "\(at)/receiving", "must differ from sending")
                let first = Self.academicYear(c.academicYears.first)
                let last = Self.academicYear(c.academicYears.last)
                v.check(first != nil, "\(at)/academicYears/first", "must be an academic year such as 2027/2028")
                v.check(last != nil, "\(at)/academicYears/last", "must be an academic year such as 2031/2032")
                if let first, let last {
                    v.check(first <= last, "\(at)/academicYears/last", "must not come before first")
                    if let years {
                        v.check(years.contains(first), "\(at)/academicYears/first", "must fall within startDate and endDate")
                        v.check(years.contains(last), "\(at)/academicYears/last", "must fall within startDate and endDate")
                    }
                }
                v.check((1...10_000).contains(c.mobilitiesPerYear), "\(at)/mobilitiesPerYear", "must be 1 to 10000")
                if c.kind.isStudent {
                    v.check(c.totalDaysPerYear == nil, "\(at)/totalDaysPerYear", "is for staff mobility; use totalMonthsPerYear")
                    if let months = c.totalMonthsPerYear {
                        v.check(
                            months > 0 && months <= 120_000 && Self.hasTwoDecimals(months), "\(at)/totalMonthsPerYear",
                            "must be more than 0, with at most two decimals")
                    } else {
                        v.fail("\(at)/totalMonthsPerYear", "is required for student mobility")
                    }
                } else {
                    v.check(c.totalMonthsPerYear == nil, "\(at)/totalMonthsPerYear", "is for student mobility; use totalDaysPerYear")
                    if let days = c.totalDaysPerYear {
                        v.check(
                            days > 0 && days <= 3_650_000 && Self.hasTwoDecimals(days), "\(at)/totalDaysPerYear",
                            "must be more than 0, with at most two decimals")
                    } else {
                        v.fail("\(at)/totalDaysPerYear", "is required for staff mobility")
                    }
                    v.check(c.blended == nil, "\(at)/blended", "is for student mobility")
                    v.check(c.eqfLevels == nil, "\(at)/eqfLevels", "is for student mobility")
                }
                if c.kind == .studentTraineeship { v.check(c.eqfLevels == nil, "\(at)/eqfLevels", "is not given for traineeships") }
                if let areas = c.subjectAreas, v.list(areas.count, "\(at)/subjectAreas", 0...50) {
                    for (k, area) in areas.enumerated() {
                        // EWP IIAs v7 takes four-digit (detailed) fields only.
                        v.check(
                            area.isced.count == 4 && lists.iscedCodes.contains(area.isced), "\(at)/subjectAreas/\(k)/isced",
                            "must be a four-digit ISCED-F 2013 code such as 0714")
                        if let text = area.clarification { v.text(text, "\(at)/subjectAreas/\(k)/clarification", 1...255) }
                    }
                    v.check(Set(areas.map(\.isced)).count == areas.count, "\(at)/subjectAreas", "lists a code twice")
                }
                if c.kind == .studentStudies || c.kind == .staffTeaching {
                    v.check(!(c.languages ?? []).isEmpty, "\(at)/languages", "needs at least one recommended language for \(c.kind.rawValue)")
                }
                if let skills = c.languages, v.list(skills.count, "\(at)/languages", 0...20) {
                    for (k, skill) in skills.enumerated() {
                        v.check(lists.languages.contains(skill.language), "\(at)/languages/\(k)/language", "must be an ISO 639-1 code such as en")
                        if let cefr = skill.cefr {
                            v.check(CEFRLevel(rawValue: cefr) != nil, "\(at)/languages/\(k)/cefr", "must be a CEFR level, A1 to C2")
                        }
                    }
                    v.check(Set(skills.map(\.language)).count == skills.count, "\(at)/languages", "lists a language twice")
                }
                if let levels = c.eqfLevels, v.list(levels.count, "\(at)/eqfLevels", 1...8) {
                    v.check(levels.allSatisfy { (1...8).contains($0) }, "\(at)/eqfLevels", "must be EQF levels, 1 to 8")
                    v.check(Set(levels).count == levels.count, "\(at)/eqfLevels", "lists a level twice")
                }
            }
        }
        if let activities, v.list(activities.count, "/activities", 0...50) {
            for (n, a) in activities.enumerated() {
                if let title = a.title { v.text(title, "/activities/\(n)/title", 1...200) }
                if let text = a.description { v.text(text, "/activities/\(n)/description", 1...5000, singleLine: false) }
                if let code = a.isced { v.check(lists.iscedCodes.contains(code), "/activities/\(n)/isced", "must be an ISCED-F 2013 code") }
            }
        }
        if let people = responsible, v.list(people.count, "/responsible", 0...20) {
            for (n, p) in people.enumerated() {
                v.check(parties.contains(p.institution), "/responsible/\(n)/institution", "must be one of the partnership's two institutions")
                v.text(p.name, "/responsible/\(n)/name", 1...200)
                v.check(Formats.isEmail(p.email), "/responsible/\(n)/email", "must be an e-mail address")
                if let role = p.role { v.text(role, "/responsible/\(n)/role", 1...200) }
            }
        }
        if let kpis, v.list(kpis.count, "/kpis", 0...50) {
            for (n, k) in kpis.enumerated() {
                v.check(Self.isKey(k.key), "/kpis/\(n)/key", "must be 1 to 60 letters, digits or _ starting with a letter")
                v.text(k.label, "/kpis/\(n)/label", 1...200)
                v.check(k.target >= 0 && k.target <= 1e12 && k.target.isFinite, "/kpis/\(n)/target", "must be a number, 0 or more")
            }
            v.check(Set(kpis.map(\.key)).count == kpis.count, "/kpis", "lists a key twice")
        }
        if let notes = financial?.notes { v.text(notes, "/financial/notes", 1...2000, singleLine: false) }
        if let contacts, v.list(contacts.count, "/contacts", 0...50) {
            for (n, c) in contacts.enumerated() {
                v.check(parties.contains(c.institution), "/contacts/\(n)/institution", "must be one of the partnership's two institutions")
                v.text(c.name, "/contacts/\(n)/name", 1...200)
                v.check(Formats.isEmail(c.email), "/contacts/\(n)/email", "must be an e-mail address")
                if let role = c.role { v.text(role, "/contacts/\(n)/role", 1...200) }
                if let phone = c.phone {
                    v.check(
                        phone.range(of: #"^\+[0-9]{1,15}$"#, options: .regularExpression) != nil, "/contacts/\(n)/phone",
                        "must be E.164, such as +3225551234")
                }
            }
        }
        try v.validate()
    }

    static func hasTwoDecimals(_ value: Double) -> Bool {
        value.isFinite && abs(value * 100 - (value * 100).rounded()) < 1e-6
    }

    static func isKey(_ key: String) -> Bool {
        key.range(of: "^[A-Za-z][A-Za-z0-9_]{0,59}$", options: .regularExpression) != nil
    }

    /// A calendar date `YYYY-MM-DD` (as a comparable string), or nil.
    static func date(_ text: String) -> String? { Formats.isDate(text) ? text : nil }

    static func year(of date: String) -> Int { Int(date.prefix(4)) ?? 0 }

    /// The first calendar year of an academic year "2027/2028", or nil.
    static func academicYear(_ text: String) -> Int? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, parts.allSatisfy({ $0.count == 4 }), let a = Int(parts[0]), let b = Int(parts[1]), b == a + 1 else { return nil }
        return a
    }
}

// MARK: The hash

extension AgreementTerms {
    /// The terms as they are stored and hashed: every list that has no order sorted, so that the
    /// same terms are the same bytes whatever order they came in.
    var normalised: AgreementTerms {
        var terms = self
        terms.cooperationConditions = cooperationConditions.map { c in
            var c = c
            c.subjectAreas = c.subjectAreas?.sorted { $0.isced < $1.isced }
            c.languages = c.languages?.sorted { $0.language < $1.language }
            c.eqfLevels = c.eqfLevels?.sorted()
            return c
        }.sorted { Self.canonicalJSON($0) < Self.canonicalJSON($1) }
        terms.activities = activities?.sorted { Self.canonicalJSON($0) < Self.canonicalJSON($1) }
        terms.responsible = responsible?.sorted { Self.canonicalJSON($0) < Self.canonicalJSON($1) }
        terms.kpis = kpis?.sorted { $0.key < $1.key }
        terms.contacts = contacts?.sorted { Self.canonicalJSON($0) < Self.canonicalJSON($1) }
        return terms
    }

    /// SHA-256 (hex) of the canonical JSON of the normalised terms without contacts: keys sorted,
    /// no insignificant white space, ids in lowercase.
    var hash: String {
        var terms = normalised
        terms.contacts = nil
        return Secrets.sha256Hex(Array(Self.canonicalJSON(terms).utf8))
    }

    static func canonicalJSON(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "" }
        // UUIDs encode in uppercase; the canonical form (RFC 9562) is lowercase.
        return String(decoding: data, as: UTF8.self).replacingUUIDCase()
    }
}

extension String {
    /// Lowercases every quoted UUID in JSON text.
    fileprivate func replacingUUIDCase() -> String {
        guard let regex = try? NSRegularExpression(pattern: #""[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}""#) else { return self }
        var result = self
        for match in regex.matches(in: self, range: NSRange(startIndex..., in: self)).reversed() {
            guard let range = Range(match.range, in: result) else { continue }
            result.replaceSubrange(range, with: result[range].lowercased())
        }
        return result
    }
}
