import AccordCore
import AccordCrypto
import Foundation
import HTTPTypes
import Logging
import PGStore

/// Profiles, members and invitations of one institution.
public struct MembershipService: Sendable {
    let identity: IdentityService
    var pool: PGPool { identity.pool }

    public init(identity: IdentityService) { self.identity = identity }

    // MARK: Profile

    /// The profile: the published part to any signed-in member, everything to the institution's
    /// own users and network administrators. 404 when the caller may not see it.
    public func profile(_ id: UUID, caller: Identity) async throws -> (Institution, version: Int) {
        let own = caller.institutionID == id || caller.isNetworkAdmin
        let document = try await pool.withTenant(caller) { tx in
            try await InstitutionStore.document(id, includePrivate: own, on: tx)
        }
        return (document.institution, document.version)
    }

    /// Changes the profile; `ifMatch` must be the current version (optimistic concurrency).
    public func updateProfile(
        _ id: UUID, with input: ProfileInput, ifMatch: ETag.Precondition, caller: Identity
    ) async throws -> (
        Institution, version: Int
    ) {
        try requireAdmin(of: id, caller: caller)
        let lists = try await identity.reference.lists()
        var v = Validator()
        ProfileValidation(lists: lists).check(input, at: "", creating: false, into: &v)
        if input.schac != nil { v.fail("/schac", "cannot be changed; ask a network administrator") }
        try v.validate()
        defer { identity.identitiesChanged() }  // after the transaction: this instance serves the change at once
        return try await pool.withTenant(caller) { tx in
            guard let version = try await tx.query("SELECT version FROM institutions WHERE id = \(id) FOR UPDATE").first(Int.self) else {
                throw Problem.notFound("No such institution.")
            }
            try ifMatch.check(current: version, document: "profile")
            try await InstitutionStore.update(id, with: input, on: tx)
            try await tx.query("UPDATE institutions SET version = version + 1, updated_at = now() WHERE id = \(id)")
            try await Audit.record(
                "institution.profile_updated", institutionID: id, actor: caller, targetType: "institution", targetID: id.uuidString, on: tx)
            let document = try await InstitutionStore.document(id, includePrivate: true, on: tx)
            return (document.institution, document.version)
        }
    }

    // MARK: Members

    public func members(of id: UUID, caller: Identity) async throws -> [User] {
        guard caller.institutionID == id || caller.isNetworkAdmin else { throw Problem.notFound("No such institution.") }
        return try await pool.withTenant(caller) { tx in try await UserStore.members(of: id, on: tx) }
    }

    /// Changes a member's role. The last admin cannot be demoted.
    public func changeRole(of userID: UUID, in id: UUID, to role: String, caller: Identity) async throws -> User {
        try requireAdmin(of: id, caller: caller)
        guard let newRole = InstitutionRole(rawValue: role) else {
            throw Problem.invalid(field: "/role", "must be one of admin, staff, faculty")
        }
        defer { identity.identitiesChanged() }  // after the transaction: this instance serves the change at once
        return try await pool.withTenant(caller) { tx in
            let current = try await lockMember(userID, in: id, on: tx)
            if current == "admin", newRole != .admin { try await requireAnotherAdmin(in: id, besides: userID, on: tx) }
            try await tx.query("UPDATE users SET role = \(newRole.rawValue), updated_at = now() WHERE id = \(userID)")
            try await Audit.record(
                "user.role_changed", institutionID: id, actor: caller, targetType: "user", targetID: userID.uuidString,
                detail: ["from": current, "to": newRole.rawValue], on: tx)
            return try await UserStore.user(userID, on: tx)
        }
    }

    /// Removes a member (and so their sessions). The last admin cannot be removed.
    public func removeMember(_ userID: UUID, from id: UUID, caller: Identity) async throws {
        try requireAdmin(of: id, caller: caller)
        defer { identity.identitiesChanged() }  // after the transaction: this instance serves the change at once
        try await pool.withTenant(caller) { tx in
            let current = try await lockMember(userID, in: id, on: tx)
            if current == "admin" { try await requireAnotherAdmin(in: id, besides: userID, on: tx) }
            try await tx.query("DELETE FROM users WHERE id = \(userID)")
            try await Audit.record("user.removed", institutionID: id, actor: caller, targetType: "user", targetID: userID.uuidString, on: tx)
        }
    }

