import AccordCore
import AccordCrypto
import Foundation
import Logging
import NIOCore
import PGStore
import Synchronization

/// A new session: the bearer token is shown once and stored only as its hash.
public struct SessionGrant: Codable, Sendable {
    public var token: String
    public var expiresAt: Date
    public var user: User
}

extension IdentityService {
    public struct SignInRequest: Codable, Sendable {
        public var email: String
        public var password: String
        /// For a network administrator with a second factor: the code of their authenticator app,
        /// or one of their recovery codes instead.
        public var totp: String?
        public var recoveryCode: String?
    }

    /// The account behind an e-mail address, as the throttle hands it over once an attempt may go on.
    struct Account {
        let id: UUID
        let isAdmin: Bool
        let institutionID: UUID?
        let institutionStatus: String?
        let passwordHash: String
    }

    /// Counts a password attempt for `email` from `clientAddress` before the password is checked
    /// (429 when it must wait; see `IdentityConfiguration` and Schema/0010), then checks it: the
    /// account when the password is right, nil when it is wrong or there is no such account (the
    /// same time either way). A success clears only this e-mail and address's own counter, and
    /// only once `confirm` (a second factor) accepts the account: while it throws, the attempt
    /// stays counted.
    func checkPassword(
        _ password: String, email: String, clientAddress: String?, confirm: ((Account) async throws -> Void)? = nil
    ) async throws -> Account? {
        let c = configuration
        guard
            let row = try await pool.query(
                """
                SELECT wait_seconds, account_id, is_admin, institution_id, institution_status, password_hash
                FROM accord_sign_in_begin(\(email), \(clientAddress), \(c.attemptsPerEmailAndAddress)::integer,
                    \(c.unknownEmailAttemptsPerAddress)::integer, \(Self.interval(c.throttleWindow))::interval,
                    \(c.freeAttemptsPerEmail)::integer, \(c.maxEmailDelaySeconds)::integer)
                """
            ).first((Int, UUID?, Bool?, UUID?, String?, String?).self)
        else { throw PGError(.invalidValue, message: "accord_sign_in_begin answered no row") }
        if row.0 > 0 { throw Problem.tooManyRequests(retryAfterSeconds: row.0) }
        let verified = try await verify(password, against: row.5)
        if verified, let confirm, let id = row.1, let isAdmin = row.2, let stored = row.5 {
            try await confirm(Account(id: id, isAdmin: isAdmin, institutionID: row.3, institutionStatus: row.4, passwordHash: stored))
        }
        try await pool.query("SELECT accord_sign_in_end(\(email), \(clientAddress), \(verified))")
        guard verified, let id = row.1, let isAdmin = row.2, let stored = row.5 else { return nil }
        if configuration.passwordHasher.needsRehash(stored) {
            let fresh = try await hash(password)
            try await pool.query("SELECT accord_rehash_password(\(id), \(isAdmin), \(stored), \(fresh))")
        }
        return Account(id: id, isAdmin: isAdmin, institutionID: row.3, institutionStatus: row.4, passwordHash: stored)
    }

    /// Signs in with e-mail and password. Unknown e-mail and wrong password take the same time and
    /// give the same answer; attempts are throttled as `checkPassword` says.
    public func signIn(_ request: SignInRequest, clientAddress: String?) async throws -> SessionGrant {
        var v = Validator()
        v.check(!request.email.isEmpty && request.email.utf8.count <= 254, "/email", "must be an e-mail address")
        v.check(!request.password.isEmpty && request.password.count <= PasswordHasher.maximumLength, "/password", "is required")
        try v.validate()
        let secondFactor = { (account: Account) async throws in
            if account.isAdmin { try await self.checkSecondFactor(of: account.id, request, clientAddress: clientAddress) }
        }
        guard let account = try await checkPassword(request.password, email: request.email, clientAddress: clientAddress, confirm: secondFactor)
        else {
            throw Problem.unauthorized("The e-mail address or the password is wrong.")
        }
        if let status = account.institutionStatus, status == "rejected" || status == "suspended" {
            throw Problem.forbidden("Your institution's membership is \(status); signing in is not possible.")
        }
        if !account.isAdmin, try await pool.query("SELECT accord_account_disabled(\(account.id))").scalar(Bool.self) {
            throw Problem.forbidden("This account is disabled by the network's administrators; signing in is not possible.")
        }
        return try await createSession(accountID: account.id, isAdmin: account.isAdmin, institutionID: account.institutionID)
    }

