import AccordSeeding
import ArgumentParser
import Foundation
import PGStore

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill the database with generated data.",
        subcommands: [Demo.self, Bench.self]
    )

    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a small demo network and print how to sign in.",
            discussion:
                "A network admin, five admitted institutions with full profiles and users, and one pending registration. Runs as the owner role."
        )

        @Flag(name: .customLong("if-empty"), help: "Do nothing when the database already has institutions or administrators.")
        var ifEmpty = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let ifEmpty = self.ifEmpty
            do {
                let lines: [String] = try await OperatorTools.withOwnerPool(database) { pool in
                    let demo = DemoNetwork(pool: pool, hasher: try DatabaseOptions.passwordHasher())
                    if ifEmpty, !(try await demo.databaseIsEmpty()) { return ["The database has data already; no demo seeded."] }
                    return try await demo.seed()
                }
                lines.forEach { print($0) }
            } catch {
                throw CommandFailure.from(error)
            }
        }
    }

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate realistic institution profiles for benchmarks.",
            discussion: """
                Adds N active institutions with full profiles (names, cities, ISCED-F areas, teaching \
                languages, activities and services) drawn from the real vocabularies and from the real \
                universities in the database: run `accord import universities` first so that countries \
                and city names follow the real list. Reproducible for a given --seed; running it again \
                adds more. SCHAC codes end in .bench.example. Runs as the owner role.
                """
        )

        @Option(name: .customLong("institutions"), help: "How many institutions to add (1 to 5000000).")
        var institutions: Int

        @Option(help: "The random seed.")
        var seed: UInt64 = 2026

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard (1...5_000_000).contains(institutions) else {
                throw ValidationError("--institutions must be between 1 and 5000000")
            }
        }

        func run() async throws {
            let (count, seed) = (institutions, self.seed)
            let started = ContinuousClock.now
            do {
                let progress = Progress(onlyOnTerminal: false)
                let created = try await OperatorTools.withOwnerPool(database) { pool in
                    try await BenchNetwork(pool: pool).seed(count: count, seed: seed, progress: progress.report)
                }
                progress.finish()
                let seconds = (ContinuousClock.now - started).components.seconds
                print("Generated \(created) institutions in \(seconds) s.")
            } catch {
                throw CommandFailure.from(error)
            }
        }
    }
}
