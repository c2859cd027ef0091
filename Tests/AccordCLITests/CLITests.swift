import Foundation
import PGStore
import PGStoreTesting
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Runs the built `accord` executable.
struct AccordProcess {
    static var executable: URL {
        // The test bundle sits beside the products of the same build.
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = bundle.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = folder.appendingPathComponent("accord")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/accord")
    }

    typealias Outcome = ChildProcess.Outcome

    /// The environment it runs in: only the database URLs the test gives.
    static func environment(_ environment: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        // Only what the test gives: no database URL from the surrounding environment.
        env["ACCORD_DATABASE_URL"] = nil
        env["ACCORD_MIGRATION_DATABASE_URL"] = nil
        env["ACCORD_SCHEMA_DIR"] = TestDatabase.schemaDirectory.path
        for (key, value) in environment { env[key] = value }
        return env
    }

    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = Self.environment(environment)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 30) async throws -> Outcome {
        try await ChildProcess.run(executable, arguments, environment: Self.environment(environment), timeout: .seconds(timeout))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw TestFailure("cannot bind") }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

@Suite("The accord command line")
struct CLITests {
    @Test func migrateAppliesReportsAndIsIdempotent() async throws {
        try await TestDatabase.with(migrated: false) { database in
            let env = ["ACCORD_MIGRATION_DATABASE_URL": TestDatabase.patient(database.ownerURL)]
            let pending = try await AccordProcess.run(["migrate", "status"], environment: env)
            #expect(pending.status == 1)
            #expect(pending.stdout.contains("pending  0001_institutions_and_users.sql"))

            let dry = try await AccordProcess.run(["migrate", "--dry-run"], environment: env)
            #expect(dry.status == 0)
            #expect(dry.stdout.contains("would apply 0001_institutions_and_users.sql"))

            let applied = try await AccordProcess.run(["migrate"], environment: env)
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(applied.stdout.contains("applied 0001_institutions_and_users.sql"))

            let again = try await AccordProcess.run(["migrate"], environment: env)
            #expect(again.status == 0)
            #expect(again.stdout.contains("nothing to apply"))

            let status = try await AccordProcess.run(["migrate", "status"], environment: env)
            #expect(status.status == 0)
            #expect(status.stdout.contains("The database schema is current."))
        }
    }

    @Test func migrateRefusesAChangedFile() async throws {
        try await TestDatabase.with(migrated: false) { database in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("accord-schema-\(UUID().uuidString.lowercased())")
            try FileManager.default.copyItem(at: TestDatabase.schemaDirectory, to: folder)
            defer { try? FileManager.default.removeItem(at: folder) }
            let env = ["ACCORD_MIGRATION_DATABASE_URL": TestDatabase.patient(database.ownerURL)]
            let first = try await AccordProcess.run(["migrate", "--schema-dir", folder.path], environment: env)
            #expect(first.status == 0, "\(first.stderr)")
            let file = folder.appendingPathComponent("0003_institution_country.sql")
            try (try String(contentsOf: file, encoding: .utf8) + "\n-- edited\n").write(to: file, atomically: true, encoding: .utf8)
            let refused = try await AccordProcess.run(["migrate", "--schema-dir", folder.path], environment: env)
            #expect(refused.status != 0)
            #expect(refused.stderrLines.count == 1)
            #expect(refused.stderr.contains("0003_institution_country.sql was changed after it was applied"))
        }
    }

    @Test func malformedURLEndsMigrateAndServeWithOneLine() async throws {
        for command in [["migrate"], ["serve", "--port", "0"]] {
            let outcome = try await AccordProcess.run(command + ["--database-url", "not a url"], timeout: 20)
            #expect(outcome.status != 0)
            #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("Error: the database URL is malformed"), "\(outcome.stderr)")
        }
    }