    /// How many expired sessions each sign-in removes: more than one, so that the table shrinks back
    /// to the live sessions however sign-ins and expiries interleave.
    static let expiredSessionsPurgedPerSignIn: Int32 = 100

    /// Opens a session for an account that just proved who it is.
    func createSession(accountID: UUID, isAdmin: Bool, institutionID: UUID?) async throws -> SessionGrant {
        let token = Secrets.newToken()
        let tokenHash = Data(Secrets.sha256(token.utf8))
        let expiresAt = Date(timeIntervalSinceNow: configuration.sessionLifetime)
        let idle = min(configuration.adminIdleTimeout, configuration.sessionLifetime)
        let idleExpiry = Date(timeIntervalSinceNow: idle)
        let identity = Identity(
            accountID: accountID, institutionID: institutionID, role: nil, isNetworkAdmin: isAdmin, institutionStatus: nil, tokenHash: [])
        let user = try await pool.withTenant(identity) { tx -> User in
            // Each new session removes a few expired ones (anyone's), so the table stays small.
            try await tx.query("SELECT accord_purge_expired_sessions(\(Self.expiredSessionsPurgedPerSignIn))")
            if isAdmin {
                // An administrator's session ends after `adminIdleTimeout` unused (each recorded
                // use moves it on: accord_touch_session), and at `expiresAt` at the latest.
                try await tx.query(
                    """
                    INSERT INTO sessions (token_hash, admin_id, expires_at, idle_timeout, ends_at)
                    VALUES (\(tokenHash), \(accountID), \(idleExpiry), make_interval(secs => \(idle)), \(expiresAt))
                    """)
                return try await UserStore.networkAdmin(accountID, on: tx)
            }
            try await tx.query(
                """
                INSERT INTO sessions (token_hash, user_id, institution_id, expires_at)
                VALUES (\(tokenHash), \(accountID), \(institutionID), \(expiresAt))
                """)
            return try await UserStore.user(accountID, on: tx)
        }
        return SessionGrant(token: token, expiresAt: isAdmin ? idleExpiry : expiresAt, user: user)
    }

    /// The identity behind a bearer token, or nil when the token is unknown, expired, revoked, or
    /// its institution was rejected or suspended.
    public func authenticate(token: String) async throws -> Identity? {
        guard (20...200).contains(token.utf8.count) else { return nil }
        let hash = Secrets.sha256(token.utf8)
        if cache != nil {
            guard let identity = try await resolve(hash)?.identity else { return nil }
            noteUse(hash)
            return identity
        }
        guard
            let row = try await pool.query(
                """
                SELECT account_id, is_admin, institution_id, role, institution_status FROM accord_authenticate(\(Data(hash)))
                """
            ).first((UUID, Bool, UUID?, String, InstitutionStatus?).self)
        else { return nil }
        noteUse(hash)
        return Identity(
            accountID: row.0, institutionID: row.2, role: InstitutionRole(rawValue: row.3), isNetworkAdmin: row.1,
            institutionStatus: row.4, tokenHash: hash)
    }

