import AccordCore
import Foundation
import HTTPTypes
import Logging
import PGStore
import Synchronization

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

public enum InstitutionType: String, Codable, Sendable, CaseIterable {
    case university
    case universityOfAppliedSciences = "university_of_applied_sciences"
    case college
    case researchInstitute = "research_institute"
    case other
}

public enum CEFRLevel: String, Codable, Sendable, CaseIterable, Comparable {
    case a1 = "A1", a2 = "A2", b1 = "B1", b2 = "B2", c1 = "C1", c2 = "C2"
    public static func < (lhs: CEFRLevel, rhs: CEFRLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

public enum SubjectStrength: String, Codable, Sendable, CaseIterable {
    case strong
    case growing
}

/// The real reference lists (countries, ISCED-F 2013 codes, ISO 639-1 languages) from the database,
/// read once and kept: they change only with a migration.
public final class ReferenceData: Sendable {
    public struct Lists: Sendable {
        public let countries: Set<String>
        public let iscedCodes: Set<String>
        public let languages: Set<String>
        /// ISCED-F code → English name.
        public let iscedNames: [String: String]
        /// ISO 639-1 code → English name.
        public let languageNames: [String: String]
        /// UN M49 region, sub-region and intermediate-region code → name (from the country list).
        public let regions: [String: String]
        /// Country → its M49 region codes (region, sub-region, intermediate region).
        public let countryRegions: [String: [String]]
    }

    private let pool: PGPool
    private let cached = Mutex<Lists?>(nil)

    public init(pool: PGPool) { self.pool = pool }

    public func lists() async throws -> Lists {
        if let lists = cached.withLock({ $0 }) { return lists }
        let (countries, fields, languages) = try await pool.withConnection { connection in
            (
                try await connection.query("""
                    SELECT code::text, coalesce(region_code, ''), coalesce(region, ''), coalesce(sub_region_code, ''), coalesce(sub_region, ''),
                           coalesce(intermediate_region_code, ''), coalesce(intermediate_region, '')
                    FROM countries
                    """).decode((String, String, String, String, String, String, String).self),
                try await connection.query("SELECT code, name FROM isced_fields").decode((String, String).self),
                try await connection.query("SELECT code::text, name_en FROM languages").decode((String, String).self)
            )
        }
        var regions: [String: String] = [:]
        var countryRegions: [String: [String]] = [:]
        for c in countries {
            var codes: [String] = []
            for (code, name) in [(c.1, c.2), (c.3, c.4), (c.5, c.6)] where !code.isEmpty {
                regions[code] = name
                codes.append(code)
            }
            countryRegions[c.0] = codes
        }
        let lists = Lists(
            countries: Set(countries.map(\.0)), iscedCodes: Set(fields.map(\.0)), languages: Set(languages.map(\.0)),
            iscedNames: Dictionary(fields, uniquingKeysWith: { a, _ in a }),
            languageNames: Dictionary(languages, uniquingKeysWith: { a, _ in a }),
            regions: regions, countryRegions: countryRegions)
        cached.withLock { $0 = lists }
        return lists
    }
}

/// ROR ids: `0` + six Crockford base-32 characters + two ISO 7064 MOD 97-10 check digits.
public enum ROR {
    static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")

    public static func isValid(_ id: String) -> Bool {
        let chars = Array(id)
        guard chars.count == 9, chars[0] == "0", let checksum = Int(String(chars[7...])) else { return false }
        var value = 0
        for char in chars[0..<7] {
            guard let digit = alphabet.firstIndex(of: char) else { return false }
            value = value * 32 + digit
        }
        return 98 - ((value * 100) % 97) == checksum
    }
}

/// The most common passwords of ten or more characters (the minimum length), refused at sign-up.
enum CommonPasswords {
    static let list: Set<String> = [
        "1234567890", "0123456789", "9876543210", "1111111111", "0000000000", "12345678910", "123456789a",
        "a123456789", "1234567890a", "qwertyuiop", "qwertyuiop123", "qwerty123456", "qwerty1234", "1q2w3e4r5t",
        "1q2w3e4r5t6y", "q1w2e3r4t5", "q1w2e3r4t5y6", "1qaz2wsx3edc", "qazwsxedc123", "zaq12wsxcde3",
        "asdfghjkl1", "asdfghjkl123", "zxcvbnm123", "zxcvbnm1234", "password12", "password123", "password1234",
        "password12345", "passw0rd123", "p@ssword123", "p@ssw0rd123", "passwordpassword", "password!123",
        "iloveyou123", "iloveyou12", "letmein123", "welcome123", "welcome1234", "changeme123", "administrator",
        "admin12345", "admin123456", "football123", "baseball123", "superman123", "princess123", "sunshine123",
        "trustno1234", "monkey12345", "dragon12345", "master12345", "starwars123", "computer123", "internet123",
        "1234512345", "1234554321", "123123123123", "123456123456", "123321123321", "1122334455", "11223344556677",
        "abcdefghij", "abcdefghijk", "abc1234567", "abcd123456", "aaaaaaaaaa", "university", "university1",
        "university123", "student123", "students123", "erasmus123", "erasmus2024", "erasmus2025", "erasmus2026",
        "qwerty12345", "987654321a", "michael123", "jennifer123", "whatever123", "shadow12345", "liverpool123",
        "chelsea1234", "arsenal1234", "samsung123", "google12345", "facebook123", "microsoft123",
    ]

    static func contains(_ password: String) -> Bool {
        let lowered = password.lowercased()
        if list.contains(lowered) { return true }
        // One character repeated, or a run of consecutive characters.
        if Set(lowered).count <= 2 { return true }
        let scalars = lowered.unicodeScalars.map(\.value)
        let ascending = zip(scalars, scalars.dropFirst()).allSatisfy { $1 == $0 + 1 }
        let descending = zip(scalars, scalars.dropFirst()).allSatisfy { $1 + 1 == $0 }
        return ascending || descending
    }
}
