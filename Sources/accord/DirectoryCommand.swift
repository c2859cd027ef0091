import AccordCore
import ArgumentParser
import Directory
import Foundation
import Institutions
import PGStore

struct DirectoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "directory",
        abstract: "Tools for the partner directory.",
        subcommands: [SQL.self]
    )

    struct SQL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the SQL the server runs for a directory search, as a psql or pgbench script.",
            discussion: """
                QUERY is the query string of GET /v1/directory (for example 'q=bologna&country=IT'). The \
                script is the request's read-only transaction as the given user: BEGIN, the tenant \
                and search settings, the text forms of q, the items and facets statements with their values written in, COMMIT. With \
                --explain, each statement is prefixed with EXPLAIN (ANALYZE, BUFFERS). Run it as \
                accord_app (psql "$ACCORD_DATABASE_URL" -f …) to see what the server sees. Looks the \
                user up as the owner role (ACCORD_MIGRATION_DATABASE_URL, else ACCORD_DATABASE_URL).
                """
        )

        @Option(help: "The e-mail address of the user the search runs as.")
        var email: String

        @Flag(help: "Prefix each statement with EXPLAIN (ANALYZE, BUFFERS).")
        var explain = false

        @Argument(help: "The query string of GET /v1/directory.")
        var query: String

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let (email, text, explain) = (email, query, self.explain)
            let script: String
            do {
                script = try await OperatorTools.withOwnerPool(database) { pool in
                    guard let user = try await pool.withTransaction(settings: [("accord.is_admin", "true")], { tx in
                        try await tx.query("SELECT id, institution_id, role FROM users WHERE lower(email) = lower(\(email))")
                            .first((UUID, UUID, String).self)
                    }) else { throw CommandFailure("no user with the e-mail address \(email)") }
                    let identity = Identity(accountID: user.0, institutionID: user.1, role: InstitutionRole(rawValue: user.2),
                                            isNetworkAdmin: false, institutionStatus: nil, tokenHash: [])
                    let pairs = (URLComponents(string: "?" + text)?.queryItems ?? []).map { ($0.name, $0.value ?? "") }
                    let lists = try await ReferenceData(pool: pool).lists()
                    let query = try DirectoryQuery.parse(pairs, reference: lists)
                    var text: DirectoryService.TextForms?
                    var prelude: [String] = []
                    if let q = query.text {
                        text = try await DirectoryService.TextForms.compute(q, domain: query.domain) { queries in
                            // The server computes the text forms first, in their own round trip: so does the script.
                            prelude = queries.map { $0.inlinedForTooling + ";" }
                            return try await pool.pipeline(queries)
                        }
                    }
                    let prefix = explain ? "EXPLAIN (ANALYZE, BUFFERS) " : ""
                    let statistics = try await DirectoryService.TagStatistics.load { try await pool.query($0) }
                    let statements = try DirectoryService.statements(for: query, text: text, statistics: statistics, lists: lists).map { prefix + $0.inlinedForTooling + ";" }
                    let settings = PGQuery.setConfig(identity.settings + DirectoryService.settings).inlinedForTooling
                    return (["BEGIN READ ONLY;", settings + ";"] + (explain ? [] : prelude) + statements + ["COMMIT;"])
                        .joined(separator: "\n")
                }
            } catch {
                throw CommandFailure.from(error)
            }
            print(script)
        }
    }
}
