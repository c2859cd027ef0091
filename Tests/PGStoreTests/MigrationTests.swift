import Foundation
import PGStore
import PGStoreTesting
import Testing

@Suite("Migrations")
struct MigrationTests {
    func temporaryFolder(_ files: [String: String]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("accord-migrations-\(UUID().uuidString.lowercased())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, sql) in files { try sql.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return folder
    }

    @Test func appliesInOrderRecordsChecksumsAndRefusesAChangedFile() async throws {
        try await TestDatabase.with(migrated: false) { database in
            let folder = try temporaryFolder([
                "0001_first.sql": "CREATE TABLE first (id int);",
                "0002_second.sql": "INSERT INTO first VALUES (1); CREATE TABLE second (id int);",
            ])
            defer { try? FileManager.default.removeItem(at: folder) }
            let pool = try database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await pool.close() } }
            let migrator = Migrator(migrations: try Migration.load(from: folder))

            let planned = try await pool.withConnection { try await migrator.migrate(on: $0, dryRun: true) }
            #expect(planned.map(\.name) == ["0001_first.sql", "0002_second.sql"])
            #expect(try await pool.query("SELECT to_regclass('first') IS NULL").scalar(Bool.self), "a dry run applies nothing")

            let applied = try await pool.withConnection { try await migrator.migrate(on: $0) }
            #expect(applied.count == 2)
            let again = try await pool.withConnection { try await migrator.migrate(on: $0) }
            #expect(again.isEmpty)
            let status = try await pool.withConnection { try await migrator.status(on: $0) }
            #expect(status.isCurrent)
            #expect(status.applied.map(\.checksum) == migrator.migrations.map(\.checksum))

            // Edit an applied file: the migrator refuses before applying anything new.
            try "CREATE TABLE first (id bigint);".write(to: folder.appendingPathComponent("0001_first.sql"), atomically: true, encoding: .utf8)
            try "CREATE TABLE third (id int);".write(to: folder.appendingPathComponent("0003_third.sql"), atomically: true, encoding: .utf8)
            let edited = Migrator(migrations: try Migration.load(from: folder))
            do {
                try await pool.withConnection { try await edited.migrate(on: $0) }
                Issue.record("a changed migration must be refused")
            } catch let error as PGError {
                #expect(error.message.contains("0001_first.sql was changed"))
            }
            #expect(try await pool.query("SELECT to_regclass('third') IS NULL").scalar(Bool.self))
            let editedStatus = try await pool.withConnection { try await edited.status(on: $0) }
            #expect(editedStatus.changed.map(\.name) == ["0001_first.sql"])
            #expect(editedStatus.pending.map(\.name) == ["0003_third.sql"])
        }
    }

    @Test func aFailingMigrationLeavesNoTrace() async throws {
        try await TestDatabase.with(migrated: false) { database in
            let folder = try temporaryFolder([
                "0001_ok.sql": "CREATE TABLE ok (id int);",
                "0002_broken.sql": "CREATE TABLE half (id int); SELECT * FROM missing_table;",
            ])
            defer { try? FileManager.default.removeItem(at: folder) }
            let pool = try database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await pool.close() } }
            let migrator = Migrator(migrations: try Migration.load(from: folder))
            do {
                try await pool.withConnection { try await migrator.migrate(on: $0) }
                Issue.record("the broken migration must fail")
            } catch let error as PGError {
                #expect(error.message.contains("0002_broken.sql"))
                #expect(error.sqlState == PGError.Code.undefinedTable)
            }
            #expect(try await pool.query("SELECT to_regclass('ok') IS NOT NULL").scalar(Bool.self))
            #expect(try await pool.query("SELECT to_regclass('half') IS NULL").scalar(Bool.self))
            #expect(try await pool.query("SELECT count(*) FROM schema_migrations").scalar(Int.self) == 1)
        }
    }

    @Test func concurrentMigratorsApplyEachFileOnce() async throws {
        try await TestDatabase.with(migrated: false) { database in
            let migrations = try Migration.load(from: TestDatabase.schemaDirectory)
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        // No statement timeout, as `accord migrate` runs: the others wait on the
                        // lock for as long as the first migrates.
                        let pool = PGPool(
                            configuration: try PGConfiguration(
                                url: database.ownerURL, maxConnections: 1, connectTimeoutSeconds: 30, statementTimeout: nil))
                        defer { Task { await pool.close() } }
                        return try await pool.withConnection { try await Migrator(migrations: migrations).migrate(on: $0).count }
                    }
                }
                var counts: [Int] = []
                for try await count in group { counts.append(count) }
                return counts
            }
            #expect(results.sorted() == [0, 0, migrations.count])
        }
    }

    @Test func badFileNamesAreRejected() throws {
        let folder = try temporaryFolder(["1_short.sql": "SELECT 1;"])
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: PGError.self) { try Migration.load(from: folder) }
        let clash = try temporaryFolder(["0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"])
        defer { try? FileManager.default.removeItem(at: clash) }
        #expect(throws: PGError.self) { try Migration.load(from: clash) }
    }
}

