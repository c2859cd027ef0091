import Foundation
import Logging
import PGStore

/// A throwaway PostgreSQL database for one test suite: created from the private test server's
/// owner connection, migrated with the real Schema/ files, reached as the owner or as the
/// application role, and dropped afterwards.
///
/// Needs `ACCORD_MIGRATION_DATABASE_URL` (owner) and `ACCORD_DATABASE_URL` (application role), as
/// exported by `eval "$(Deploy/local/env)"`; `make test` sets them.
public struct TestDatabase: Sendable {
    /// The database's name (`accord_test_…`).
    public let name: String
    /// Connection string as `accord_owner`.
    public let ownerURL: String
    /// Connection string as `accord_app` (row-level security applies).
    public let appURL: String

    /// The repository's Schema/ folder.
    public static let schemaDirectory: URL = {
        if let path = ProcessInfo.processInfo.environment["ACCORD_SCHEMA_DIR"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Schema")
    }()

    public static func environmentURL(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw PGError(
                .invalidConfiguration, message: "\(name) is not set: run the tests with `make test`, or `eval \"$(Deploy/local/env)\"` first")
        }
        return value
    }

    /// Creates a fresh database; with `migrated`, applies every migration of Schema/.
    public static func create(migrated: Bool = true, logger: Logger = Logger(label: "accord.test")) async throws -> TestDatabase {
        let ownerBase = try environmentURL("ACCORD_MIGRATION_DATABASE_URL")
        let appBase = try environmentURL("ACCORD_DATABASE_URL")
        let name = "accord_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let admin = PGPool(configuration: try Self.adminConfiguration(ownerBase))
        try await admin.withConnection { try await $0.execute(unsafeSQL: "CREATE DATABASE \(PGQuery.quoteIdentifier(name))") }
        await admin.close()
        let database = TestDatabase(
            name: name,
            ownerURL: try PGConfiguration.url(ownerBase, replacingDatabase: name),
            appURL: try PGConfiguration.url(appBase, replacingDatabase: name)
        )
        if migrated {
            let migrations = try Migration.load(from: schemaDirectory)
            // No statement timeout, as `accord migrate` runs.
            let owner = PGPool(
                configuration: try PGConfiguration(url: database.ownerURL, maxConnections: 1, connectTimeoutSeconds: 30, statementTimeout: nil))
            try await owner.withConnection { try await Migrator(migrations: migrations, logger: logger).migrate(on: $0) }
            await owner.close()
        }
        return database
    }

    /// `url` with a connect timeout of 30 s unless it names one, for what a test starts with a URL
    /// (an `accord` process): a whole test run on two cores starves PostgreSQL's new backends for
    /// seconds, past libpq's default of 5 s.
    public static func patient(_ url: String) -> String {
        url.contains("connect_timeout") ? url : url + " connect_timeout='30'"
    }

    /// For CREATE and DROP DATABASE, which wait for a checkpoint: a statement timeout of 300 s
    /// instead of the usual 30 s.
    static func adminConfiguration(_ url: String) throws -> PGConfiguration {
        var configuration = try PGConfiguration(url: url, maxConnections: 1, connectTimeoutSeconds: 30)
        configuration.statementTimeout = .seconds(300)
        return configuration
    }

    /// Drops the database (waiting briefly for closed sessions to end).
    public func drop() async throws {
        let admin = PGPool(configuration: try Self.adminConfiguration(try Self.environmentURL("ACCORD_MIGRATION_DATABASE_URL")))
        try await admin.withConnection { try await $0.execute(unsafeSQL: "DROP DATABASE IF EXISTS \(PGQuery.quoteIdentifier(name))") }
        await admin.close()
    }

    /// Creates a database, runs `body`, and drops it whatever `body` did.
    public static func with<Result: Sendable>(
        migrated: Bool = true,
        _ body: (TestDatabase) async throws -> Result
    ) async throws -> Result {
        let database = try await create(migrated: migrated)
        do {
            let result = try await body(database)
            try await database.drop()
            return result
        } catch {
            try? await database.drop()
            throw error
        }
    }

    /// A pool on this database as the owner (tests that need DDL) or as the application role.
    /// A pool on this database. Connecting may take 30 s: a whole test run on two cores starves
    /// PostgreSQL's new backends for seconds.
    public func pool(asOwner: Bool = false, maxConnections: Int = 4, waitTimeout: Duration = .seconds(10)) throws -> PGPool {
        PGPool(
            configuration: try PGConfiguration(
                url: asOwner ? ownerURL : appURL, maxConnections: maxConnections, connectionWaitTimeout: waitTimeout, connectTimeoutSeconds: 30))
    }
}