    @Test func badServeSettingsEndServeWithOneLine() async throws {
        for (name, value) in [("ACCORD_IDENTITY_CACHE_ENTRIES", "many"), ("ACCORD_IDENTITY_CACHE_ENTRIES", "-1"), ("ACCORD_SCRYPT_LOG_N", "40")] {
            let outcome = try await AccordProcess.run(
                ["serve", "--port", "0", "--database-url", "postgresql://nobody@127.0.0.1:1/accord"], environment: [name: value], timeout: 20)
            #expect(outcome.status != 0)
            #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("Error: \(name) must be"), "\(outcome.stderr)")
        }
    }

    /// An unreachable database ends `migrate`; `serve` starts anyway (see
    /// serveStartsWhileTheDatabaseIsDown).
    @Test func unreachableDatabaseEndsMigrateWithOneLine() async throws {
        let outcome = try await AccordProcess.run(["migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/accord"], timeout: 20)
        #expect(outcome.status != 0)
        #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("cannot connect to postgresql://nobody@127.0.0.1:1/accord: Connection refused"))
    }

    @Test func wrongPasswordEndsMigrateAndServeWithOneLine() async throws {
        let owner = try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL")
        let wrong = TestDatabase.patient(try PGConfiguration.url(owner, replacingDatabase: "accord") + " password='wrong'")
        for command in [["migrate"], ["serve", "--port", "0"]] {
            let outcome = try await AccordProcess.run(command + ["--database-url", wrong], timeout: 60)
            #expect(outcome.status != 0)
            let errors = outcome.stderrLines.filter { $0.hasPrefix("Error: ") }
            #expect(errors.count == 1)
            #expect(errors.first?.contains("password authentication failed") == true, "\(outcome.stderr)")
            #expect(!outcome.stderr.contains("wrong'"))
        }
    }

    @Test func operatorCommands() async throws {
        try await TestDatabase.with { database in
            let env = ["ACCORD_MIGRATION_DATABASE_URL": TestDatabase.patient(database.ownerURL)]
            let generated = try await AccordProcess.run(["admin", "create-network-admin", "--email", "ops@network.test"], environment: env)
            #expect(generated.status == 0, "\(generated.stderr)")
            #expect(generated.stdout.contains("Password (shown once): "))
            let again = try await AccordProcess.run(["admin", "create-network-admin", "--email", "OPS@network.test"], environment: env)
            #expect(again.status != 0)
            #expect(again.stderr.contains("exists already"))

            let file = FileManager.default.temporaryDirectory.appendingPathComponent("u-\(UUID().uuidString.lowercased()).json")
            defer { try? FileManager.default.removeItem(at: file) }
            try
                #"[{"name": "Universiteit Gent", "alpha_two_code": "BE", "country": "Belgium", "state-province": null, "domains": ["ugent.be"], "web_pages": ["https://www.ugent.be/"]}]"#
                .write(to: file, atomically: true, encoding: .utf8)
            let imported = try await AccordProcess.run(["import", "universities", file.path], environment: env)
            #expect(imported.status == 0, "\(imported.stderr)")
            #expect(imported.stdout.contains("Imported 1 records: 1 created, 0 updated, 0 unchanged, 0 skipped."))
            let missing = try await AccordProcess.run(["import", "universities", "/nonexistent.json"], environment: env)
            #expect(missing.status != 0)
            #expect(missing.stderrLines.count == 1)

            let seeded = try await AccordProcess.run(["seed", "demo", "--if-empty"], environment: env)
            #expect(seeded.stdout.contains("no demo seeded"), "the database has an admin and an entry already")

            // The audit log as CSV: the administrator's creation is there, filtered by action.
            let audit = try await AccordProcess.run(
                ["admin", "audit", "--since", "2000-01-01T00:00:00Z", "--action", "network_admin.*"], environment: env)
            #expect(audit.status == 0, "\(audit.stderr)")
            let lines = audit.stdout.split(separator: "\r\n")
            #expect(lines.first?.hasPrefix("id,occurredAt,action,") == true)
            #expect(lines.count == 2 && lines[1].contains(",network_admin.created,"), "\(audit.stdout)")
            let none = try await AccordProcess.run(
                ["admin", "audit", "--since", "2000-01-01T00:00:00Z", "--action", "institution.*"], environment: env)
            #expect(none.stdout.split(separator: "\r\n").count == 1)
            let bad = try await AccordProcess.run(["admin", "audit", "--since", "yesterday"], environment: env)
            #expect(bad.status != 0)
            #expect(bad.stderrLines.filter { $0.hasPrefix("Error: ") }.first?.contains("since") == true)
        }
    }

