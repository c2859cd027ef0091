import Foundation
import PGStore
import Synchronization

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
                try await connection.query(
                    """
                    SELECT code::text, coalesce(region_code, ''), coalesce(region, ''), coalesce(sub_region_code, ''), coalesce(sub_region, ''),
                           coalesce(intermediate_region_code, ''), coalesce(intermediate_region, '')
                    FROM countries
                    """
                ).decode((String, String, String, String, String, String, String).self),
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