    /// Locks the institution's row (serialising role changes) and returns the member's role.
    private func lockMember(_ userID: UUID, in id: UUID, on tx: PGConnection) async throws -> String {
        try await tx.query("SELECT 1 FROM institutions WHERE id = \(id) FOR UPDATE")
        guard let role = try await tx.query("SELECT role FROM users WHERE id = \(userID) AND institution_id = \(id)").first(String.self) else {
            throw Problem.notFound("No such member.")
        }
        return role
    }

    private func requireAnotherAdmin(in id: UUID, besides userID: UUID, on tx: PGConnection) async throws {
        let others = try await tx.query("SELECT count(*) FROM users WHERE institution_id = \(id) AND role = 'admin' AND id <> \(userID)").scalar(
            Int.self)
        if others == 0 {
            throw Problem.conflict("This is the institution's last admin; make another member admin first.")
        }
    }

    /// 404 for another institution (no existence leak), 403 for a non-admin of this one.
    func requireAdmin(of id: UUID, caller: Identity) throws {
        guard caller.institutionID == id else { throw Problem.notFound("No such institution.") }
        guard caller.isInstitutionAdmin else { throw Problem.forbidden("Only the institution's admins may do this.") }
    }

    // MARK: Invitations

    public struct InvitationRequest: Codable, Sendable {
        public var email: String
        public var role: String
    }

    public struct Invitation: Codable, Sendable {
        public var id: UUID
        public var email: String
        public var role: String
        public var status: String
        public var createdAt: String
        public var expiresAt: String
        /// Only in the response that created it: the link that accepts it (which proves the
        /// address it was mailed to).
        public var acceptUrl: String?
        public var token: String?
    }

    /// Invites someone to join the institution, by mail. Only an active institution sends
    /// invitations; one is good only while its inviter is still an admin of the institution.
    public func invite(_ request: InvitationRequest, to id: UUID, caller: Identity) async throws -> Invitation {
        try requireAdmin(of: id, caller: caller)
        guard caller.institutionStatus == .active else {
            throw Problem.forbidden("Your institution is not admitted yet; it can invite members once the network's administrators approve it.")
        }
        var v = Validator()
        v.check(Formats.isEmail(request.email), "/email", "must be an e-mail address")
        v.check(InstitutionRole(rawValue: request.role) != nil, "/role", "must be one of admin, staff, faculty")
        try v.validate()
        if try await pool.query("SELECT accord_email_taken(\(request.email))").scalar(Bool.self) {
            throw Problem.conflict("An account with this e-mail address exists already.")
        }
        let token = Secrets.newToken()
        let hash = Data(Secrets.sha256(token.utf8))
        let expires = Date(timeIntervalSinceNow: identity.configuration.invitationLifetime)
        let link = ClientLink.page("/invitations/" + token, base: identity.configuration.publicBaseURL)
        return try await pool.withTenant(caller) { tx in
            let invitationID = try await tx.query(
                """
                INSERT INTO invitations (institution_id, email, role, token_hash, invited_by, expires_at)
                VALUES (\(id), \(request.email), \(request.role), \(hash), \(caller.accountID), \(expires)) RETURNING id
                """
            ).scalar(UUID.self)
            let name = try await tx.query("SELECT names->0->>'value' FROM institutions WHERE id = \(id)").scalar(String?.self) ?? "your institution"
            try await tx.query(
                """
                INSERT INTO mail_outbox (institution_id, recipient, subject, body)
                VALUES (\(id), \(request.email), \("Invitation to join \(name) on Accord"),
                        \("You are invited to join \(name) on Accord as \(request.role).\n\nAccept within 7 days: \(link)\n"))
                """)
            try await Audit.record(
                "invitation.created", institutionID: id, actor: caller, targetType: "invitation", targetID: invitationID.uuidString,
                detail: ["email": request.email.lowercased(), "role": request.role], on: tx)
            var invitation = try await invitationRow(invitationID, on: tx)
            invitation.acceptUrl = link
            invitation.token = token
            return invitation
        }
    }

    public func invitations(of id: UUID, caller: Identity) async throws -> [Invitation] {
        try requireAdmin(of: id, caller: caller)
        return try await pool.withTenant(caller) { tx in
            try await tx.query("SELECT \(Self.invitationColumns) FROM invitations WHERE institution_id = \(id) ORDER BY created_at DESC LIMIT 500")
                .map(Self.decodeInvitation)
        }
    }