    @Test func benchSeedAndDirectorySQL() async throws {
        try await TestDatabase.with { database in
            let env = ["ACCORD_MIGRATION_DATABASE_URL": TestDatabase.patient(database.ownerURL)]
            let demo = try await AccordProcess.run(["seed", "demo"], environment: env)
            #expect(demo.status == 0, "\(demo.stderr)")
            let bench = try await AccordProcess.run(["seed", "bench", "--institutions", "1200"], environment: env, timeout: 120)
            #expect(bench.status == 0, "\(bench.stderr)")
            #expect(bench.stdout.contains("Generated 1200 institutions"), "\(bench.stdout)")
            #expect(bench.stdout.contains("1200/1200"), "progress, also without a terminal")
            let owner = try database.pool(asOwner: true, maxConnections: 1)
            let (generated, listed, schacs) = try await owner.query(
                """
                SELECT count(*), count(*) FILTER (WHERE d.id IS NOT NULL), count(DISTINCT i.schac)
                FROM institutions i LEFT JOIN directory_entries d ON d.id = i.id WHERE i.schac LIKE '%.bench.example'
                """
            ).first((Int, Int, Int).self)!
            #expect(generated == 1200 && schacs == 1200)
            #expect(listed > 1100 && listed < 1200, "about 1.5 % are pending or suspended, and stay out of the directory")
            let again = try await AccordProcess.run(["seed", "bench", "--institutions", "10"], environment: env, timeout: 120)
            #expect(again.stdout.contains("Generated 10 institutions"), "running again adds more")
            await owner.close()

            let zero = try await AccordProcess.run(["seed", "bench", "--institutions", "0"], environment: env)
            #expect(zero.status != 0 && zero.stderr.contains("--institutions must be between 1 and 5000000"))

            let sql = try await AccordProcess.run(
                ["directory", "sql", "--email", "intl@unibo.it", "q=universita&country=IT&language=en&minCefr=B2"], environment: env)
            #expect(sql.status == 0, "\(sql.stderr)")
            #expect(sql.stdout.hasPrefix("BEGIN READ ONLY;") && sql.stdout.contains("set_config") && sql.stdout.hasSuffix("COMMIT;\n"))
            #expect(sql.stdout.contains(#"'{"l:en:B2"}'::text[]"#), "values are written in")
            let bad = try await AccordProcess.run(["directory", "sql", "--email", "intl@unibo.it", "country=XX"], environment: env)
            #expect(bad.status != 0 && bad.stderrLines.count == 1 && bad.stderr.contains("'XX'"))
            let nobody = try await AccordProcess.run(["directory", "sql", "--email", "nobody@nowhere.test", "q=x"], environment: env)
            #expect(nobody.stderr.contains("no user with the e-mail address"))

            // With the index, as the server runs it: matches and facets from memory, the items
            // statement over the entries found; several queries at once, into files.
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("accord-sql-\(UUID().uuidString.lowercased())")
            defer { try? FileManager.default.removeItem(at: output) }
            let indexed = try await AccordProcess.run(
                [
                    "directory", "sql", "--index", "--email", "intl@unibo.it", "--output", output.path, "q=universita&country=IT", "country=IT",
                    "limit=5",
                ],
                environment: env, timeout: 120)
            #expect(indexed.status == 0, "\(indexed.stderr)")
            let first = try String(contentsOf: output.appendingPathComponent("0.sql"), encoding: .utf8)
            #expect(first.contains("unnest(") && !first.contains("WITH m AS"), "the index's items statement, no facets statement")
            let second = try String(contentsOf: output.appendingPathComponent("1.sql"), encoding: .utf8)
            #expect(second.contains("unnest(") && !second.contains("WITH m AS"), "filters only: from the index too")
            let third = try String(contentsOf: output.appendingPathComponent("2.sql"), encoding: .utf8)
            #expect(third.contains("directory_tag_counts") && !third.contains("unnest("), "no q and no filter: the SQL search")
            let explained = try String(contentsOf: output.appendingPathComponent("0.explain.sql"), encoding: .utf8)
            #expect(explained.contains("EXPLAIN (ANALYZE, BUFFERS) SELECT"))
            let several = try await AccordProcess.run(["directory", "sql", "--email", "intl@unibo.it", "q=a", "q=b"], environment: env)
            #expect(several.status != 0 && several.stderr.contains("several QUERY arguments need --output"))
        }
    }

