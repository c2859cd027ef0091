import AccordCore
import Foundation
import HTTPTypes
import Logging
import PGStore

/// The SQL of institutions, users and the audit log. Every function runs on a transaction that
/// already carries the caller's tenant context, so row-level security decides what it sees.
enum InstitutionStore {
    struct Document {
        var institution: Institution
        var version: Int
    }

    static func insert(_ input: ProfileInput, id: UUID, schac: String, claimOf: UUID?, on tx: PGConnection) async throws {
        try await tx.query(
            """
            INSERT INTO institutions (id, schac, names, country, city, type, status, claim_of)
            VALUES (\(id), \(schac), \(PGJSONB(input.names ?? [])), \(input.country!.uppercased()), \(nonEmpty(input.city)), \(input.type!), 'pending', \(claimOf))
            """)
        try await update(id, with: input, on: tx)
    }

    /// Applies the fields present in `input`.
    static func update(_ id: UUID, with input: ProfileInput, on tx: PGConnection) async throws {
        var sets: [PGQuery] = []
        if let names = input.names {
            sets.append(
                "names = \(PGJSONB(names.map { LocalizedName(lang: $0.lang, value: $0.value.trimmingCharacters(in: .whitespacesAndNewlines)) }))")
        }
        if let value = input.acronym { sets.append("acronym = \(nonEmpty(value))") }
        if let value = input.ror { sets.append("ror = \(nonEmpty(value).map(ProfileValidation.rorID))") }
        if let value = input.erasmusCode { sets.append("erasmus_code = \(nonEmpty(value))") }
        if let value = input.country { sets.append("country = \(value.uppercased())") }
        if let value = input.city { sets.append("city = \(nonEmpty(value))") }
        if let value = input.type { sets.append("type = \(value)") }
        if let value = input.foundingYear { sets.append("founding_year = \(value)") }
        if let value = input.studentCount { sets.append("student_count = \(value)") }
        if let value = input.website { sets.append("website = \(nonEmpty(value))") }
        if let value = input.description { sets.append("description = \(nonEmpty(value))") }
        if let value = input.subjectAreas { sets.append("subject_areas = \(PGJSONB(value))") }
        if let value = input.teachingLanguages { sets.append("teaching_languages = \(PGJSONB(value))") }
        if let value = input.offers { sets.append("offers = \(value)") }
        if let value = input.seeks { sets.append("seeks = \(value)") }
        if let value = input.services { sets.append("services = \(value)") }
        if let value = input.goals { sets.append("goals = \(nonEmpty(value))") }
        if let value = input.factsheet { sets.append("factsheet = \(PGJSONB(value))") }
        if let value = input.listed { sets.append("listed = \(value)") }
        if !sets.isEmpty {
            var query: PGQuery = "UPDATE institutions SET "
            query.append(PGQuery.joined(sets, separator: ", "))
            query.append(" WHERE id = \(id)")
            try await tx.query(query)
        }
        if let contacts = input.contacts {
            try await tx.query("DELETE FROM institution_contacts WHERE institution_id = \(id)")
            if !contacts.isEmpty {
                try await tx.pipeline(
                    contacts.enumerated().map { index, contact in
                        "INSERT INTO institution_contacts (institution_id, role, name, email, position) VALUES (\(id), \(contact.role), \(contact.name), \(contact.email), \(index))"
                    })
            }
        }
    }

    /// The profile as the caller may see it (nil when row-level security hides it).
    static func find(_ id: UUID, includePrivate: Bool, on tx: PGConnection) async throws -> Document? {
        guard
            let row = try await tx.query("SELECT document, version FROM institution_documents WHERE id = \(id)").first(
                (PGJSONB<Institution>, Int).self)
        else {
            return nil
        }
        var institution = row.0.value
        if includePrivate {
            institution.contacts = try await tx.query(
                """
                SELECT role, name, email FROM institution_contacts WHERE institution_id = \(id) ORDER BY position
                """
            ).decode((String, String, String).self).map { Contact(role: $0.0, name: $0.1, email: $0.2) }
        }
        return Document(institution: institution, version: row.1)
    }

    static func document(_ id: UUID, includePrivate: Bool, on tx: PGConnection) async throws -> Document {
        guard let document = try await find(id, includePrivate: includePrivate, on: tx) else { throw Problem.notFound("No such institution.") }
        return document
    }

    static func nonEmpty(_ value: String?) -> String? {
        guard let trimmed = value?.trimmingCharacters(in: .whitespacesAndNewlines), !trimmed.isEmpty else { return nil }
        return trimmed
    }
}

enum UserStore {
    static let columns: PGQuery = "u.id, u.email, u.name, u.role, u.institution_id, \(Timestamp.seconds("u.created_at"))"

    static func decode(_ row: PGRow) throws -> User {
        let (id, email, name, role, institution, created) = try row.decode((UUID, String, String, String, UUID, String).self)
        return User(id: id, email: email, name: name, role: role, institutionId: institution, createdAt: created)
    }

    static func user(_ id: UUID, on tx: PGConnection) async throws -> User {
        let rows = try await tx.query("SELECT \(columns) FROM users u WHERE u.id = \(id)")
        guard let row = rows.first else { throw Problem.notFound("No such user.") }
        return try decode(row)
    }

    static func members(of institution: UUID, on tx: PGConnection) async throws -> [User] {
        try await tx.query("SELECT \(columns) FROM users u WHERE u.institution_id = \(institution) ORDER BY u.created_at, u.id").map(decode)
    }

    static func networkAdmin(_ id: UUID, on tx: PGConnection) async throws -> User {
        guard
            let row = try await tx.query(
                """
                SELECT id, email, name, \(Timestamp.seconds("created_at")) FROM network_admins WHERE id = \(id)
                """
            ).first((UUID, String, String, String).self)
        else { throw Problem.notFound("No such account.") }
        return User(id: row.0, email: row.1, name: row.2, role: "network_admin", institutionId: nil, createdAt: row.3)
    }
}
