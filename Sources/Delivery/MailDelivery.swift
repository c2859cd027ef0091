import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

/// Sends the mail outbox by SMTP (Schema/0017_outbox_delivery.sql): every `interval`, the mail due
/// now, a batch at a time, each at least once; failures wait and are tried again, and survive a
/// restart since their state is in the database. Several instances share the work without sending
/// the same mail at once.
public final class MailDelivery: Service, Sendable {
    public struct Configuration: Sendable {
        /// How often the outbox is looked at.
        public var interval: Duration = .seconds(5)
        /// Mail taken per transaction.
        public var batch = 20
        /// Attempts before a mail is given up (about a day of backoff).
        public var maxAttempts = 30

        public init() {}
    }

    /// Sent and failed attempts since the service started, for metrics.
    public struct Counts: Sendable {
        public var sent: Int
        public var failures: Int
    }

    let pool: PGPool
    let client: SMTPClient
    let configuration: Configuration
    let logger: Logger
    private let counts = Mutex(Counts(sent: 0, failures: 0))

    public init(pool: PGPool, client: SMTPClient, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "accord.mail")) {
        self.pool = pool
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    public var statistics: Counts { counts.withLock { $0 } }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                while await self.deliverDue() == self.configuration.batch {}
                try? await Task.sleep(for: self.configuration.interval)
            }
        }
    }

    /// One batch: the mail due now, sent one by one in the transaction that holds them. How many
    /// were taken.
    @discardableResult
    public func deliverDue() async -> Int {
        do {
            return try await pool.withTransaction { tx in
                let due = try await tx.query("SELECT id, recipient, subject, body, attempts FROM accord_mail_due(\(configuration.batch)::integer)")
                    .decode((Int64, String, String, String, Int).self)
                for (id, recipient, subject, body, attempts) in due {
                    let mail = Mail(recipient: recipient, subject: subject, body: body, messageID: "outbox-\(id)@accord")
                    do {
                        try await client.send(mail)
                        try await tx.query("SELECT accord_mail_sent(\(id))")
                        counts.withLock { $0.sent += 1 }
                    } catch {
                        let permanent = (error as? SMTPError)?.isPermanent ?? false
                        let text = (error as? SMTPError)?.description ?? "\(error)"
                        try await tx.query("SELECT accord_mail_failed(\(id), \(text), \(permanent), \(configuration.maxAttempts)::integer)")
                        counts.withLock { $0.failures += 1 }
                        logger.warning(
                            "mail not sent",
                            metadata: ["outbox_id": "\(id)", "attempt": "\(attempts + 1)", "permanent": "\(permanent)", "error": "\(text)"])
                    }
                }
                return due.count
            }
        } catch {
            logger.warning("the mail outbox could not be read", metadata: ["error": "\(String(reflecting: error))"])
            return 0
        }
    }
}
