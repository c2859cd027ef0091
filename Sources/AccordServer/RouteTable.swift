import HTTPTypes
import Synchronization

/// The routes the router knows, as path patterns with their methods, so that a request for a known
/// path with another method gets 405 and `Allow` rather than 404.
final class RouteTable: Sendable {
    private let entries = Mutex<[(segments: [Substring], methods: Set<String>)]>([])

    /// Records the router's routes (`/v1/institutions/{id}` or `:id` style parameters).
    func record(_ routes: [(method: String, path: String)]) {
        var table: [String: Set<String>] = [:]
        for route in routes { table[route.path, default: []].insert(route.method) }
        entries.withLock { entries in
            entries = table.map { (segments: $0.key.split(separator: "/"), methods: $0.value) }
        }
    }

    /// The methods allowed on `path`, if any route matches it.
    func methods(for path: String) -> Set<String> {
        let parts = path.split(separator: "/")
        return entries.withLock { entries in
            var allowed = Set<String>()
            for entry in entries where entry.segments.count == parts.count {
                let matches = zip(entry.segments, parts).allSatisfy { pattern, part in
                    pattern.first == "{" || pattern.first == ":" || pattern == part
                }
                if matches { allowed.formUnion(entry.methods) }
            }
            return allowed
        }
    }
}
