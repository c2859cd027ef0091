import Foundation
import Logging
import PGStore

/// Compares the database's applied migrations with the program's Schema/ files, for start-up and
/// `/readyz`.
public struct SchemaCheck: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// The database answers and every migration is applied.
        case current(migrations: Int)
        /// The database answers but migrations are pending or changed: run `accord migrate`.
        case behind(String)
        /// The database cannot be reached right now (down, restarting, network).
        case unreachable(String)
        /// The database refuses us for good: wrong password, unknown database or role.
        case misconfigured(String)
    }

    let migrator: Migrator
    let pool: PGPool
    let timeout: Duration

    public init(migrations: [Migration], pool: PGPool, timeout: Duration = .seconds(3)) {
        self.migrator = Migrator(migrations: migrations)
        self.pool = pool
        self.timeout = timeout
    }

    public func check() async -> Outcome {
        do {
            let status = try await withDeadline(timeout) { [migrator, pool] in
                try await pool.withConnection { try await migrator.status(on: $0) }
            }
            if let changed = status.changed.first {
                return .behind("migration \(changed.name) differs from the one applied to the database")
            }
            if !status.pending.isEmpty {
                let names = status.pending.prefix(3).map(\.name).joined(separator: ", ")
                let more = status.pending.count > 3 ? ", …" : ""
                return .behind("the database schema is behind: \(status.pending.count) migration(s) pending (\(names)\(more)); run `accord migrate`")
            }
            return .current(migrations: status.applied.count)
        } catch let error as PGError {
            switch error.kind {
            case .connection
            where [PGError.Code.invalidPassword, PGError.Code.invalidAuthorization, PGError.Code.invalidCatalogName].contains(error.sqlState ?? ""):
                return .misconfigured(error.operatorMessage)
            case .invalidConfiguration:
                return .misconfigured(error.operatorMessage)
            case .server:
                return .misconfigured("cannot read the migration records: \(error.operatorMessage)")
            default:
                return .unreachable(error.operatorMessage)
            }
        } catch is DeadlineExceeded {
            return .unreachable("the database did not answer within \(timeout)")
        } catch {
            return .unreachable("\(error)")
        }
    }
}

struct DeadlineExceeded: Error {}

/// Runs `body`, cancelling it after `timeout`.
func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
