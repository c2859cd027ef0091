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

    /// The version `request`'s `If-Match` names: 428 without one, 412 when it names none.
    public static func required(_ request: Request, document: String = "document") throws -> Int {
        guard let ifMatch = request.headers[.ifMatch] else {
            throw Problem(
                type: Problem.type("precondition-required"), status: .preconditionRequired, title: "If-Match is required",
                detail: "Send the ETag of the \(document) you read as If-Match.")
        }
        guard let version = version(ifMatch) else {
            throw Problem(
                type: Problem.type("precondition-failed"), status: .preconditionFailed, title: "The \(document) changed meanwhile",
                detail: "If-Match does not name the current version of the \(document).")
        }
        return version
    }
}
