import AccordCore
import AccordCrypto
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import PGStore

/// Settings of the identity rules.
public struct IdentityConfiguration: Sendable {
    /// How long a session token lives.
    public var sessionLifetime: TimeInterval
    /// How long an invitation may be accepted.
    public var invitationLifetime: TimeInterval
    /// Failed sign-ins allowed per e-mail address in `throttleWindow`.
    public var failuresPerEmail: Int
    /// Failed sign-ins allowed per client address in `throttleWindow`.
    public var failuresPerAddress: Int
    public var throttleWindow: TimeInterval
    public var passwordHasher: PasswordHasher
    /// The public address of the web front end, for links in mail (`…/invitations/{token}`).
    public var publicBaseURL: String

    public init(
        sessionLifetime: TimeInterval = 12 * 3600,
        invitationLifetime: TimeInterval = 7 * 24 * 3600,
        failuresPerEmail: Int = 5,
        failuresPerAddress: Int = 30,
        throttleWindow: TimeInterval = 15 * 60,
        passwordHasher: PasswordHasher = PasswordHasher(),
        publicBaseURL: String = "http://127.0.0.1:8080"
    ) {
        self.sessionLifetime = sessionLifetime
        self.invitationLifetime = invitationLifetime
        self.failuresPerEmail = failuresPerEmail
        self.failuresPerAddress = failuresPerAddress
        self.throttleWindow = throttleWindow
        self.passwordHasher = passwordHasher
        self.publicBaseURL = publicBaseURL
    }
}

/// A new session: the bearer token is shown once and stored only as its hash.
public struct SessionGrant: Codable, Sendable {
    public var token: String
    public var expiresAt: Date
    public var user: User
}

/// Registration, sign-in, sessions and passwords.
public struct IdentityService: Sendable {
    public let pool: PGPool
    public let configuration: IdentityConfiguration
    let reference: ReferenceData
    let logger: Logger
    /// Resolved sessions in memory; nil: every request asks the database.
    public let cache: IdentityCache?

    public init(
        pool: PGPool, configuration: IdentityConfiguration, reference: ReferenceData, cache: IdentityCache? = nil,
        logger: Logger = Logger(label: "accord.identity")
    ) {
        self.pool = pool
        self.configuration = configuration
        self.reference = reference
        self.cache = cache
        self.logger = logger
    }

    /// After this process committed a change to what sessions resolve to (a revocation, a role, a
    /// status, a profile): nothing it remembered is served again. Other instances learn of it from
    /// the database's notification.
    func identitiesChanged() {
        cache?.invalidateAll()
    }

    // MARK: Passwords

    /// What is wrong with a new password (too short, too long, too common), or nil.
    public static func passwordProblem(_ password: String) -> String? {
        if password.count < PasswordHasher.minimumLength { return "must have at least \(PasswordHasher.minimumLength) characters" }
        if password.count > PasswordHasher.maximumLength { return "must have at most \(PasswordHasher.maximumLength) characters" }
        if CommonPasswords.contains(password) { return "is too common; choose another" }
        return nil
    }

    static func checkPassword(_ password: String, field: String, into v: inout Validator) {
        if let problem = passwordProblem(password) { v.fail(field, problem) }
    }

    /// Hashes off the event loop and off the Swift concurrency pool.
    func hash(_ password: String) async throws -> String {
        let hasher = configuration.passwordHasher
        return try await NIOThreadPool.singleton.runIfActive { hasher.hash(password) }
    }

    func verify(_ password: String, against stored: String?) async throws -> Bool {
        let hasher = configuration.passwordHasher
        return try await NIOThreadPool.singleton.runIfActive {
            guard let stored else {
                hasher.verifyNothing(password)
                return false
            }
            return hasher.verify(password, against: stored)
        }
    }

    // MARK: Registration

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