    @Test func missingURLIsNamed() async throws {
        let outcome = try await AccordProcess.run(["migrate"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("no database URL: pass --database-url or set ACCORD_MIGRATION_DATABASE_URL"))
    }

    @Test func serveRefusesASchemaThatIsBehind() async throws {
        try await TestDatabase.with(migrated: false) { database in
            // A connection that timed out would read as unreachable, and serve would start.
            let outcome = try await AccordProcess.run(["serve", "--port", "0", "--database-url", TestDatabase.patient(database.appURL)], timeout: 60)
            #expect(outcome.status != 0)
            let errors = outcome.stderrLines.filter { $0.hasPrefix("Error: ") }
            #expect(errors.count == 1)
            #expect(errors.first?.contains("run `accord migrate`") == true, "\(outcome.stderr)")
        }
    }

    @Test func serveAnswersAndShutsDownGracefullyOnSIGTERM() async throws {
        try await TestDatabase.with { database in
            let port = try freePort()
            let (process, _, err) = try AccordProcess.start(
                ["serve", "--port", String(port)],
                environment: [
                    "ACCORD_DATABASE_URL": TestDatabase.patient(database.appURL), "ACCORD_ADMIN_EMAIL": "root@network.test",
                    "ACCORD_ADMIN_PASSWORD": "Bootstrap-Passphrase-9", "ACCORD_SCRYPT_LOG_N": "10",
                ])
            defer { if process.isRunning { process.terminate() } }
            let ready = try await poll("http://127.0.0.1:\(port)/readyz", until: 200)
            #expect(ready.contains("\"status\":\"ready\""))
            // The first network administrator came from the environment.
            #expect(try await signIn(port: port, email: "root@network.test", password: "Bootstrap-Passphrase-9") == 201)
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!process.isRunning)
            #expect(process.terminationStatus == 0)
            let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(log.contains("path=/readyz"))
            #expect(log.contains("request_id="))
        }
    }

    @Test func serveStartsWhileTheDatabaseIsDown() async throws {
        let port = try freePort()
        let (process, _, _) = try AccordProcess.start(
            ["serve", "--port", String(port)], environment: ["ACCORD_DATABASE_URL": "postgresql://accord_app@127.0.0.1:1/accord"])
        defer { process.terminate() }
        let body = try await poll("http://127.0.0.1:\(port)/readyz", until: 503)
        #expect(body.contains("urn:accord:problem:unavailable"))
        #expect(!body.contains("127.0.0.1:1"), "the reason stays in the log")
        _ = try await poll("http://127.0.0.1:\(port)/healthz", until: 200)
    }

    /// The status of a sign-in on the server at `port`.
    func signIn(port: Int, email: String, password: String) async throws -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/v1/sessions")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: ["email": email, "password": password])
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// Requests `url` until it answers `status` (the server may still be starting).
    func poll(_ url: String, until status: Int, timeout: Double = 20) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = "no answer"
        while Date() < deadline {
            if let (data, response) = try? await URLSession.shared.data(from: URL(string: url)!),
                let http = response as? HTTPURLResponse
            {
                last = "\(http.statusCode)"
                if http.statusCode == status { return String(decoding: data, as: UTF8.self) }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("\(url) did not answer \(status) within \(timeout) s (last: \(last))")
    }
}
