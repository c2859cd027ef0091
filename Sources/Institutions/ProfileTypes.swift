import AccordCore
import Foundation
import HTTPTypes
import Logging
import PGStore

/// A person to contact at an institution, for its own users only.
public struct Contact: Codable, Sendable, Equatable {
    public var role: String
    public var name: String
    public var email: String
}

/// An application deadline of a term.
public struct Deadline: Codable, Sendable, Equatable {
    public var term: String
    /// YYYY-MM-DD.
    public var date: String

    public init(term: String, date: String) {
        self.term = term
        self.date = date
    }
}

/// What incoming students need to know: deadlines and where to read about housing, visas and
/// insurance.
public struct Factsheet: Codable, Sendable, Equatable {
    public var deadlines: [Deadline]?
    public var housingUrl: String?
    public var visaUrl: String?
    public var insuranceUrl: String?

    public init(deadlines: [Deadline]? = nil, housingUrl: String? = nil, visaUrl: String? = nil, insuranceUrl: String? = nil) {
        self.deadlines = deadlines
        self.housingUrl = housingUrl
        self.visaUrl = visaUrl
        self.insuranceUrl = insuranceUrl
    }
}

/// An institution as the API shows it. `contacts` only reach the institution's own users (and
/// network administrators).
public struct Institution: Codable, Sendable, Equatable {
    public var id: UUID
    public var schac: String
    public var names: [LocalizedName]
    public var acronym: String?
    public var ror: String?
    public var erasmusCode: String?
    public var country: String
    public var city: String?
    public var type: String
    public var foundingYear: Int?
    public var studentCount: Int?
    public var website: String?
    public var description: String?
    public var subjectAreas: [SubjectArea]
    public var teachingLanguages: [TeachingLanguage]
    public var offers: [String]
    public var seeks: [String]
    public var services: [String]
    public var goals: String?
    public var factsheet: Factsheet
    public var listed: Bool
    public var claimed: Bool
    public var status: String
    public var tier: String
    public var createdAt: String
    public var updatedAt: String
    public var contacts: [Contact]?
}

/// The profile fields a registration or a PATCH may carry. In a PATCH, a field left out (or null)
/// stays as it is; an empty string clears an optional text field.
public struct ProfileInput: Codable, Sendable {
    public var names: [LocalizedName]?
    public var schac: String?
    public var acronym: String?
    public var ror: String?
    public var erasmusCode: String?
    public var country: String?
    public var city: String?
    public var type: String?
    public var foundingYear: Int?
    public var studentCount: Int?
    public var website: String?
    public var description: String?
    public var subjectAreas: [SubjectArea]?
    public var teachingLanguages: [TeachingLanguage]?
    public var offers: [String]?
    public var seeks: [String]?
    public var services: [String]?
    public var goals: String?
    public var contacts: [Contact]?
    public var factsheet: Factsheet?
    public var listed: Bool?
}

/// A user as the API shows it.
public struct User: Codable, Sendable, Equatable {
    public var id: UUID
    public var email: String
    public var name: String
    public var role: String
    public var institutionId: UUID?
    public var createdAt: String?
}
