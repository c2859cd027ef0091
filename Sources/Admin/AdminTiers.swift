import AccordCore
import Foundation
import PGStore

/// A new tier, as `POST /v1/admin/tiers` takes it.
struct NewTier: Codable, Sendable {
    var code: String
    var label: String
}

extension AdmissionService {
    /// The network's tiers, oldest first.
    public func tierList(caller: Identity) async throws -> Page<Tiers.Tier> {
        try Self.requireNetworkAdmin(caller)
        return Page(items: try await tiers.all(), nextCursor: nil)
    }

    /// Adds a tier to the network's vocabulary (409 when its code exists).
    func addTier(_ new: NewTier, caller: Identity) async throws -> Tiers.Tier {
        try Self.requireNetworkAdmin(caller)
        var v = Validator()
        v.check(Tiers.isWellFormed(new.code), "/code", "must be a lower-case letter, then up to 31 lower-case letters, digits or underscores")
        v.text(new.label, "/label", 1...100)
        try v.validate()
        do {
            return try await pool.withTenant(caller) { tx in
                let created = try await tx.query(
                    "INSERT INTO tiers (code, label) VALUES (\(new.code), \(new.label)) RETURNING \(Timestamp.seconds("created_at"))"
                ).scalar(String.self)
                try await Audit.record(
                    "tier.created", institutionID: nil, actor: caller, targetType: "tier", targetID: new.code, detail: ["label": new.label], on: tx)
                return Tiers.Tier(code: new.code, label: new.label, createdAt: created)
            }
        } catch let error as PGError where error.isUniqueViolation {
            throw Problem.conflict("The tier \(new.code) exists.")
        }
    }
}
