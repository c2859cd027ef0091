import AccordCore
import Foundation
import HTTPTypes
import Logging
import PGStore

/// Checks profile input against the real vocabularies, naming every invalid field.
struct ProfileValidation {
    let lists: ReferenceData.Lists

    /// With `creating`, the fields every institution needs (names, SCHAC code, country, type) are
    /// required.
    func check(_ input: ProfileInput, at prefix: String, creating: Bool, into v: inout Validator) {
        func field(_ name: String) -> String { "\(prefix)/\(name)" }
        if let names = input.names {
            v.check(!names.isEmpty && names.count <= 20, field("names"), "must have 1 to 20 names")
            for (index, name) in names.enumerated() {
                v.check(lists.languages.contains(name.lang), field("names/\(index)/lang"), "must be an ISO 639-1 language code")
                let trimmed = name.value.trimmingCharacters(in: .whitespacesAndNewlines)
                v.check(!trimmed.isEmpty && trimmed.count <= 300, field("names/\(index)/value"), "must have 1 to 300 characters")
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
            v.check(acronym.count <= 30, field("acronym"), "must have at most 30 characters")
        }
        if let ror = input.ror, !ror.isEmpty {
            v.check(ROR.isValid(Self.rorID(ror)), field("ror"), "must be a ROR id with valid check digits, e.g. 03vek6s52")
        }
        if let code = input.erasmusCode, !code.isEmpty {
            v.check((3...20).contains(code.count), field("erasmusCode"), "must have 3 to 20 characters")
        }
        if let country = input.country {
            v.check(lists.countries.contains(country.uppercased()), field("country"), "must be an ISO 3166-1 alpha-2 country code")
        } else if creating {
            v.fail(field("country"), "is required")
        }
        if let city = input.city { v.check(city.count <= 200, field("city"), "must have at most 200 characters") }
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
        if let description = input.description { v.check(description.count <= 10_000, field("description"), "must have at most 10000 characters") }
        if let goals = input.goals { v.check(goals.count <= 5000, field("goals"), "must have at most 5000 characters") }
        if let areas = input.subjectAreas {
            v.check(areas.count <= 100, field("subjectAreas"), "must have at most 100 entries")
            v.check(Set(areas.map(\.code)).count == areas.count, field("subjectAreas"), "must not repeat a code")
            for (index, area) in areas.enumerated() {
                v.check(lists.iscedCodes.contains(area.code), field("subjectAreas/\(index)/code"), "must be an ISCED-F 2013 code")
                if let strength = area.strength {
                    v.check(SubjectStrength(rawValue: strength) != nil, field("subjectAreas/\(index)/strength"), "must be strong or growing")
                }
            }
        }
        if let languages = input.teachingLanguages {
            v.check(languages.count <= 50, field("teachingLanguages"), "must have at most 50 entries")
            v.check(Set(languages.map(\.code)).count == languages.count, field("teachingLanguages"), "must not repeat a language")
            for (index, language) in languages.enumerated() {
                v.check(lists.languages.contains(language.code), field("teachingLanguages/\(index)/code"), "must be an ISO 639-1 language code")
                v.check(CEFRLevel(rawValue: language.level) != nil, field("teachingLanguages/\(index)/level"), "must be a CEFR level A1 to C2")
            }
        }
        for (name, values) in [("offers", input.offers), ("seeks", input.seeks)] {
            guard let values else { continue }
            for (index, value) in values.enumerated() {
                v.check(
                    Activity(rawValue: value) != nil, field("\(name)/\(index)"),
                    "must be one of \(Activity.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            v.check(Set(values).count == values.count, field(name), "must not repeat an activity")
        }
        if let services = input.services {
            for (index, value) in services.enumerated() {
                v.check(
                    PartnerService(rawValue: value) != nil, field("services/\(index)"),
                    "must be one of \(PartnerService.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            v.check(Set(services).count == services.count, field("services"), "must not repeat a service")
        }
        if let contacts = input.contacts {
            v.check(contacts.count <= 20, field("contacts"), "must have at most 20 entries")
            for (index, contact) in contacts.enumerated() {
                v.check((1...100).contains(contact.role.count), field("contacts/\(index)/role"), "must have 1 to 100 characters")
                v.check((1...200).contains(contact.name.count), field("contacts/\(index)/name"), "must have 1 to 200 characters")
                v.check(Formats.isEmail(contact.email), field("contacts/\(index)/email"), "must be an e-mail address")
            }
        }
        if let factsheet = input.factsheet {
            for (name, url) in [("housingUrl", factsheet.housingUrl), ("visaUrl", factsheet.visaUrl), ("insuranceUrl", factsheet.insuranceUrl)] {
                if let url, !url.isEmpty { v.check(Formats.isWebURL(url), field("factsheet/\(name)"), "must be an http or https URL") }
            }
            if let deadlines = factsheet.deadlines {
                v.check(deadlines.count <= 20, field("factsheet/deadlines"), "must have at most 20 entries")
                for (index, deadline) in deadlines.enumerated() {
                    v.check((1...100).contains(deadline.term.count), field("factsheet/deadlines/\(index)/term"), "must have 1 to 100 characters")
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
