import Foundation
import PGStore

/// The append-only audit log (`audit_events`): who did what to which record, written in the
/// transaction of the change itself.
public enum Audit {
    /// Records `action` (`institution.approve`, `user.role_changed`, …) by `actor` on `tx`.
    public static func record(
        _ action: String, institutionID: UUID?, actor: Identity?, targetType: String?, targetID: String?,
        detail: [String: String] = [:], clientAddress: String? = nil, on tx: PGConnection
    ) async throws {
        // An id is stored as the API writes it, in lower case.
        let targetID = targetID.map { UUID(uuidString: $0) != nil ? $0.lowercased() : $0 }
        let userID = actor?.isNetworkAdmin == false ? actor?.accountID : nil
        let adminID = actor?.isNetworkAdmin == true ? actor?.accountID : nil
        try await tx.query(
            """
            INSERT INTO audit_events (action, institution_id, actor_user_id, actor_admin_id, target_type, target_id, detail, client_address)
            VALUES (\(action), \(institutionID), \(userID), \(adminID), \(targetType), \(targetID), \(PGJSONB(detail)), \(clientAddress))
            """)
    }
}
