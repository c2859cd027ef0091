import Foundation
import PGStore
import Synchronization

/// The membership tiers the network defines (`tiers`, Schema/0016): an institution's tier is one
/// of them. Tiers are added, never removed, so a code once known stays valid; a code not yet known
/// here is looked up again before it is refused.
public final class Tiers: Sendable {
    /// A tier: its code (what institutions carry and filters name) and its label.
    public struct Tier: Codable, Sendable, Equatable {
        public var code: String
        public var label: String
        public var createdAt: String?

        public init(code: String, label: String, createdAt: String? = nil) {
            self.code = code
            self.label = label
            self.createdAt = createdAt
        }
    }

    /// Whether a text has the shape of a tier code: a lower-case letter, then up to 31 lower-case
    /// letters, digits or underscores.
    public static func isWellFormed(_ code: String) -> Bool {
        guard let first = code.utf8.first, (1...32).contains(code.utf8.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
            return false
        }
        return code.utf8.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_")
        }
    }

    private let pool: PGPool
    private let known = Mutex<Set<String>>([])

    public init(pool: PGPool) { self.pool = pool }

    /// Every tier, oldest first.
    public func all() async throws -> [Tier] {
        let rows = try await pool.query(
            "SELECT code, label, \(Timestamp.seconds("created_at")) FROM tiers ORDER BY created_at, code"
        ).decode((String, String, String).self)
        var tiers: [Tier] = []
        for (code, label, created) in rows { tiers.append(Tier(code: code, label: label, createdAt: created)) }
        known.withLock { $0.formUnion(tiers.map(\.code)) }
        return tiers
    }

    /// The codes among `codes` that are not tiers of the network.
    public func unknown(_ codes: some Collection<String>) async throws -> [String] {
        let missing = known.withLock { known in codes.filter { !known.contains($0) } }
        guard !missing.isEmpty else { return [] }
        let all = Set(try await all().map(\.code))
        return missing.filter { !all.contains($0) }
    }
}
