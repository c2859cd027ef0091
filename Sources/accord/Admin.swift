import AccordCore
import AccordCrypto
import AccordServer
import Admin
import ArgumentParser
import Foundation
import Institutions
import PGStore

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Network administration from the command line.",
        subcommands: [CreateNetworkAdmin.self, Audit.self]
    )

    struct CreateNetworkAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-network-admin",
            abstract: "Create a network administrator.",
            discussion: """
                Reads the password from standard input when it is not a terminal (one line); \
                otherwise generates one and prints it once. Runs as the owner role \
                (ACCORD_MIGRATION_DATABASE_URL, else ACCORD_DATABASE_URL).
                """
        )

        @Option(help: "The administrator's e-mail address.")
        var email: String

        @Option(help: "The administrator's name.")
        var name = "Network administrator"

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            var password: String
            var generated = false
            if isatty(STDIN_FILENO) == 0, let line = readLine(strippingNewline: true), !line.isEmpty {
                password = line
            } else {
                password = Secrets.newToken()
                generated = true
            }
            let (email, name) = (self.email, self.name)
            do {
                try OperatorTools.checkNewAccount(email: email, password: password)
                let hash = try DatabaseOptions.passwordHasher().hash(password)
                try await OperatorTools.withOwnerPool(database) { pool in
                    try await pool.withTransaction { tx in
                        if try await tx.query("SELECT accord_email_taken(\(email))").scalar(Bool.self) {
                            throw CommandFailure("an account with the e-mail address \(email) exists already")
                        }
                        try await tx.query("INSERT INTO network_admins (email, name, password_hash) VALUES (\(email), \(name), \(hash))")
                        try await tx.query(
                            """
                            INSERT INTO audit_events (action, target_type, target_id, detail)
                            VALUES ('network_admin.created', 'email', accord_email_key(\(email)), '{"via": "cli"}')
                            """)
                    }
                }
            } catch {
                throw CommandFailure.from(error)
            }
            print("Created network administrator \(email).")
            if generated { print("Password (shown once): \(password)") }
        }
    }
}

extension Admin {
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print audit events as CSV, newest first (what GET /v1/admin/audit-events?format=csv gives).",
            discussion: "Runs as the owner role (ACCORD_MIGRATION_DATABASE_URL, else ACCORD_DATABASE_URL)."
        )

        @Option(help: "Events at or after this RFC 3339 time, such as 2027-01-31T00:00:00Z.") var since: String
        @Option(help: "Events before this RFC 3339 time.") var until: String?
        @Option(help: "An action (institution.approve), or a prefix ending in * (institution.*).") var action: String?
        @Option(help: "An institution's id.") var institution: String?
        @Option(help: "A user's or a network administrator's id.") var actor: String?
        @Option(help: "At most this many events.") var limit = 100_000
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            do {
                guard limit > 0 else { throw CommandFailure("--limit must be 1 or more") }
                let filter = try AuditFilter.parse(institution: institution, action: action, actor: actor, since: since, until: until)
                let limit = self.limit
                let events = try await OperatorTools.withOwnerPool(database) { pool in
                    try await pool.withTransaction { tx in try await AuditLog.events(filter, before: Int.max, limit: limit, on: tx) }
                }
                FileHandle.standardOutput.write(Data(AuditLog.csv(events).utf8))
            } catch let problem as Problem {
                throw CommandFailure(problem.detail ?? problem.title)
            } catch {
                throw CommandFailure.from(error)
            }
        }
    }
}

/// Helpers of the operator commands (admin, import, seed).
enum OperatorTools {
    static let environment = ["ACCORD_MIGRATION_DATABASE_URL", "ACCORD_DATABASE_URL"]

    static func withOwnerPool<T: Sendable>(_ options: DatabaseOptions, _ body: (PGPool) async throws -> T) async throws -> T {
        let url = try options.resolvedURL(environment: environment)
        let pool = PGPool(
            configuration: try PGConfiguration(url: url, maxConnections: 2, statementTimeout: nil), logger: try options.logger("accord"))
        do {
            let result = try await body(pool)
            await pool.close()
            return result
        } catch {
            await pool.close()
            throw error
        }
    }

    static func checkNewAccount(email: String, password: String) throws {
        let parts = email.split(separator: "@")
        guard parts.count == 2, parts[1].contains("."), email.count <= 254 else { throw CommandFailure("'\(email)' is not an e-mail address") }
        if let problem = IdentityService.passwordProblem(password) { throw CommandFailure("the password \(problem)") }
    }
}
