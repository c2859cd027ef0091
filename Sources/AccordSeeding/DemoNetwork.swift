import AccordCore
import AccordCrypto
import Foundation
import Institutions
import PGStore

/// A small demo network: a network administrator, five admitted institutions with full profiles and
/// two users each, and one pending registration. The institutions are real (from the world
/// university list, Hipo/university-domains-list, MIT licence); their profiles are invented.
public struct DemoNetwork: Sendable {
    public static let password = "Accord-Demo-2026"
    public static let adminEmail = "admin@accord.demo"

    struct Member {
        let name: String
        let schac: String
        let country: String
        let city: String
        let website: String
        let lang: String
        let acronym: String
        let fields: [(String, String?)]
        let languages: [(String, String)]
        let offers: [String]
        let seeks: [String]
        let services: [String]
        let students: Int
        let founded: Int
    }

    static let members: [Member] = [
        Member(
            name: "Université Libre de Bruxelles", schac: "ulb.ac.be", country: "BE", city: "Bruxelles", website: "http://www.ulb.ac.be/", lang: "fr",
            acronym: "ULB", fields: [("0714", "strong"), ("0588", nil), ("0311", "growing")], languages: [("fr", "C2"), ("en", "B2")],
            offers: ["student_exchange", "double_degree", "summer_school"], seeks: ["joint_degree", "coil_virtual_exchange"],
            services: ["housing_assistance", "buddy_programme", "language_courses"], students: 36000, founded: 1834),
        Member(
            name: "Università di Bologna", schac: "unibo.it", country: "IT", city: "Bologna", website: "http://www.unibo.it/", lang: "it",
            acronym: "UNIBO", fields: [("0232", "strong"), ("0413", nil), ("0811", "growing")], languages: [("it", "C2"), ("en", "C1")],
            offers: ["student_exchange", "joint_degree", "collaborative_research"], seeks: ["staff_exchange", "traineeships"],
            services: ["courses_in_english", "visa_support", "orientation_week"], students: 90000, founded: 1088),
        Member(
            name: "University of Amsterdam", schac: "uva.nl", country: "NL", city: "Amsterdam", website: "http://www.uva.nl/", lang: "en",
            acronym: "UvA", fields: [("0312", "strong"), ("0421", "strong"), ("0533", nil)], languages: [("nl", "C2"), ("en", "C1")],
            offers: ["student_exchange", "coil_virtual_exchange", "collaborative_research"], seeks: ["double_degree", "summer_school"],
            services: ["courses_in_english", "housing_assistance", "buddy_programme"], students: 41000, founded: 1632),
        Member(
            name: "Universidad de Chile", schac: "uchile.cl", country: "CL", city: "Santiago", website: "http://www.uchile.cl/", lang: "es",
            acronym: "UCH", fields: [("0532", "strong"), ("0912", nil), ("0714", "growing")], languages: [("es", "C2"), ("en", "B2")],
            offers: ["staff_exchange", "traineeships", "summer_school"], seeks: ["student_exchange", "double_degree"],
            services: ["visa_support", "language_courses"], students: 46000, founded: 1842),
        Member(
            name: "University of Nairobi", schac: "uonbi.ac.ke", country: "KE", city: "Nairobi", website: "http://www.uonbi.ac.ke/", lang: "en",
            acronym: "UoN", fields: [("0811", "strong"), ("0913", nil), ("0521", "growing")], languages: [("en", "C2"), ("sw", "C2")],
            offers: ["collaborative_research", "student_exchange"], seeks: ["joint_degree", "staff_exchange", "coil_virtual_exchange"],
            services: ["airport_pickup", "housing_assistance"], students: 49000, founded: 1970),
    ]

    static let pending = Member(
        name: "Hanyang University", schac: "hanyang.ac.kr", country: "KR", city: "Seoul", website: "http://www.hanyang.ac.kr/", lang: "en",
        acronym: "HYU", fields: [("0715", "strong")], languages: [("ko", "C2"), ("en", "B2")],
        offers: ["student_exchange"], seeks: ["double_degree"], services: ["courses_in_english"], students: 35000, founded: 1939)

    let pool: PGPool
    let hasher: PasswordHasher

    /// `pool` must connect as the owner role.
    public init(pool: PGPool, hasher: PasswordHasher = PasswordHasher()) {
        self.pool = pool
        self.hasher = hasher
    }

