import Foundation
import Hummingbird

extension RequestContext {
    /// The UUID in the path parameter `name`; anything else is a 404 (there is nothing at that
    /// address).
    public func pathID(_ name: String = "id") throws -> UUID {
        guard let text = parameters.get(name), let id = UUID(uuidString: text) else { throw Problem.notFound() }
        return id
    }
}

/// The ETags of versioned documents, `"v7"`, and the `If-Match` that updates them require.
public enum ETag {
    public static func of(version: Int) -> String { "\"v\(version)\"" }

    /// The version an `If-Match` header names, or nil when it names none.
    public static func version(_ header: String) -> Int? {
        var value = header.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("W/") { value.removeFirst(2) }
        guard value.hasPrefix("\"v"), value.hasSuffix("\""), value.count > 3 else { return nil }
        return Int(value.dropFirst(2).dropLast())
    }

    /// A request's `If-Match`, read without judging it: the service checks it against the current
    /// version once it has checked who may change the document (a caller who may not learns
    /// nothing from a 412).
    public enum Precondition: Sendable, Equatable {
        /// No `If-Match`: 428.
        case missing
        /// `If-Match: *`: any current representation (RFC 9110, 13.1.1).
        case any
        /// The versions the header names (none, when it names no version of ours: 412).
        case versions([Int])

        /// Passes when the precondition holds for `current`: 428 without one, 412 when it names
        /// another version.
        public func check(current: Int, document: String) throws {
            switch self {
            case .any: return
            case .versions(let versions) where versions.contains(current): return
            case .missing:
                throw Problem(
                    type: Problem.type("precondition-required"), status: .preconditionRequired, title: "If-Match is required",
                    detail: "Send the ETag of the \(document) you read as If-Match.")
            case .versions:
                throw Problem(
                    type: Problem.type("precondition-failed"), status: .preconditionFailed, title: "The \(document) changed meanwhile",
                    detail: "Read the \(document) again and apply your change to its current version.")
            }
        }
    }

    /// What `request`'s `If-Match` asks: `*`, or a comma-separated list of entity tags.
    public static func precondition(_ request: Request) -> Precondition {
        guard let header = request.headers[.ifMatch] else { return .missing }
        if header.trimmingCharacters(in: .whitespaces) == "*" { return .any }
        return .versions(header.split(separator: ",").compactMap { version(String($0)) })
    }
}