@Suite("Row-level security as the application role")
struct RowLevelSecurityTests {
    @Test func tenantContextDecidesWhatIsVisible() async throws {
        try await TestDatabase.with { database in
            let owner = try database.pool(asOwner: true, maxConnections: 1)
            let app = try database.pool(maxConnections: 2)
            defer {
                Task {
                    await owner.close()
                    await app.close()
                }
            }

            // The application role owns nothing and cannot bypass row-level security.
            let role = try await app.query(
                """
                SELECT rolsuper, rolbypassrls, (SELECT count(*) FROM pg_class WHERE relowner = r.oid)
                FROM pg_roles r WHERE rolname = current_user
                """
            ).first((Bool, Bool, Int).self)
            #expect(role?.0 == false)
            #expect(role?.1 == false)
            #expect(role?.2 == 0)

            let (a, b) = (UUID(), UUID())
            try await owner.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
                for (id, schac) in [(a, "a.example.edu"), (b, "b.example.edu")] {
                    try await tx.query(
                        """
                        INSERT INTO institutions (id, schac, names, country, type, status)
                        VALUES (\(id), \(schac), \(PGJSONB([["lang": "en", "value": schac]])), 'BE', 'university', 'active')
                        """)
                    try await tx.query("INSERT INTO users (institution_id, email, name, role) VALUES (\(id), \("intl@" + schac), 'X', 'admin')")
                }
            }

            // No context: nothing.
            #expect(try await app.query("SELECT count(*) FROM institutions").scalar(Int.self) == 0)
            #expect(try await app.query("SELECT count(*) FROM users").scalar(Int.self) == 0)

            // Context A: only A.
            let seen = try await app.withTransaction(settings: [("accord.institution_id", a.uuidString.lowercased())]) { tx in
                (
                    try await tx.query("SELECT id FROM institutions").decode(UUID.self),
                    try await tx.query("SELECT institution_id FROM users").decode(UUID.self)
                )
            }
            #expect(seen.0 == [a])
            #expect(seen.1 == [a])

            // A cannot write B's rows, nor move a row to B.
            try await app.withTransaction(settings: [("accord.institution_id", a.uuidString.lowercased())]) { tx in
                let updated = try await tx.query("UPDATE institutions SET city = 'X' WHERE id = \(b)").affectedRows
                #expect(updated == 0)
            }
            do {
                try await app.withTransaction(settings: [("accord.institution_id", a.uuidString.lowercased())]) { tx in
                    try await tx.query("INSERT INTO users (institution_id, email, name, role) VALUES (\(b), 'x@b.example.edu', 'X', 'staff')")
                }
                Issue.record("writing another tenant's row must fail")
            } catch let error as PGError {
                #expect(error.sqlState == PGError.Code.insufficientPrivilege)
            }
            // The context ended with the transaction.
            #expect(try await app.query("SELECT count(*) FROM institutions").scalar(Int.self) == 0)
            // Reference data is readable network-wide.
            #expect(try await app.query("SELECT count(*) FROM countries").scalar(Int.self) == 249)
        }
    }
}
