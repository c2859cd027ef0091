import ArgumentParser
import Foundation
import Institutions
import PGStore

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill the database with generated data.",
        subcommands: [Demo.self]
    )

    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a small demo network and print how to sign in.",
            discussion: "A network admin, five admitted institutions with full profiles and users, and one pending registration. Runs as the owner role."
        )

        @Flag(name: .customLong("if-empty"), help: "Do nothing when the database already has institutions or administrators.")
        var ifEmpty = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let ifEmpty = self.ifEmpty
            do {
                let lines: [String] = try await OperatorTools.withOwnerPool(database) { pool in
                    let demo = DemoNetwork(pool: pool)
                    if ifEmpty, !(try await demo.databaseIsEmpty()) { return ["The database has data already; no demo seeded."] }
                    return try await demo.seed()
                }
                lines.forEach { print($0) }
            } catch {
                throw CommandFailure.from(error)
            }
        }
    }
}
