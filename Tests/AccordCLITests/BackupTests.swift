import Foundation
import PGStoreTesting
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Backup and restore as docs/operations.md describes them (Deploy/backup/dump and restore, over
/// pg_dump and pg_restore): a dump of a network restores into a fresh database, which then serves.
@Suite("Backup and restore")
struct BackupTests {
    static func script(_ name: String, _ arguments: [String]) async throws -> (Int32, String) {
        let script = TestDatabase.schemaDirectory.deletingLastPathComponent().appending(path: "Deploy/backup/\(name)")
        let outcome = try await ChildProcess.run(script, arguments, timeout: .seconds(300))
        return (outcome.status, outcome.stderr)
    }

    @Test func aDumpRestoresIntoAFreshDatabaseThatServes() async throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "accord-backup-\(UUID().uuidString.lowercased()).dump").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await TestDatabase.with { source in
            let seeded = try await AccordProcess.run(
                ["seed", "demo"], environment: ["ACCORD_MIGRATION_DATABASE_URL": source.ownerURL, "ACCORD_SCRYPT_LOG_N": "10"], timeout: 120)
            try #require(seeded.status == 0, "\(seeded.stderr)")
            let (dumped, log) = try await Self.script("dump", [source.ownerURL, file])
            try #require(dumped == 0, "\(log)")
        }
        try await TestDatabase.with(migrated: false) { fresh in
            let (restored, log) = try await Self.script("restore", [file, fresh.ownerURL])
            try #require(restored == 0, "\(log)")
            let status = try await AccordProcess.run(["migrate", "status"], environment: ["ACCORD_MIGRATION_DATABASE_URL": fresh.ownerURL])
            #expect(status.status == 0 && status.stdout.contains("The database schema is current."))
            let port = try freePort()
            let (server, _, _) = try AccordProcess.start(["serve", "--port", "\(port)"], environment: ["ACCORD_DATABASE_URL": fresh.appURL])
            defer { if server.isRunning { server.terminate() } }
            _ = try await CLITests().poll("http://127.0.0.1:\(port)/readyz", until: 200)
            // The demo network's administrator signs in on the restored copy.
            #expect(try await CLITests().signIn(port: port, email: "admin@accord.demo", password: "Accord-Demo-2026") == 201)
        }
    }
}
