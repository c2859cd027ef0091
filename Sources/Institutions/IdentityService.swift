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
    /// How long an e-mail verification link works.
    public var emailVerificationLifetime: TimeInterval
    /// Sign-in attempts for one e-mail address from one client address in `throttleWindow`; then
    /// that pair waits for the window to end.
    public var attemptsPerEmailAndAddress: Int
    /// Attempts for one e-mail address from anywhere in a day before each further one waits 2^n
    /// seconds after the last (except from addresses the account signed in from before).
    public var freeAttemptsPerEmail: Int
    /// The longest such wait, in seconds.
    public var maxEmailDelaySeconds: Int
    /// Attempts for e-mail addresses without an account from one client address in
    /// `throttleWindow`; then that address waits (except for accounts that signed in from it).
    public var unknownEmailAttemptsPerAddress: Int
    public var throttleWindow: TimeInterval
    /// Registrations from one client address in `registrationWindow`.
    public var registrationsPerAddress: Int
    public var registrationWindow: TimeInterval
    public var passwordHasher: PasswordHasher
    /// The public address of the web front end, for links in mail (`…/invitations/{token}`).
    public var publicBaseURL: String
    /// How long a network administrator's session lives unused (it never outlives
    /// `sessionLifetime`).
    public var adminIdleTimeout: TimeInterval = 8 * 3600

    public init(
        sessionLifetime: TimeInterval = 12 * 3600,
        invitationLifetime: TimeInterval = 7 * 24 * 3600,
        emailVerificationLifetime: TimeInterval = 48 * 3600,
        attemptsPerEmailAndAddress: Int = 5,
        freeAttemptsPerEmail: Int = 10,
        maxEmailDelaySeconds: Int = 15 * 60,
        unknownEmailAttemptsPerAddress: Int = 30,
        throttleWindow: TimeInterval = 15 * 60,
        registrationsPerAddress: Int = 10,
        registrationWindow: TimeInterval = 3600,
        passwordHasher: PasswordHasher = PasswordHasher(),
        publicBaseURL: String = "http://127.0.0.1:8080"
    ) {
        self.sessionLifetime = sessionLifetime
        self.invitationLifetime = invitationLifetime
        self.emailVerificationLifetime = emailVerificationLifetime
        self.attemptsPerEmailAndAddress = attemptsPerEmailAndAddress
        self.freeAttemptsPerEmail = freeAttemptsPerEmail
        self.maxEmailDelaySeconds = maxEmailDelaySeconds
        self.unknownEmailAttemptsPerAddress = unknownEmailAttemptsPerAddress
        self.throttleWindow = throttleWindow
        self.registrationsPerAddress = registrationsPerAddress
        self.registrationWindow = registrationWindow
        self.passwordHasher = passwordHasher
        self.publicBaseURL = publicBaseURL
    }
}

/// Registration, sign-in, sessions and passwords.
public struct IdentityService: Sendable {
    public let pool: PGPool
    public let configuration: IdentityConfiguration
    let reference: ReferenceData
    let logger: Logger
    /// Resolved sessions in memory; nil: every request asks the database.
    public let cache: IdentityCache?
    /// When each session was last noted as used (see `noteUse`).
    let sessionUse = SessionUse()

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

    /// Checks a password against a stored hash; without one (no such account) takes the same time
    /// and answers false.
    func verify(_ password: String, against stored: String?) async throws -> Bool {
        let hasher = configuration.passwordHasher
        return try await NIOThreadPool.singleton.runIfActive {
            // No account, or one whose password is still to be chosen ('!', a new administrator):
            // the same time as a real verification.
            guard let stored, stored.hasPrefix("$scrypt$") else {
                hasher.verifyNothing(password)
                return false
            }
            return hasher.verify(password, against: stored)
        }
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
