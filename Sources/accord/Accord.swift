import AccordCore
import AccordCrypto
import AccordServer
import ArgumentParser
import Foundation
import Logging
import PGStore

/// `accord`: the Accord server and its operations.
@main
struct Accord: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accord",
        abstract: "Accord: the backend of a partner network for international partnerships in higher education.",
        discussion: """
            Settings come from flags or from ACCORD_* environment variables; with the private \
            development database, `eval "$(Deploy/local/env)"` exports them.
            """,
        subcommands: [Serve.self, Migrate.self, Import.self, Seed.self, Admin.self, DirectoryCommand.self]
    )

    static func main() async {
        // Logs go to standard error (one JSON object per line with ACCORD_LOG_FORMAT=json);
        // command output to standard output.
        switch ProcessInfo.processInfo.environment["ACCORD_LOG_FORMAT"] {
        case "json": LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        case nil, "", "text": LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        case let other?:
            FileHandle.standardError.write(Data("error: ACCORD_LOG_FORMAT must be text or json, not '\(other.prefix(40))'\n".utf8))
            Foundation.exit(64)
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Options shared by the commands that reach the database.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "libpq connection URL, e.g. postgresql://user:pass@host:5432/accord?sslmode=require.",
            discussion: "Defaults to the command's environment variable (see the command's help)."))
    var url: String?

    @Option(
        name: .customLong("schema-dir"),
        help: "Folder of the numbered SQL migrations (default: ACCORD_SCHEMA_DIR, ./Schema, or beside the executable).")
    var schemaDirectory: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: ACCORD_LOG_LEVEL or info).")
    var logLevel: String?

    func resolvedURL(environment names: [String]) throws -> String {
        if let url { return url }
        for name in names {
            if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty { return value }
        }
        throw CommandFailure("no database URL: pass --database-url or set \(names.joined(separator: " or "))")
    }

    /// The password hasher of this deployment: scrypt at ACCORD_SCRYPT_LOG_N (10…20, default 15),
    /// the same for `serve`, `admin` and `seed`, so every stored hash costs what the server's
    /// stand-in for an unknown account costs.
    static func passwordHasher() throws -> PasswordHasher {
        guard let text = ProcessInfo.processInfo.environment["ACCORD_SCRYPT_LOG_N"] else { return PasswordHasher() }
        guard let logN = Int(text), (10...20).contains(logN) else { throw CommandFailure("ACCORD_SCRYPT_LOG_N must be 10…20") }
        return PasswordHasher(logN: logN)
    }

    func logger(_ label: String) throws -> Logger {
        var logger = Logger(label: label)
        let name = logLevel ?? ProcessInfo.processInfo.environment["ACCORD_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw CommandFailure("unknown log level '\(name)'")
        }
        logger.logLevel = level
        return logger
    }
}

/// An error printed as one line, without a stack trace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// Rephrases store errors for an operator: the real message, no SQL.
    static func from(_ error: any Error) -> CommandFailure {
        switch error {
        case let failure as CommandFailure: return failure
        case let error as PGError: return CommandFailure(error.operatorMessage)
        case let error as StartupError: return CommandFailure(error.description)
        case let problem as Problem: return CommandFailure(problem.detail ?? problem.title)
        default: return CommandFailure("\(error)")
        }
    }
}
