import Foundation
import PGStore

// The network's vocabularies: each value is stored and sent as its raw value.

/// A role of a user within their institution.
public enum InstitutionRole: String, Codable, Sendable, CaseIterable {
    case admin, staff, faculty
}

/// Where an institution stands in the network: registered (`pending`), admitted (`active`),
/// refused (`rejected`) or `suspended` by the network's administrators.
public enum InstitutionStatus: String, Codable, Sendable, CaseIterable {
    case pending, active, rejected, suspended
}

/// What an institution can offer or seek in a partnership.
public enum Activity: String, Codable, Sendable, CaseIterable {
    case studentExchange = "student_exchange"
    case staffExchange = "staff_exchange"
    case jointDegree = "joint_degree"
    case doubleDegree = "double_degree"
    case collaborativeResearch = "collaborative_research"
    case virtualExchange = "coil_virtual_exchange"
    case summerSchool = "summer_school"
    case traineeships
}

/// Services for incoming students and staff.
public enum PartnerService: String, Codable, Sendable, CaseIterable {
    case coursesInEnglish = "courses_in_english"
    case housingAssistance = "housing_assistance"
    case visaSupport = "visa_support"
    case buddyProgramme = "buddy_programme"
    case languageCourses = "language_courses"
    case orientationWeek = "orientation_week"
    case airportPickup = "airport_pickup"
    case accessibilitySupport = "accessibility_support"
    case careerServices = "career_services"
}

/// The kind of institution.
public enum InstitutionType: String, Codable, Sendable, CaseIterable {
    case university
    case universityOfAppliedSciences = "university_of_applied_sciences"
    case college
    case researchInstitute = "research_institute"
    case other
}

/// A CEFR language level, A1 (lowest) to C2.
public enum CEFRLevel: String, Codable, Sendable, CaseIterable, Comparable {
    case a1 = "A1"
    case a2 = "A2"
    case b1 = "B1"
    case b2 = "B2"
    case c1 = "C1"
    case c2 = "C2"
    public static func < (lhs: CEFRLevel, rhs: CEFRLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// How an institution rates itself in a subject area.
public enum SubjectStrength: String, Codable, Sendable, CaseIterable {
    case strong
    case growing
}

extension Activity {
    /// The activity in words, as a sentence uses it: "joint degrees".
    public var label: String {
        switch self {
        case .studentExchange: "student exchange"
        case .staffExchange: "staff exchange"
        case .jointDegree: "joint degrees"
        case .doubleDegree: "double degrees"
        case .collaborativeResearch: "collaborative research"
        case .virtualExchange: "COIL / virtual exchange"
        case .summerSchool: "summer schools"
        case .traineeships: "traineeships"
        }
    }
}

extension InstitutionRole: PGEncodable, PGDecodable {}
extension InstitutionStatus: PGEncodable, PGDecodable {}
