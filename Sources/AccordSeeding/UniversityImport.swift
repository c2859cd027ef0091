import AccordCore
import Foundation
import PGStore

/// Imports the world university list (the format of Hipo's `world_universities_and_domains.json`)
/// as active, unclaimed directory entries without users. Idempotent by domain: a second run
/// updates what changed and leaves the rest; entries already claimed by a registration are never
/// overwritten.
public struct UniversityImport: Sendable {
    public struct Record: Decodable, Sendable {
        public var name: String
        public var alphaTwoCode: String
        public var stateProvince: String?
        public var domains: [String]
        public var webPages: [String]

        enum CodingKeys: String, CodingKey {
            case name
            case alphaTwoCode = "alpha_two_code"
            case stateProvince = "state-province"
            case domains
            case webPages = "web_pages"
        }
    }

    public struct Summary: Sendable, Equatable {
        public var created = 0
        public var updated = 0
        public var unchanged = 0
        /// Reason -> count.
        public var skipped: [String: Int] = [:]
        public var total: Int { created + updated + unchanged + skipped.values.reduce(0, +) }
    }

    let pool: PGPool
    let batchSize: Int

    /// `pool` must connect as the owner role (an operator's tool).
    public init(pool: PGPool, batchSize: Int = 500) {
        self.pool = pool
        self.batchSize = batchSize
    }

    public static func read(_ url: URL) throws -> [Record] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw Problem.badRequest("cannot read \(url.path)") }
        do {
            return try JSONDecoder().decode([Record].self, from: data)
        } catch let error as DecodingError {
            let problem = JSONBody.problem(for: error)
            throw Problem.badRequest("\(url.lastPathComponent) is not a university list: \(problem.detail ?? problem.title)")
        }
    }

    /// Imports `records`, calling `progress(done, total)` after each batch.
    public func run(_ records: [Record], progress: @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> Summary {
        var summary = Summary()
        let codes: [String] = try await pool.query("SELECT code::text FROM countries").decode(String.self)
        let countries = Set(codes)
        var seen = Set<String>()
        // One set-based statement per batch: the directory's statement-level triggers then run once
        // per batch, not once per row.
        var batch = ImportBatch()
        var done = 0

        func flush() async throws {
            guard !batch.schacs.isEmpty else { return }
            let rows = try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
                try await tx.query(
                    """
                    INSERT INTO institutions (schac, names, country, type, status, claimed, website)
                    SELECT r.schac, r.names::jsonb, r.country, 'university', 'active', false, nullif(r.website, '')
                    FROM unnest(\(batch.schacs)::text[], \(batch.names)::text[], \(batch.countries)::text[], \(batch.websites)::text[])
                        AS r (schac, names, country, website)
                    -- A domain someone has registered and that awaits review gets no entry of its own.
                    WHERE NOT EXISTS (SELECT 1 FROM institutions x WHERE x.schac = r.schac AND x.status = 'pending' AND x.claim_of IS NULL)
                    ON CONFLICT (schac) WHERE claim_of IS NULL AND status IN ('active', 'suspended') DO UPDATE
                        SET names = excluded.names, country = excluded.country, website = excluded.website,
                            version = institutions.version + 1, updated_at = now()
                        WHERE NOT institutions.claimed
                          AND (institutions.names, institutions.country, institutions.website)
                              IS DISTINCT FROM (excluded.names, excluded.country, excluded.website)
                    RETURNING (xmax = 0)
                    """
                ).decode(Bool.self)
            }
            let created = rows.filter { $0 }.count
            summary.created += created
            summary.updated += rows.count - created
            summary.unchanged += batch.schacs.count - rows.count
            done += batch.schacs.count
            batch = ImportBatch()
            progress(done + summary.skipped.values.reduce(0, +), records.count)
        }

        for record in records {
            guard let domain = record.domains.first?.lowercased().trimmingCharacters(in: .whitespaces), Formats.isDomain(domain) else {
                summary.skipped["no valid domain", default: 0] += 1
                continue
            }
            guard countries.contains(record.alphaTwoCode) else {
                summary.skipped["country \(record.alphaTwoCode) is not in ISO 3166-1", default: 0] += 1
                continue
            }
            guard seen.insert(domain).inserted else {
                summary.skipped["domain listed twice", default: 0] += 1
                continue
            }
            let name = record.name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !name.isEmpty, name.count <= 300 else {
                summary.skipped["no usable name", default: 0] += 1
                continue
            }
            let names = try JSONEncoder().encode([LocalizedName(lang: "en", value: name)])
            let website = record.webPages.first.flatMap { Formats.isWebURL($0) ? $0 : nil }
            batch.schacs.append(domain)
            batch.names.append(String(decoding: names, as: UTF8.self))
            batch.countries.append(record.alphaTwoCode)
            batch.websites.append(website ?? "")
            if batch.schacs.count >= batchSize { try await flush() }
        }
        try await flush()
        try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
            try await tx.query(
                """
                INSERT INTO audit_events (action, target_type, detail)
                VALUES ('directory.imported', 'universities', \(PGJSONB(["created": String(summary.created), "updated": String(summary.updated), "unchanged": String(summary.unchanged)])))
                """)
        }
        return summary
    }
}

/// The columns of one batch of imported entries, sent as arrays and unnested by PostgreSQL.
private struct ImportBatch {
    var schacs: [String] = []
    var names: [String] = []
    var countries: [String] = []
    /// "" for none.
    var websites: [String] = []
}