    public func revokeInvitation(_ invitationID: UUID, of id: UUID, caller: Identity) async throws {
        try requireAdmin(of: id, caller: caller)
        try await pool.withTenant(caller) { tx in
            let revoked = try await tx.query(
                """
                UPDATE invitations SET revoked_at = now()
                WHERE id = \(invitationID) AND institution_id = \(id) AND accepted_at IS NULL AND revoked_at IS NULL
                """
            ).affectedRows
            guard revoked == 1 else { throw Problem.notFound("No open invitation with this id.") }
            try await Audit.record(
                "invitation.revoked", institutionID: id, actor: caller, targetType: "invitation", targetID: invitationID.uuidString, on: tx)
        }
    }

    public struct AcceptRequest: Codable, Sendable {
        public var name: String
        public var password: String
    }

    /// Accepts an invitation: creates the user and signs them in. Single use; refused (404) once
    /// its inviter is no longer an admin of the institution or the institution is not active.
    public func accept(token: String, _ request: AcceptRequest, clientAddress: String?) async throws -> SessionGrant {
        var v = Validator()
        let name = request.name.trimmingCharacters(in: .whitespaces)
        v.text(name, "/name", 1...200)
        IdentityService.checkPassword(request.password, field: "/password", into: &v)
        try v.validate()
        let hash = Data(Secrets.sha256(token.utf8))
        guard
            let invitation = try await pool.query("SELECT id, institution_id, email, role FROM accord_invitation(\(hash))")
                .first((UUID, UUID, String, String).self)
        else { throw Problem.notFound("This invitation does not exist, was used, revoked, or has expired.") }
        let passwordHash = try await identity.hash(request.password)
        let userID = UUID()
        let context = Identity(
            accountID: userID, institutionID: invitation.1, role: InstitutionRole(rawValue: invitation.3), isNetworkAdmin: false,
            institutionStatus: nil, tokenHash: [])
        do {
            try await pool.withTenant(context) { tx in
                let claimed = try await tx.query(
                    """
                    UPDATE invitations SET accepted_at = now()
                    WHERE id = \(invitation.0) AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
                      AND EXISTS (SELECT 1 FROM users u WHERE u.id = invitations.invited_by AND u.role = 'admin'
                                                          AND u.institution_id = invitations.institution_id)
                    """
                ).affectedRows
                guard claimed == 1 else { throw Problem.notFound("This invitation does not exist, was used, revoked, or has expired.") }
                try await tx.query(
                    """
                    INSERT INTO users (id, institution_id, email, name, role, password_hash, email_verified_at)
                    VALUES (\(userID), \(invitation.1), \(invitation.2), \(name), \(invitation.3), \(passwordHash), now())
                    """)
                try await Audit.record(
                    "invitation.accepted", institutionID: invitation.1, actor: context, targetType: "invitation",
                    targetID: invitation.0.uuidString, clientAddress: clientAddress, on: tx)
            }
        } catch let error as PGError where error.isUniqueViolation {
            throw Problem.conflict("An account with this e-mail address exists already.")
        }
        return try await identity.createSession(accountID: userID, isAdmin: false, institutionID: invitation.1)
    }

    static let invitationColumns: PGQuery = """
        id, email, role,
        CASE WHEN accepted_at IS NOT NULL THEN 'accepted' WHEN revoked_at IS NOT NULL THEN 'revoked'
             WHEN expires_at <= now() THEN 'expired' ELSE 'open' END,
        \(Timestamp.seconds("created_at")), \(Timestamp.seconds("expires_at"))
        """

    static func decodeInvitation(_ row: PGRow) throws -> Invitation {
        let (id, email, role, status, created, expires) = try row.decode((UUID, String, String, String, String, String).self)
        return Invitation(id: id, email: email, role: role, status: status, createdAt: created, expiresAt: expires)
    }

    private func invitationRow(_ id: UUID, on tx: PGConnection) async throws -> Invitation {
        let rows = try await tx.query("SELECT \(Self.invitationColumns) FROM invitations WHERE id = \(id)")
        return try Self.decodeInvitation(rows[0])
    }
}
