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
                --index, a search with q or with filters is shown as the server runs it with its \
                directory index: the index (loaded here once, a minute or two for a million \
                institutions) finds the matches, counts the facets and ranks them, and the items \
                statement reads only the entries that can be on the page. With \
                --explain, each statement is prefixed with EXPLAIN (ANALYZE, BUFFERS). With --output \
                DIR, the N-th QUERY's script goes to DIR/N.sql and its EXPLAIN script to \
                DIR/N.explain.sql (N from 0). Run a script as accord_app (psql "$ACCORD_DATABASE_URL" \
                -f …) to see what the server sees. Looks the user up as the owner role \
                (ACCORD_MIGRATION_DATABASE_URL, else ACCORD_DATABASE_URL).
                """
        )

        @Option(help: "The e-mail address of the user the search runs as.")
        var email: String

        @Flag(help: "Prefix each statement with EXPLAIN (ANALYZE, BUFFERS).")
        var explain = false

        @Flag(help: "Show searches with q or filters as the server runs them with its in-memory directory index.")
        var index = false

        @Option(help: "Write each query's script and EXPLAIN script to files in this directory.")
        var output: String?

        @Argument(help: "The query string of GET /v1/directory (one or more).")
        var queries: [String]

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if queries.isEmpty { throw ValidationError("give at least one QUERY") }
            if queries.count > 1, output == nil { throw ValidationError("several QUERY arguments need --output") }
        }

        func run() async throws {
            let (email, texts, useIndex) = (email, queries, index)
            var scripts: [(plain: String, explained: String)] = []
            do {
                scripts = try await OperatorTools.withOwnerPool(database) { pool in
                    guard
                        let user = try await pool.withTransaction(
                            settings: [("accord.is_admin", "true")],
                            { tx in
                                try await tx.query(
                                    "SELECT id, institution_id, role FROM users WHERE accord_email_key(email) = accord_email_key(\(email))"
                                )
                                .first((UUID, UUID, String).self)
                            })
                    else { throw CommandFailure("no user with the e-mail address \(email)") }
                    let identity = Identity(
                        accountID: user.0, institutionID: user.1, role: InstitutionRole(rawValue: user.2),
                        isNetworkAdmin: false, institutionStatus: nil, tokenHash: [])
                    let lists = try await ReferenceData(pool: pool).lists()
                    let statistics = try await DirectoryService.TagStatistics.load { try await pool.query($0) }
                    let snapshot = useIndex ? try await DirectoryIndex.Snapshot.load(pool: pool) : nil
                    var scripts: [(String, String)] = []
                    for text in texts {
                        let pairs = (URLComponents(string: "?" + text)?.queryItems ?? []).map { ($0.name, $0.value ?? "") }
                        let query = try DirectoryQuery.parse(pairs, reference: lists)
                        var forms: DirectoryService.TextForms?
                        var prelude: [String] = []
                        if let q = query.text {
                            forms = try await DirectoryService.TextForms.compute(q, domain: query.domain) { queries in
                                // The server computes the text forms first, in their own round trip: so does the script.
                                prelude = queries.map { $0.inlinedForTooling + ";" }
                                return try await pool.pipeline(queries)
                            }
                        }
                        let statements: [PGQuery]
                        var found: DirectoryIndex.Result?
                        if let snapshot {
                            if let forms {
                                found = snapshot.evaluate(
                                    query, text: forms, countryRegions: lists.countryRegions, maxIDs: DirectoryService.maxIndexedPage)
                            } else if query.hasFilters {
                                found = snapshot.evaluate(query, countryRegions: lists.countryRegions, maxIDs: DirectoryService.maxIndexedPage)
                                // The server reads the directory's version first, in its own round trip.
                                if found != nil { prelude = ["SELECT version FROM directory_version;"] }
                            }
                        }
                        if let found {
                            statements = [
                                try DirectoryService.itemsStatement(for: query, text: forms, found: found, statistics: statistics, lists: lists)
                            ]
                        } else {
                            statements = try DirectoryService.statements(for: query, text: forms, statistics: statistics, lists: lists)
                        }
                        let settings = PGQuery.setConfig(identity.settings + DirectoryService.settings).inlinedForTooling
                        func script(explain: Bool) -> String {
                            let prefix = explain ? "EXPLAIN (ANALYZE, BUFFERS) " : ""
                            return
                                (["BEGIN READ ONLY;", settings + ";"] + (explain ? [] : prelude)
                                + statements.map { prefix + $0.inlinedForTooling + ";" } + ["COMMIT;"]).joined(separator: "\n")
                        }
                        scripts.append((script(explain: false), script(explain: true)))
                    }
                    return scripts
                }
                if let output {
                    let directory = URL(fileURLWithPath: output, isDirectory: true)
                    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                    for (n, script) in scripts.enumerated() {
                        try (script.plain + "\n").write(to: directory.appendingPathComponent("\(n).sql"), atomically: true, encoding: .utf8)
                        try (script.explained + "\n").write(
                            to: directory.appendingPathComponent("\(n).explain.sql"), atomically: true, encoding: .utf8)
                    }
                    return
                }
            } catch {
                throw CommandFailure.from(error)
            }
            print(explain ? scripts[0].explained : scripts[0].plain)
        }
    }
}
