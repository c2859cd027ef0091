import AccordServer
import ArgumentParser
import Foundation
import PGStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the database migrations of Schema/, or show their status.",
        discussion: """
            Runs as the schema owner (ACCORD_MIGRATION_DATABASE_URL, else ACCORD_DATABASE_URL). \
            Each migration runs in its own transaction and is recorded in schema_migrations with \
            its SHA-256; an applied file that was changed since stops the run. An advisory lock \
            makes concurrent runs safe.
            """,
        subcommands: [Apply.self, Status.self],
        defaultSubcommand: Apply.self
    )

    static let environment = ["ACCORD_MIGRATION_DATABASE_URL", "ACCORD_DATABASE_URL"]

    static func withMigrator<T: Sendable>(
        _ options: DatabaseOptions,
        _ body: @Sendable (Migrator, PGConnection) async throws -> T
    ) async throws -> T {
        do {
            let logger = try options.logger("accord.migrate")
            let url = try options.resolvedURL(environment: environment)
            let migrations = try Migration.load(from: try SchemaLocator.locate(explicit: options.schemaDirectory))
            let pool = PGPool(configuration: try PGConfiguration(url: url, maxConnections: 1, statementTimeout: nil), logger: logger)
            defer { Task { await pool.close() } }
            return try await pool.withConnection { try await body(Migrator(migrations: migrations, logger: logger), $0) }
        } catch {
            throw CommandFailure.from(error)
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply pending migrations (the default).")

        @Flag(name: .customLong("dry-run"), help: "List the migrations that would be applied, and apply nothing.")
        var dryRun = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let dryRun = self.dryRun
            let applied = try await Migrate.withMigrator(database) { migrator, connection in
                try await migrator.migrate(on: connection, dryRun: dryRun)
            }
            if applied.isEmpty {
                print("The database schema is current; nothing to apply.")
            } else {
                for migration in applied { print((dryRun ? "would apply " : "applied ") + migration.name) }
                print(dryRun ? "\(applied.count) migration(s) pending." : "\(applied.count) migration(s) applied.")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show applied, pending and changed migrations.")

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let status = try await Migrate.withMigrator(database) { migrator, connection in
                try await migrator.status(on: connection)
            }
            let formatter = ISO8601DateFormatter()
            let changed = Set(status.changed.map(\.version))
            for record in status.applied {
                let mark = changed.contains(record.version) ? "CHANGED" : "applied"
                print("\(mark)  \(record.name)  \(formatter.string(from: record.appliedAt))")
            }
            for migration in status.pending { print("pending  \(migration.name)") }
            for record in status.unknown { print("unknown  \(record.name) (not in this program's Schema/)") }
            if status.isCurrent && status.unknown.isEmpty {
                print("The database schema is current.")
            } else {
                throw ExitCode(1)
            }
        }
    }
}
