import AccordCore
import AccordCrypto
import Foundation
import PGStore

// A forgotten password, replaced through a single-use link (Schema/0014_password_resets.sql).
extension IdentityService {
    public struct PasswordResetRequest: Codable, Sendable {
        public var email: String
    }

    public struct NewPassword: Codable, Sendable {
        public var password: String
    }

    /// How long a reset link may be followed.
    static let passwordResetLifetime: TimeInterval = 3600

    /// Mails a reset link to the account with this address, if there is one; the answer is the
    /// same either way (the caller learns nothing about which addresses have accounts).
    public func requestPasswordReset(_ request: PasswordResetRequest) async throws {
        var v = Validator()
        v.check(Formats.isEmail(request.email), "/email", "must be an e-mail address")
        try v.validate()
        let token = Secrets.newToken()
        let link = ClientLink.page("/reset-password/" + token, base: configuration.publicBaseURL)
        let body =
            "Someone (we hope you) asked to replace the password of your Accord account. Open this link within an hour to choose a new one:\n\n"
            + "\(link)\n\nIf it was not you, ignore this message: your password stays as it is.\n"
        try await pool.query(
            """
            SELECT accord_request_password_reset(\(request.email), \(Data(Secrets.sha256(token.utf8))),
                   \(Date(timeIntervalSinceNow: Self.passwordResetLifetime)), 'Replace your Accord password', \(body))
            """)
    }

    /// Follows a reset link: sets the new password and ends every session of the account. 404 when
    /// the link is unknown, used or expired.
    public func resetPassword(token: String, _ new: NewPassword) async throws {
        var v = Validator()
        Self.checkPassword(new.password, field: "/password", into: &v)
        try v.validate()
        guard (20...200).contains(token.utf8.count) else { throw Self.unknownReset }
        let hash = try await hash(new.password)
        guard try await pool.query("SELECT accord_use_password_reset(\(Data(Secrets.sha256(token.utf8))), \(hash))").scalar(Bool.self) else {
            throw Self.unknownReset
        }
        identitiesChanged()
    }

    static let unknownReset = Problem.notFound("This reset link does not exist, was used, or has expired; ask for a new one.")
}
