import AccordCore
import AccordCrypto
import Foundation
import PGStore

extension IdentityService {
    public struct RegistrationRequest: Codable, Sendable {
        public var institution: ProfileInput
        public var admin: AdminInput
    }

    public struct AdminInput: Codable, Sendable {
        public var email: String
        public var password: String
        public var name: String
    }

    public struct Registration: Codable, Sendable {
        public var institution: Institution
        public var user: User
    }

    /// The one answer to a registration whose e-mail address or SCHAC code is taken: it does not
    /// say which, nor anything of institutions that are not active and listed.
    static let registrationCollides = Problem.conflict(
        "This registration cannot be accepted: its e-mail address or its SCHAC code is not available. "
            + "If you have an account, sign in; otherwise ask the network's administrators.")

    /// Creates a pending institution and its first admin, and mails the admin a link that verifies
    /// their address. A SCHAC code that belongs to an unclaimed imported entry makes the
    /// registration a claim on that entry, which network administrators approve only once the
    /// admin's verified address is at that domain. Pending registrations hold no SCHAC code: several
    /// may name the same one, and the administrators see them side by side.
    public func register(_ request: RegistrationRequest, clientAddress: String?) async throws -> Registration {
        let lists = try await reference.lists()
        var v = Validator()
        ProfileValidation(lists: lists).check(request.institution, at: "/institution", creating: true, into: &v)
        v.check(Formats.isEmail(request.admin.email), "/admin/email", "must be an e-mail address")
        let name = request.admin.name.trimmingCharacters(in: .whitespaces)
        v.text(name, "/admin/name", 1...200)
        Self.checkPassword(request.admin.password, field: "/admin/password", into: &v)
        try v.validate()

        let wait = try await pool.query(
            """
            SELECT accord_registration_wait(\(clientAddress), \(configuration.registrationsPerAddress)::integer,
                                            \(Self.interval(configuration.registrationWindow))::interval)
            """
        ).scalar(Int.self)
        if wait > 0 { throw Problem.tooManyRequests(retryAfterSeconds: wait) }

        let email = request.admin.email
        let schac = request.institution.schac!.lowercased()
        let (taken, holder) = try await pool.withConnection { connection in
            (
                try await connection.query("SELECT accord_email_taken(\(email))").scalar(Bool.self),
                try await connection.query("SELECT id, claimed, published FROM accord_schac_owner(\(schac))").first((UUID, Bool, Bool).self)
            )
        }
        if taken { throw Self.registrationCollides }
        var claimOf: UUID?
        if let holder {
            if !holder.1 {
                claimOf = holder.0
            } else if holder.2 {
                throw Self.registrationCollides
            }
            // Held by an institution that is suspended or unlisted: the registration is taken and
            // the administrators see the collision; the registrant learns nothing of it.
        }
        let passwordHash = try await hash(request.admin.password)
        let institutionID = UUID()
        let userID = UUID()
        let identity = Identity(
            accountID: userID, institutionID: institutionID, role: .admin, isNetworkAdmin: false, institutionStatus: .pending, tokenHash: [])
        do {
            return try await pool.withTenant(identity) { tx in
                try await InstitutionStore.insert(request.institution, id: institutionID, schac: schac, claimOf: claimOf, on: tx)
                try await tx.query(
                    """
                    INSERT INTO users (id, institution_id, email, name, role, password_hash)
                    VALUES (\(userID), \(institutionID), \(email), \(name), 'admin', \(passwordHash))
                    """)
                try await sendVerification(to: email, userID: userID, institutionID: institutionID, on: tx)
                try await Audit.record(
                    "institution.registered", institutionID: institutionID, actor: identity, targetType: "institution",
                    targetID: institutionID.uuidString, detail: ["schac": schac, "claimOf": claimOf?.uuidString ?? ""], clientAddress: clientAddress,
                    on: tx)
                let institution = try await InstitutionStore.document(institutionID, includePrivate: true, on: tx)
                let user = try await UserStore.user(userID, on: tx)
                return Registration(institution: institution.institution, user: user)
            }
        } catch let error as PGError where error.isUniqueViolation {
            throw Self.registrationCollides
        }
    }

    /// Creates a single-use link that proves `email` and puts it in the mail outbox.
    func sendVerification(to email: String, userID: UUID, institutionID: UUID, on tx: PGConnection) async throws {
        let token = Secrets.newToken()
        let expires = Date(timeIntervalSinceNow: configuration.emailVerificationLifetime)
        let link = ClientLink.page("/verify-email/" + token, base: configuration.publicBaseURL)
        try await tx.query(
            """
            INSERT INTO email_verifications (user_id, email, token_hash, expires_at)
            VALUES (\(userID), \(email), \(Data(Secrets.sha256(token.utf8))), \(expires))
            """)
        let hours = Int(configuration.emailVerificationLifetime / 3600)
        try await tx.query(
            """
            INSERT INTO mail_outbox (institution_id, recipient, subject, body)
            VALUES (\(institutionID), \(email), 'Confirm your e-mail address for Accord',
                    \("Confirm that this address is yours: open this link within \(hours) hours.\n\n\(link)\n\nIf you did not register with Accord, ignore this message.\n"))
            """)
    }

    public struct EmailVerification: Codable, Sendable {
        public var email: String
        public var verified: Bool
    }

    /// Follows a verification link: the address it was sent to is verified, once. 404 when the
    /// link is unknown, used or expired, or the account no longer has that address.
    public func verifyEmail(token: String) async throws -> EmailVerification {
        guard (20...200).contains(token.utf8.count) else { throw Self.unknownVerification }
        guard
            let email = try await pool.query("SELECT email FROM accord_verify_email(\(Data(Secrets.sha256(token.utf8))))").first(String.self)
        else { throw Self.unknownVerification }
        identitiesChanged()
        return EmailVerification(email: email, verified: true)
    }

    static let unknownVerification = Problem.notFound("This verification link does not exist, was used, or has expired.")

    /// An interval PostgreSQL reads: `900 seconds`.
    static func interval(_ seconds: TimeInterval) -> String { "\(Int(seconds)) seconds" }
}
