import AccordCore
import AccordCrypto
import Foundation
import HTTPTypes
import PGStore

// A second factor for network administrators: TOTP (RFC 6238) with single-use recovery codes
// (Schema/0016_network_administration.sql). Once enabled, signing in needs a code besides the
// password; a wrong code counts as a failed attempt on the sign-in throttle.
extension IdentityService {
    /// The start of an enrolment: the secret, to type into an authenticator app or read from the
    /// `otpauth://` address (as a QR code). Shown once.
    public struct TOTPEnrolment: Codable, Sendable {
        public var secret: String
        public var uri: String
    }

    /// A code from the authenticator app (or, to turn the factor off, a recovery code).
    public struct TOTPCode: Codable, Sendable {
        public var code: String
    }

    /// The recovery codes of a new second factor: each works once, in place of a code. Shown once.
    public struct RecoveryCodes: Codable, Sendable {
        public var recoveryCodes: [String]
    }

    /// How many recovery codes an enrolment gives.
    static let recoveryCodeCount = 10

    static let adminsOnly = Problem.forbidden("A second factor is for network administrators.")

    /// Starts (or restarts, while unconfirmed) the caller's enrolment; 409 once a factor is enabled.
    public func beginTOTP(caller: Identity) async throws -> TOTPEnrolment {
        guard caller.isNetworkAdmin else { throw Self.adminsOnly }
        let secret = Secrets.randomBytes(20)
        let email = try await pool.withTenant(caller) { tx -> String in
            guard try await tx.query("SELECT accord_totp_begin(\(Data(secret)))").scalar(Bool.self) else {
                throw Problem.conflict("A second factor is enabled already; turn it off first to enrol another.")
            }
            return try await tx.query("SELECT email FROM network_admins WHERE id = \(caller.accountID)").scalar(String.self)
        }
        return TOTPEnrolment(secret: Base32.encode(secret), uri: TOTP.provisioningURI(secret: secret, account: email, issuer: "Accord"))
    }

    /// Confirms the enrolment with a first code and enables the factor; the recovery codes.
    public func confirmTOTP(_ body: TOTPCode, caller: Identity) async throws -> RecoveryCodes {
        guard caller.isNetworkAdmin else { throw Self.adminsOnly }
        let state = try await totpState(caller.accountID)
        guard let secret = state.secret, !state.enabled else {
            throw Problem.conflict(state.enabled ? "The second factor is enabled already." : "Start an enrolment first (POST /v1/me/totp).")
        }
        guard let step = TOTP.matchingStep(body.code, secret: secret, at: Date()),
            try await pool.query("SELECT accord_totp_use_step(\(caller.accountID), \(step))").scalar(Bool.self)
        else { throw Problem.invalid(field: "/code", "is not the current code of the authenticator app") }
        let codes = (0..<Self.recoveryCodeCount).map { _ in Self.newRecoveryCode() }
        let hashes = codes.map { Secrets.hex(Self.recoveryCodeHash($0)) }
        let enabled = try await pool.withTenant(caller) { tx in
            try await tx.query("SELECT accord_totp_enable(ARRAY(SELECT decode(h, 'hex') FROM unnest(\(hashes)::text[]) h))").scalar(Bool.self)
        }
        guard enabled else {
            throw Problem.conflict("The second factor is enabled already.")
        }
        identitiesChanged()
        return RecoveryCodes(recoveryCodes: codes)
    }

    /// Turns the caller's second factor off, proven by a current code or a recovery code.
    public func disableTOTP(_ body: TOTPCode, caller: Identity) async throws {
        guard caller.isNetworkAdmin else { throw Self.adminsOnly }
        let state = try await totpState(caller.accountID)
        guard state.enabled, let secret = state.secret else { throw Problem.notFound("No second factor is enabled.") }
        guard try await proves(body.code, secret: secret, admin: caller.accountID) else {
            throw Problem.invalid(field: "/code", "is neither the current code nor an unused recovery code")
        }
        try await pool.withTenant(caller) { tx in try await tx.query("SELECT accord_totp_disable()") }
        identitiesChanged()
    }

    /// At sign-in, after the right password of an administrator: nothing when they have no second
    /// factor; otherwise their code or a recovery code is required (401 naming `/totp`). Without
    /// one, the attempt stays counted on the throttle, as a wrong password's does.
    func checkSecondFactor(of admin: UUID, _ request: SignInRequest, clientAddress: String?) async throws {
        let state = try await totpState(admin)
        guard state.enabled, let secret = state.secret else { return }
        guard let code = request.totp ?? request.recoveryCode else {
            throw Problem(
                type: Problem.type("second-factor-required"), status: .unauthorized, title: "Second factor required",
                detail: "This account has a second factor: send the code of its authenticator app as totp (or a recovery code as recoveryCode).",
                errors: [.init(field: "/totp", message: "is required")])
        }
        if try await proves(code, secret: secret, admin: admin) { return }
        try await pool.query("SELECT accord_second_factor_failed(\(request.email), \(clientAddress))")
        throw Problem(
            type: Problem.type("second-factor-wrong"), status: .unauthorized, title: "Wrong second factor",
            detail: "The code is not the current one of the authenticator app, nor an unused recovery code.",
            errors: [.init(field: request.totp != nil ? "/totp" : "/recoveryCode", message: "is wrong")])
    }

    /// Whether `code` is a current TOTP code not used before, or an unused recovery code (which it
    /// then uses up).
    private func proves(_ code: String, secret: [UInt8], admin: UUID) async throws -> Bool {
        let trimmed = code.filter { !$0.isWhitespace }
        if let step = TOTP.matchingStep(trimmed, secret: secret, at: Date()) {
            return try await pool.query("SELECT accord_totp_use_step(\(admin), \(step))").scalar(Bool.self)
        }
        guard (8...32).contains(trimmed.utf8.count) else { return false }
        return try await pool.query("SELECT accord_use_recovery_code(\(admin), \(Data(Self.recoveryCodeHash(trimmed))))").scalar(Bool.self)
    }

    private func totpState(_ admin: UUID) async throws -> (secret: [UInt8]?, enabled: Bool) {
        guard let row = try await pool.query("SELECT secret, enabled FROM accord_totp_state(\(admin))").first((Data?, Bool?).self) else {
            return (nil, false)
        }
        return (row.0.map { Array($0) }, row.1 ?? false)
    }

    /// A recovery code: ten characters of base32 (50 bits), as `xxxxx-xxxxx`.
    static func newRecoveryCode() -> String {
        let text = Base32.encode(Secrets.randomBytes(7)).lowercased().prefix(10)
        return text.prefix(5) + "-" + text.suffix(5)
    }

    /// What is stored of a recovery code: the SHA-256 of its letters and digits, in lower case
    /// (so that it may be typed with or without the dash, in either case).
    static func recoveryCodeHash(_ code: String) -> [UInt8] {
        Secrets.sha256(code.lowercased().filter { $0.isLetter || $0.isNumber }.utf8)
    }
}
