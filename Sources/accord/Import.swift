import AccordSeeding
import ArgumentParser
import Foundation
import PGStore

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import reference data into the directory.",
        subcommands: [Universities.self]
    )

    struct Universities: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import the world university list as active, unclaimed directory entries.",
            discussion: """
                FILE has the format of world_universities_and_domains.json (Hipo's university \
                domains list). Idempotent by domain: running it again updates what changed. Entries \
                claimed by a registration are left alone. Runs as the owner role \
                (ACCORD_MIGRATION_DATABASE_URL, else ACCORD_DATABASE_URL).
                """
        )

        @Argument(help: "The JSON file.")
        var file: String

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let summary: UniversityImport.Summary
            do {
                let records = try UniversityImport.read(URL(fileURLWithPath: file))
                let progress = Progress(onlyOnTerminal: true)
                summary = try await OperatorTools.withOwnerPool(database) { pool in
                    try await UniversityImport(pool: pool).run(records, progress: progress.report)
                }
                progress.finish()
            } catch {
                throw CommandFailure.from(error)
            }
            print(
                "Imported \(summary.total) records: \(summary.created) created, \(summary.updated) updated, \(summary.unchanged) unchanged, \(summary.skipped.values.reduce(0, +)) skipped."
            )
            for (reason, count) in summary.skipped.sorted(by: { $0.key < $1.key }) {
                print("  skipped \(count): \(reason)")
            }
        }
    }
}

/// Progress of a long command: a bar that redraws itself on a terminal; elsewhere (CI, logs) a plain
/// line at every tenth, unless `onlyOnTerminal`.
struct Progress: Sendable {
    let terminal = isatty(STDOUT_FILENO) == 1
    let onlyOnTerminal: Bool

    func report(_ done: Int, _ total: Int) {
        if terminal {
            let width = 40
            let filled = total == 0 ? width : width * done / total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardOutput.write(Data("\r[\(bar)] \(done)/\(total)".utf8))
        } else if !onlyOnTerminal, total > 0 {
            let step = max(1, total / 10)
            if done == total || done / step != (done - 1) / step {
                FileHandle.standardOutput.write(Data("\(done)/\(total)\n".utf8))
            }
        }
    }

    func finish() {
        if terminal { print("") }
    }
}
