import Foundation
import PGStore

/// Finds the Schema/ folder of migration files: `--schema-dir` or `ACCORD_SCHEMA_DIR` if given,
/// else `./Schema`, else a `Schema` folder beside or above the executable (which covers
/// `.build/debug/accord` and an installed layout like `/opt/accord/bin` + `/opt/accord/Schema`).
public enum SchemaLocator {
    public static func locate(explicit: String? = nil) throws -> URL {
        if let path = explicit ?? ProcessInfo.processInfo.environment["ACCORD_SCHEMA_DIR"], !path.isEmpty {
            let url = URL(fileURLWithPath: path)
            guard containsMigrations(url) else {
                throw PGError(.invalidConfiguration, message: "no migrations (NNNN_*.sql) in the schema folder \(path)")
            }
            return url
        }
        var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Schema")]
        var folder = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(folder.appendingPathComponent("Schema"))
            folder = folder.deletingLastPathComponent()
        }
        if let found = candidates.first(where: containsMigrations) { return found }
        throw PGError(.invalidConfiguration, message: "cannot find the Schema folder; pass --schema-dir or set ACCORD_SCHEMA_DIR")
    }

    static func containsMigrations(_ url: URL) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.contains { $0.hasSuffix(".sql") && $0.first?.isNumber == true }
    }
}