    /// The identity behind a session's token hash (a socket opened with a ticket names its session
    /// so), or nil when the session does not authenticate.
    public func authenticate(tokenHash: [UInt8]) async throws -> Identity? {
        guard tokenHash.count == 32 else { return nil }
        return try await resolve(tokenHash)?.identity
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

    /// Records, at most once a minute per session and without holding up the request, that a
    /// session was used (`lastUsedAt` in `GET /v1/me/sessions`).
    func noteUse(_ hash: [UInt8]) {
        guard sessionUse.isDue(hash) else { return }
        let pool = self.pool
        let logger = self.logger
        Task {
            do {
                try await pool.query("SELECT accord_touch_session(\(Data(hash)))")
            } catch {
                logger.debug("could not record a session's use", metadata: ["error": "\(error)"])
            }
        }
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
    /// in lower case, absent optional fields left out, as everywhere in the API); nil when the token
    /// does not authenticate. See `resolve`.
    public func meBody(token: String) async throws -> ByteBuffer? {
        guard (20...200).contains(token.utf8.count) else { return nil }
        let hash = Secrets.sha256(token.utf8)
        guard let body = try await resolve(hash)?.me else { return nil }
        noteUse(hash)
        return body
    }

    // MARK: The caller's sessions

    public struct SessionInfo: Codable, Sendable {
        public var id: UUID
        public var createdAt: String
        public var lastUsedAt: String
        /// Whether this is the session of the request that lists them.
        public var current: Bool
    }

    /// The caller's live sessions, the most recently used first.
    public func sessions(of caller: Identity) async throws -> [SessionInfo] {
        try await pool.withTenant(caller) { tx in
            try await tx.query(
                """
                SELECT id, \(Timestamp.seconds("created_at")), \(Timestamp.seconds("last_used_at")), token_hash = \(Data(caller.tokenHash))
                FROM sessions WHERE expires_at > now() ORDER BY last_used_at DESC, created_at DESC LIMIT 500
                """
            ).map { row in
                let (id, created, used, current) = try row.decode((UUID, String, String, Bool).self)
                return SessionInfo(id: id, createdAt: created, lastUsedAt: used, current: current)
            }
        }
    }

    /// Ends one of the caller's sessions (the current one too, if it is named). 404 for a session
    /// that is not the caller's.
    public func endSession(_ id: UUID, caller: Identity) async throws {
        let ended = try await pool.withTenant(caller) { tx in
            try await tx.query("DELETE FROM sessions WHERE id = \(id) AND expires_at > now()").affectedRows
        }
        guard ended == 1 else { throw Problem.notFound("No such session.") }
        identitiesChanged()
    }

    public struct PasswordChange: Codable, Sendable {
        public var currentPassword: String
        public var newPassword: String
    }

    /// Changes the caller's password after checking the current one (throttled as a sign-in), and
    /// ends every other session of theirs.
    public func changePassword(_ change: PasswordChange, caller: Identity, clientAddress: String?) async throws {
        var v = Validator()
        v.check(!change.currentPassword.isEmpty && change.currentPassword.count <= PasswordHasher.maximumLength, "/currentPassword", "is required")
        Self.checkPassword(change.newPassword, field: "/newPassword", into: &v)
        try v.validate()
        let email = try await pool.withTenant(caller) { tx in
            caller.isNetworkAdmin
                ? try await tx.query("SELECT email FROM network_admins WHERE id = \(caller.accountID)").scalar(String.self)
                : try await tx.query("SELECT email FROM users WHERE id = \(caller.accountID)").scalar(String.self)
        }
        guard let account = try await checkPassword(change.currentPassword, email: email, clientAddress: clientAddress),
            account.id == caller.accountID
        else { throw Problem.invalid(field: "/currentPassword", "is not your current password") }
        let fresh = try await hash(change.newPassword)
        try await pool.withTenant(caller) { tx in
            if caller.isNetworkAdmin {
                try await tx.query("UPDATE network_admins SET password_hash = \(fresh) WHERE id = \(caller.accountID)")
            } else {
                try await tx.query("UPDATE users SET password_hash = \(fresh), updated_at = now() WHERE id = \(caller.accountID)")
            }
            try await tx.query("DELETE FROM sessions WHERE token_hash <> \(Data(caller.tokenHash))")
            try await Audit.record(
                "user.password_changed", institutionID: caller.institutionID, actor: caller,
                targetType: caller.isNetworkAdmin ? "network_admin" : "user",
                targetID: caller.accountID.uuidString, on: tx)
        }
        identitiesChanged()
    }
}

/// When each session was last recorded as used, so that a busy session costs one `UPDATE` a minute.
final class SessionUse: Sendable {
    static let interval = Duration.seconds(60)
    /// The most sessions remembered; when full, everything is forgotten (and recorded once more).
    static let maxEntries = 100_000
    private let noted = Mutex([[UInt8]: ContinuousClock.Instant]())

    /// Whether the session should be recorded as used now; if so, notes that it was.
    func isDue(_ hash: [UInt8]) -> Bool {
        let now = ContinuousClock.now
        return noted.withLock { noted in
            if let last = noted[hash], now - last < Self.interval { return false }
            if noted.count >= Self.maxEntries { noted.removeAll(keepingCapacity: true) }
            noted[hash] = now
            return true
        }
    }
}