    /// Whether the database holds no institution and no network administrator yet.
    public func databaseIsEmpty() async throws -> Bool {
        try await pool.query("SELECT NOT EXISTS (SELECT 1 FROM institutions) AND NOT EXISTS (SELECT 1 FROM network_admins)").scalar(Bool.self)
    }

    /// Creates what is missing of the demo network; returns the sign-in lines to print.
    public func seed() async throws -> [String] {
        var lines = ["Demo network ready. Sign in with POST /v1/sessions {\"email\": …, \"password\": \"\(Self.password)\"}:"]
        let adminHash = hasher.hash(Self.password)
        try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
            try await tx.query(
                """
                INSERT INTO network_admins (email, name, password_hash)
                SELECT \(Self.adminEmail), 'Demo network administrator', \(adminHash)
                WHERE NOT accord_email_taken(\(Self.adminEmail))
                """)
        }
        lines.append("  network administrator: \(Self.adminEmail)")
        for member in Self.members + [Self.pending] {
            let isPending = member.schac == Self.pending.schac
            try await create(member, status: isPending ? "pending" : "active")
            lines.append(
                "  \(isPending ? "pending registration" : "institution admin"): intl@\(member.schac)\(isPending ? "" : " (staff: staff@\(member.schac))") — \(member.name)"
            )
        }
        return lines
    }

    private func create(_ member: Member, status: String) async throws {
        let adminHash = hasher.hash(Self.password)
        let staffHash = hasher.hash(Self.password)
        try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
            let existing = try await tx.query(
                """
                SELECT id FROM institutions WHERE schac = \(member.schac) AND claim_of IS NULL
                ORDER BY status IN ('active', 'suspended') DESC, created_at LIMIT 1
                """
            ).first(UUID.self)
            let id = existing ?? UUID()
            let names = PGJSONB([LocalizedName(lang: member.lang, value: member.name)])
            let fields = PGJSONB(member.fields.map { SubjectArea(code: $0.0, strength: $0.1) })
            let languages = PGJSONB(member.languages.map { TeachingLanguage(code: $0.0, level: $0.1) })
            let factsheet = PGJSONB(
                Factsheet(
                    deadlines: [Deadline(term: "Autumn semester", date: "2027-04-30"), Deadline(term: "Spring semester", date: "2027-10-31")],
                    housingUrl: member.website + "housing", visaUrl: member.website + "visa", insuranceUrl: nil))
            try await tx.query(
                """
                INSERT INTO institutions (id, schac, names, acronym, country, city, type, status, claimed, website, description,
                    subject_areas, teaching_languages, offers, seeks, services, goals, factsheet, student_count, founding_year)
                VALUES (\(id), \(member.schac), \(names), \(member.acronym), \(member.country), \(member.city), 'university', \(status), true,
                    \(member.website), \("\(member.name) welcomes partners for exchange and joint work."), \(fields), \(languages),
                    \(member.offers), \(member.seeks), \(member.services), \("Deepen partnerships in \(member.seeks.joined(separator: ", "))."),
                    \(factsheet), \(member.students), \(member.founded))
                ON CONFLICT (id) DO UPDATE SET
                    names = excluded.names, acronym = excluded.acronym, city = excluded.city, claimed = true, status = excluded.status,
                    website = excluded.website, description = excluded.description, subject_areas = excluded.subject_areas,
                    teaching_languages = excluded.teaching_languages, offers = excluded.offers, seeks = excluded.seeks,
                    services = excluded.services, goals = excluded.goals, factsheet = excluded.factsheet,
                    student_count = excluded.student_count, founding_year = excluded.founding_year, version = institutions.version + 1
                """)
            for (email, role, name, hash) in [
                ("intl@\(member.schac)", "admin", "International office", adminHash), ("staff@\(member.schac)", "staff", "Mobility staff", staffHash),
            ]
            where status == "active" || role == "admin" {
                try await tx.query(
                    """
                    INSERT INTO users (institution_id, email, name, role, password_hash)
                    SELECT \(id), \(email), \(name), \(role), \(hash) WHERE NOT accord_email_taken(\(email))
                    """)
            }
            try await tx.query(
                """
                INSERT INTO institution_contacts (institution_id, role, name, email)
                SELECT \(id), 'International relations', 'International office', \("intl@\(member.schac)")
                WHERE NOT EXISTS (SELECT 1 FROM institution_contacts WHERE institution_id = \(id))
                """)
        }
    }
}
