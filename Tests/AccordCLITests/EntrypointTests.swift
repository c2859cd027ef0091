import Foundation
import PGStoreTesting
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The image's start-up logic (Deploy/docker/entrypoint.sh), run as the plain script it is, with
/// the built `accord` in place of /app/accord.
@Suite("The image's entrypoint")
struct EntrypointTests {
    static var script: URL { TestDatabase.schemaDirectory.deletingLastPathComponent().appending(path: "Deploy/docker/entrypoint.sh") }

    /// The environment the script runs in: no database URL but those the test gives.
    static func environment(_ environment: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for name in ["ACCORD_DATABASE_URL", "ACCORD_MIGRATION_DATABASE_URL", "ACCORD_DATABASE_URL_FILE", "ACCORD_MIGRATION_DATABASE_URL_FILE"] {
            env[name] = nil
        }
        env["ACCORD_BIN"] = AccordProcess.executable.path
        env["ACCORD_SCHEMA_DIR"] = TestDatabase.schemaDirectory.path
        for (key, value) in environment { env[key] = value }
        return env
    }

    static func start(_ arguments: [String], environment: [String: String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = script
        process.arguments = arguments
        process.environment = Self.environment(environment)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, err)
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, String) {
        let outcome = try await ChildProcess.run(script, arguments, environment: Self.environment(environment), timeout: .seconds(60))
        return (outcome.status, outcome.stderr)
    }

    static func secretFile(_ text: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appending(path: "accord-secret-\(UUID().uuidString.lowercased())")
        try (text + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// Migrations as their own command, then the server, both reading their database URLs from
    /// secret files; the probe the image's HEALTHCHECK uses answers once the server is ready.
    @Test func migrateThenServeFromSecretFilesAndProbe() async throws {
        try await TestDatabase.with(migrated: false) { database in
            let port = try freePort()
            let (migrated, log) = try await Self.run(
                ["migrate"], environment: ["ACCORD_MIGRATION_DATABASE_URL_FILE": try Self.secretFile(database.ownerURL)])
            #expect(migrated == 0, "\(log)")
            let (server, _) = try Self.start(
                [],
                environment: [
                    "ACCORD_DATABASE_URL_FILE": try Self.secretFile(database.appURL), "ACCORD_PORT": "\(port)", "ACCORD_SCRYPT_LOG_N": "10",
                ])
            defer { if server.isRunning { server.terminate() } }
            let deadline = Date().addingTimeInterval(30)
            var ready = false
            while !ready, Date() < deadline {
                ready = try await Self.run(["probe", "/readyz"], environment: ["ACCORD_PORT": "\(port)"]).0 == 0
                if !ready { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(ready, "the probe never saw /readyz answer 200")
            #expect(try await Self.run(["probe", "/no-such-path"], environment: ["ACCORD_PORT": "\(port)"]).0 != 0)
            kill(server.processIdentifier, SIGTERM)
            while server.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.terminationStatus == 0)
            #expect(try await Self.run(["probe"], environment: ["ACCORD_PORT": "\(port)"]).0 != 0, "nothing listens any more")
        }
    }

    /// What is missing or contradictory ends the start with one line and status 64.
    @Test func badSettingsEndWithOneLine() async throws {
        let (missing, log) = try await Self.run(["serve"])
        #expect(missing == 64 && log.hasPrefix("error: ACCORD_DATABASE_URL (or ACCORD_DATABASE_URL_FILE) is not set"))
        let file = try Self.secretFile("postgresql://x@127.0.0.1:1/x")
        let (both, bothLog) = try await Self.run(
            ["serve"], environment: ["ACCORD_DATABASE_URL": "postgresql://y@h/y", "ACCORD_DATABASE_URL_FILE": file])
        #expect(both == 64 && bothLog.contains("both ACCORD_DATABASE_URL and ACCORD_DATABASE_URL_FILE"))
        let (unreadable, unreadableLog) = try await Self.run(["migrate"], environment: ["ACCORD_MIGRATION_DATABASE_URL_FILE": "/nonexistent/secret"])
        #expect(unreadable == 64 && unreadableLog.contains("cannot be read"))
        let (unknown, unknownLog) = try await Self.run(["dance"])
        #expect(unknown == 64 && unknownLog.contains("unknown command 'dance'"))
        #expect(log.split(separator: "\n").count == 1 && bothLog.split(separator: "\n").count == 1)
    }
}
