import AccordCore
import Foundation
import HTTPTypes
import Logging
import PGStore

/// Checks profile input against the real vocabularies, naming every invalid field.
struct ProfileValidation {
    let lists: ReferenceData.Lists

    /// The longest lists a profile holds (docs/openapi.yaml says the same); `offers`, `seeks` and
    /// `services` hold each value of their vocabulary at most once.
    static let maxNames = 20
    static let maxSubjectAreas = 100
    static let maxTeachingLanguages = 50
    static let maxContacts = 20
    static let maxDeadlines = 20

    /// With `creating`, the fields every institution needs (names, SCHAC code, country, type) are
    /// required.
    func check(_ input: ProfileInput, at prefix: String, creating: Bool, into v: inout Validator) {
        func field(_ name: String) -> String { "\(prefix)/\(name)" }
        if let names = input.names {
            if v.list(names.count, field("names"), 1...Self.maxNames) {
                for (index, name) in names.enumerated() {
                    v.check(lists.languages.contains(name.lang), field("names/\(index)/lang"), "must be an ISO 639-1 language code")
                    v.text(name.value.trimmingCharacters(in: .whitespaces), field("names/\(index)/value"), 1...300)
                }
            }
        } else if creating {
            v.fail(field("names"), "is required")
        }
        if let schac = input.schac {
            v.check(Formats.isDomain(schac.lowercased()), field("schac"), "must be the institution's internet domain, e.g. ulb.be")
        } else if creating {
            v.fail(field("schac"), "is required")
        }
        if let acronym = input.acronym, !acronym.isEmpty {
            v.text(acronym, field("acronym"), 1...30)
        }
        if let ror = input.ror, !ror.isEmpty {
            v.check(ROR.isValid(Self.rorID(ror)), field("ror"), "must be a ROR id with valid check digits, e.g. 03vek6s52")
        }
        if let code = input.erasmusCode, !code.isEmpty {
            v.text(code, field("erasmusCode"), 3...20)
        }
        if let country = input.country {
            v.check(lists.countries.contains(country.uppercased()), field("country"), "must be an ISO 3166-1 alpha-2 country code")
        } else if creating {
            v.fail(field("country"), "is required")
        }
        if let city = input.city { v.text(city, field("city"), 0...200) }
        if let type = input.type {
            v.check(
                InstitutionType(rawValue: type) != nil, field("type"),
                "must be one of \(InstitutionType.allCases.map(\.rawValue).joined(separator: ", "))")
        } else if creating {
            v.fail(field("type"), "is required")
        }
        if let year = input.foundingYear {
            let now = Calendar(identifier: .gregorian).component(.year, from: Date())
            v.check((800...now).contains(year), field("foundingYear"), "must be a year between 800 and \(now)")
        }
        if let count = input.studentCount { v.check((0...10_000_000).contains(count), field("studentCount"), "must be between 0 and 10000000") }
        if let website = input.website, !website.isEmpty { v.check(Formats.isWebURL(website), field("website"), "must be an http or https URL") }
        if let description = input.description { v.text(description, field("description"), 0...10_000, singleLine: false) }
        if let goals = input.goals { v.text(goals, field("goals"), 0...5000, singleLine: false) }
        if let areas = input.subjectAreas, v.list(areas.count, field("subjectAreas"), 0...Self.maxSubjectAreas) {
            v.check(Set(areas.map(\.code)).count == areas.count, field("subjectAreas"), "must not repeat a code")
            for (index, area) in areas.enumerated() {
                v.check(lists.iscedCodes.contains(area.code), field("subjectAreas/\(index)/code"), "must be an ISCED-F 2013 code")
                if let strength = area.strength {
                    v.check(SubjectStrength(rawValue: strength) != nil, field("subjectAreas/\(index)/strength"), "must be strong or growing")
                }
            }
        }
        if let languages = input.teachingLanguages, v.list(languages.count, field("teachingLanguages"), 0...Self.maxTeachingLanguages) {
            v.check(Set(languages.map(\.code)).count == languages.count, field("teachingLanguages"), "must not repeat a language")
            for (index, language) in languages.enumerated() {
                v.check(lists.languages.contains(language.code), field("teachingLanguages/\(index)/code"), "must be an ISO 639-1 language code")
                v.check(CEFRLevel(rawValue: language.level) != nil, field("teachingLanguages/\(index)/level"), "must be a CEFR level A1 to C2")
            }
        }
        for (name, values) in [("offers", input.offers), ("seeks", input.seeks)] {
            guard let values, v.list(values.count, field(name), 0...Activity.allCases.count) else { continue }
            for (index, value) in values.enumerated() {
                v.check(
                    Activity(rawValue: value) != nil, field("\(name)/\(index)"),
                    "must be one of \(Activity.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            v.check(Set(values).count == values.count, field(name), "must not repeat an activity")
        }
        if let services = input.services, v.list(services.count, field("services"), 0...PartnerService.allCases.count) {
            for (index, value) in services.enumerated() {
                v.check(
                    PartnerService(rawValue: value) != nil, field("services/\(index)"),
                    "must be one of \(PartnerService.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            v.check(Set(services).count == services.count, field("services"), "must not repeat a service")
        }
        if let contacts = input.contacts, v.list(contacts.count, field("contacts"), 0...Self.maxContacts) {
            for (index, contact) in contacts.enumerated() {
                v.text(contact.role, field("contacts/\(index)/role"), 1...100)
                v.text(contact.name, field("contacts/\(index)/name"), 1...200)
                v.check(Formats.isEmail(contact.email), field("contacts/\(index)/email"), "must be an e-mail address")
            }
        }
        if let factsheet = input.factsheet {
            for (name, url) in [("housingUrl", factsheet.housingUrl), ("visaUrl", factsheet.visaUrl), ("insuranceUrl", factsheet.insuranceUrl)] {
                if let url, !url.isEmpty { v.check(Formats.isWebURL(url), field("factsheet/\(name)"), "must be an http or https URL") }
            }
            if let deadlines = factsheet.deadlines, v.list(deadlines.count, field("factsheet/deadlines"), 0...Self.maxDeadlines) {
                for (index, deadline) in deadlines.enumerated() {
                    v.text(deadline.term, field("factsheet/deadlines/\(index)/term"), 1...100)
                    v.check(Formats.isDate(deadline.date), field("factsheet/deadlines/\(index)/date"), "must be a date YYYY-MM-DD")
                }
            }
        }
    }

    /// Accepts a bare ROR id or its URL form (https://ror.org/03vek6s52).
    static func rorID(_ value: String) -> String {
        let lowered = value.lowercased()
        for prefix in ["https://ror.org/", "http://ror.org/", "ror.org/"] where lowered.hasPrefix(prefix) {
            return String(lowered.dropFirst(prefix.count))
        }
        return lowered
    }
}
