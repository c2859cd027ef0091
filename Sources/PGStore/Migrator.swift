import COpenSSL
import Foundation
import Logging

/// One numbered SQL migration file, `NNNN_description.sql`.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String
    /// SHA-256 of the file's bytes, recorded when applied.
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = Self.sha256Hex(Array(sql.utf8))
    }

    /// SHA-256 as lower-case hex, through the system OpenSSL that libpq's TLS uses too.
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        precondition(ok == 1, "EVP_Digest failed")
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads every `NNNN_*.sql` file of `directory`, in version order. Two files with one version,
    /// or a name that does not fit the pattern, are errors.
    public static func load(from directory: URL) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw PGError(.invalidConfiguration, message: "cannot read the migrations folder \(directory.path)")
        }
        var migrations: [Migration] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            let digits = name.prefix(while: \.isNumber)
            guard digits.count == 4, let version = Int(digits), name.dropFirst(4).first == "_" else {
                throw PGError(.invalidConfiguration, message: "migration file \(name) must be named NNNN_description.sql")
            }
            if let clash = migrations.first(where: { $0.version == version }) {
                throw PGError(.invalidConfiguration, message: "migrations \(clash.name) and \(name) share version \(version)")
            }
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            guard let sql = String(data: data, encoding: .utf8) else {
                throw PGError(.invalidConfiguration, message: "migration \(name) is not UTF-8")
            }
            migrations.append(Migration(version: version, name: name, sql: sql))
        }
        return migrations.sorted { $0.version < $1.version }
    }
}

/// A migration as recorded in `schema_migrations`.
public struct AppliedMigration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let checksum: String
    public let appliedAt: Date
}

/// How the database's schema compares with the migration files.
public struct MigrationStatus: Sendable {
    public var applied: [AppliedMigration]
    /// Files not applied yet, in order.
    public var pending: [Migration]
    /// Applied migrations whose file changed since.
    public var changed: [Migration]
    /// Applied versions with no file (the database is newer than this program).
    public var unknown: [AppliedMigration]

    /// Every file applied, none changed.
    public var isCurrent: Bool { pending.isEmpty && changed.isEmpty }
}

/// Applies migrations in order, each in its own transaction, recording each with its checksum.
///
/// A session-level advisory lock makes concurrent runs (two instances starting at once) safe: the
/// second waits, then finds nothing left to do. A file changed after it was applied stops the run
/// before anything is applied.
public struct Migrator: Sendable {
    public let migrations: [Migration]
    let logger: Logger

    /// The advisory lock key: "accord-m" as a number.
    static let lockKey: Int64 = 0x6163_636F_7264_2D6D

    public init(migrations: [Migration], logger: Logger = Logger(label: "accord.migrate")) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Reads the recorded migrations; an absent `schema_migrations` table means none. Read-only, so
    /// it also works as the application role.
    public func status(on connection: PGConnection) async throws -> MigrationStatus {
        let exists = try await connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL").scalar(Bool.self)
        var applied: [AppliedMigration] = []
        if exists {
            let rows = try await connection.query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
            applied = try rows.decode((Int, String, String, Date).self).map {
                AppliedMigration(version: $0.0, name: $0.1, checksum: $0.2, appliedAt: $0.3)
            }
        }
        let appliedByVersion = Dictionary(uniqueKeysWithValues: applied.map { ($0.version, $0) })
        let known = Set(migrations.map(\.version))
        return MigrationStatus(
            applied: applied,
            pending: migrations.filter { appliedByVersion[$0.version] == nil },
            changed: migrations.filter { file in appliedByVersion[file.version].map { $0.checksum != file.checksum } ?? false },
            unknown: applied.filter { !known.contains($0.version) }
        )
    }

    /// Applies every pending migration (or, with `dryRun`, only reports them). Returns the
    /// migrations applied (or that would be).
    @discardableResult
    public func migrate(on connection: PGConnection, dryRun: Bool = false) async throws -> [Migration] {
        try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))")
        do {
            let result = try await migrateLocked(on: connection, dryRun: dryRun)
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
            return result
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
            throw error
        }
    }

    private func migrateLocked(on connection: PGConnection, dryRun: Bool) async throws -> [Migration] {
        if !dryRun {
            try await connection.execute(
                unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(),
                        execution_ms integer NOT NULL
                    )
                    """)
        }
        let status = try await status(on: connection)
        if let changed = status.changed.first {
            let recorded = status.applied.first { $0.version == changed.version }?.checksum ?? "?"
            throw PGError(
                .invalidConfiguration,
                message:
                    "migration \(changed.name) was changed after it was applied (recorded checksum \(recorded.prefix(12))…, file \(changed.checksum.prefix(12))…); add a new migration instead of editing an applied one"
            )
        }
        if let unknown = status.unknown.first {
            throw PGError(
                .invalidConfiguration,
                message: "the database has migration \(unknown.name), which this program does not know; it is older than the database schema")
        }
        if dryRun { return status.pending }
        for migration in status.pending {
            let started = ContinuousClock.now
            do {
                try await connection.withTransaction { connection in
                    try await connection.execute(unsafeSQL: migration.sql)
                    let elapsed = ContinuousClock.now - started
                    let millis = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
                    try await connection.query(
                        """
                        INSERT INTO schema_migrations (version, name, checksum, execution_ms)
                        VALUES (\(migration.version), \(migration.name), \(migration.checksum), \(millis))
                        """)
                }
            } catch var error as PGError {
                error.message = "migration \(migration.name) failed: \(error.message)"
                throw error
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
        }
        return status.pending
    }
}