    /// Creates a pending institution and its first admin. A SCHAC code that belongs to an
    /// unclaimed imported entry makes the registration a claim on that entry.
    public func register(_ request: RegistrationRequest, clientAddress: String?) async throws -> Registration {
        let lists = try await reference.lists()
        var v = Validator()
        ProfileValidation(lists: lists).check(request.institution, at: "/institution", creating: true, into: &v)
        v.check(Formats.isEmail(request.admin.email), "/admin/email", "must be an e-mail address")
        v.check((1...200).contains(request.admin.name.trimmingCharacters(in: .whitespaces).count), "/admin/name", "must have 1 to 200 characters")
        Self.checkPassword(request.admin.password, field: "/admin/password", into: &v)
        try v.validate()

        let email = request.admin.email
        let schac = request.institution.schac!.lowercased()
        let (taken, owner) = try await pool.withConnection { connection in
            (
                try await connection.query("SELECT accord_email_taken(\(email))").scalar(Bool.self),
                try await connection.query("SELECT id, claimed, pending_claim FROM accord_schac_owner(\(schac))").first((UUID, Bool, Bool).self)
            )
        }
        if taken { throw Problem.conflict("An account with this e-mail address exists already.") }
        var claimOf: UUID?
        if let owner {
            if owner.1 { throw Problem.conflict("An institution with the SCHAC code \(schac) is registered already.") }
            if owner.2 { throw Problem.conflict("The directory entry \(schac) is being claimed by another registration.") }
            claimOf = owner.0
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
                    VALUES (\(userID), \(institutionID), \(email), \(request.admin.name.trimmingCharacters(in: .whitespaces)), 'admin', \(passwordHash))
                    """)
                try await Audit.record(
                    "institution.registered", institutionID: institutionID, actor: identity, targetType: "institution",
                    targetID: institutionID.uuidString, detail: ["schac": schac, "claimOf": claimOf?.uuidString ?? ""], clientAddress: clientAddress,
                    on: tx)
                let institution = try await InstitutionStore.document(institutionID, includePrivate: true, on: tx)
                let user = try await UserStore.user(userID, on: tx)
                return Registration(institution: institution.institution, user: user)
            }
        } catch let error as PGError where error.isUniqueViolation {
            throw Problem.conflict(
                error.constraint?.contains("email") == true
                    ? "An account with this e-mail address exists already."
                    : "An institution with the SCHAC code \(schac) is registered already.")
        }
    }

    // MARK: Sessions

    public struct SignInRequest: Codable, Sendable {
        public var email: String
        public var password: String
    }

    /// Signs in with e-mail and password. Unknown e-mail and wrong password take the same time and
    /// give the same answer; repeated failures per e-mail and per client address are throttled.
    public func signIn(_ request: SignInRequest, clientAddress: String?) async throws -> SessionGrant {
        var v = Validator()
        v.check(!request.email.isEmpty && request.email.count <= 254, "/email", "must be an e-mail address")
        v.check(!request.password.isEmpty && request.password.count <= PasswordHasher.maximumLength, "/password", "is required")
        try v.validate()
        let keys = ["email:" + request.email.lowercased(), "address:" + (clientAddress ?? "unknown")]
        let window = "\(Int(configuration.throttleWindow)) seconds"
        let wait = try await pool.query(
            """
            SELECT greatest(
                accord_sign_in_wait(\([keys[0]]), \(configuration.failuresPerEmail)::integer, \(window)::interval),
                accord_sign_in_wait(\([keys[1]]), \(configuration.failuresPerAddress)::integer, \(window)::interval))
            """
        ).scalar(Int.self)
        if wait > 0 { throw Problem.tooManyRequests(retryAfterSeconds: wait) }

        let account = try await pool.query(
            """
            SELECT account_id, is_admin, institution_id, institution_status, password_hash FROM accord_sign_in_account(\(request.email))
            """
        ).first((UUID, Bool, UUID?, String?, String?).self)
        let verified = try await verify(request.password, against: account?.4)
        guard let account, verified else {
            try await pool.query("SELECT accord_sign_in_failed(\(keys), \(window)::interval, \(request.email), \(clientAddress))")
            throw Problem.unauthorized("The e-mail address or the password is wrong.")
        }
        if let status = account.3, status == "rejected" || status == "suspended" {
            throw Problem.forbidden("Your institution's membership is \(status); signing in is not possible.")
        }
        try await pool.query("SELECT accord_sign_in_succeeded(\(keys))")
        return try await createSession(accountID: account.0, isAdmin: account.1, institutionID: account.2)
    }

    /// How many expired sessions each sign-in removes: more than one, so that the table shrinks back
    /// to the live sessions however sign-ins and expiries interleave.
    static let expiredSessionsPurgedPerSignIn: Int32 = 100

    /// Opens a session for an account that just proved who it is.
    func createSession(accountID: UUID, isAdmin: Bool, institutionID: UUID?) async throws -> SessionGrant {
        let token = Secrets.newToken()
        let tokenHash = Data(Secrets.sha256(token.utf8))
        let expiresAt = Date(timeIntervalSinceNow: configuration.sessionLifetime)
        let identity = Identity(
            accountID: accountID, institutionID: institutionID, role: nil, isNetworkAdmin: isAdmin, institutionStatus: nil, tokenHash: [])
        let user = try await pool.withTenant(identity) { tx -> User in
            // Each new session removes a few expired ones (anyone's), so the table stays small.
            try await tx.query("SELECT accord_purge_expired_sessions(\(Self.expiredSessionsPurgedPerSignIn))")
            if isAdmin {
                try await tx.query("INSERT INTO sessions (token_hash, admin_id, expires_at) VALUES (\(tokenHash), \(accountID), \(expiresAt))")
                return try await UserStore.networkAdmin(accountID, on: tx)
            }
            try await tx.query(
                """
                INSERT INTO sessions (token_hash, user_id, institution_id, expires_at)
                VALUES (\(tokenHash), \(accountID), \(institutionID), \(expiresAt))
                """)
            return try await UserStore.user(accountID, on: tx)
        }
        return SessionGrant(token: token, expiresAt: expiresAt, user: user)
    }

    /// The identity behind a bearer token, or nil when the token is unknown, expired, revoked, or
    /// its institution was rejected or suspended.
    public func authenticate(token: String) async throws -> Identity? {
        guard (20...200).contains(token.utf8.count) else { return nil }
        let hash = Secrets.sha256(token.utf8)
        if cache != nil { return try await resolve(hash)?.identity }
        guard
            let row = try await pool.query(
                """
                SELECT account_id, is_admin, institution_id, role, institution_status FROM accord_authenticate(\(Data(hash)))
                """
            ).first((UUID, Bool, UUID?, String, InstitutionStatus?).self)
        else { return nil }
        return Identity(
            accountID: row.0, institutionID: row.2, role: InstitutionRole(rawValue: row.3), isNetworkAdmin: row.1,
            institutionStatus: row.4, tokenHash: hash)
    }

    /// What a token hash resolves to (identity, /v1/me body, session expiry), from the cache or in
    /// one statement (`accord_me_session`). Nil when the token does not authenticate (unknown,
    /// expired, revoked, or its institution rejected or suspended).
    func resolve(_ hash: [UInt8]) async throws -> IdentityCache.Entry? {
        var ticket: IdentityCache.Ticket?
        if let cache {
            switch cache.lookup(hash) {
            case .hit(let entry): return entry
            case .miss(let missed): ticket = missed
            }
        }
        guard
            let row = try await pool.query(
                """
                SELECT document, account_id, is_admin, institution_id, role, institution_status, expires_at
                FROM accord_me_session(\(Data(hash)))
                """
            ).first((PGRawJSON, UUID, Bool, UUID?, String, InstitutionStatus?, Date).self)
        else { return nil }
        let identity = Identity(
            accountID: row.1, institutionID: row.3, role: InstitutionRole(rawValue: row.4), isNetworkAdmin: row.2,
            institutionStatus: row.5, tokenHash: hash)
        let entry = IdentityCache.Entry(identity: identity, me: ByteBuffer(bytes: row.0.bytes), expiresAt: row.6)
        if let cache, let ticket { cache.store(hash, entry, ticket: ticket) }
        return entry
    }

    /// Revokes the session that authenticated `identity`.
    public func signOut(_ identity: Identity) async throws {
        try await pool.withTenant(identity) { tx in
            try await tx.query("DELETE FROM sessions WHERE token_hash = \(Data(identity.tokenHash))")
        }
        identitiesChanged()
    }

    public struct Me: Codable, Sendable {
        public var user: User
        public var institution: Institution?
        public var roles: [String]
    }

    /// The caller, their institution and their roles: one statement, one round trip.
    public func me(_ identity: Identity) async throws -> Me {
        guard let body = try await resolve(identity.tokenHash)?.me else {
            throw Problem.unauthorized("The token is unknown, expired or revoked.")
        }
        return try JSONDecoder().decode(Me.self, from: Data(body.readableBytesView))
    }

    /// The body of `GET /v1/me` for a bearer token, as the JSON document PostgreSQL builds (ids
    /// upper-case, absent optional fields left out, as everywhere in the API); nil when the token
    /// does not authenticate. See `resolve`.
    public func meBody(token: String) async throws -> ByteBuffer? {
        guard (20...200).contains(token.utf8.count) else { return nil }
        return try await resolve(Secrets.sha256(token.utf8))?.me
    }

    // MARK: Network administrators

    /// Creates the first network administrator if there is none yet (for `accord serve` with
    /// ACCORD_ADMIN_EMAIL and ACCORD_ADMIN_PASSWORD). Returns whether one was created.
    public func bootstrapNetworkAdmin(email: String, password: String, name: String = "Network administrator") async throws -> Bool {
        var v = Validator()
        v.check(Formats.isEmail(email), "ACCORD_ADMIN_EMAIL", "must be an e-mail address")
        Self.checkPassword(password, field: "ACCORD_ADMIN_PASSWORD", into: &v)
        try v.validate()
        let hash = try await hash(password)
        return try await pool.query("SELECT accord_bootstrap_network_admin(\(email), \(name), \(hash))").scalar(Bool.self)
    }
}
