import Logging
import PGStore
import ServiceLifecycle

/// Expires the partnerships whose agreement ended (`accord_expire_partnerships`), at start-up and
/// then every `interval`, on every instance (each partnership expires once, whoever runs first).
public struct PartnershipClock: Service {
    let pool: PGPool
    let interval: Duration
    let logger: Logger

    public init(pool: PGPool, interval: Duration = .seconds(3600), logger: Logger = Logger(label: "accord.partnerships")) {
        self.pool = pool
        self.interval = interval
        self.logger = logger
    }

    /// Expires what is due now; how many partnerships it expired.
    @discardableResult
    public func tick() async throws -> Int {
        try await pool.query("SELECT accord_expire_partnerships()").scalar(Int.self)
    }

    public func run() async throws {
        // Ends quietly on graceful shutdown (the sleep is cancelled).
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let expired = try await tick()
                    if expired > 0 { logger.info("partnerships expired", metadata: ["count": "\(expired)"]) }
                } catch {
                    logger.warning("partnerships not expired; the next tick retries", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
