import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An RFC 9457 problem: every error the API returns, as `application/problem+json`.
///
/// `type` is a stable URN per kind of problem (clients branch on it), `status` the HTTP status,
/// `title` a short summary that does not change between occurrences, `detail` this occurrence in
/// words, and for 422 `errors` names each invalid field.
public struct Problem: Error, HTTPResponseError, Sendable, Equatable {
    /// One invalid input: the field (a JSON pointer into the body, or a query parameter's name)
    /// and what is wrong with it.
    public struct FieldError: Codable, Sendable, Equatable {
        public var field: String
        public var message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }

    public var type: String
    public var status: HTTPResponse.Status
    public var title: String
    public var detail: String?
    public var errors: [FieldError]
    /// Extra response headers (for example `Retry-After` on 429).
    public var headers: HTTPFields

    public init(
        type: String, status: HTTPResponse.Status, title: String, detail: String? = nil,
        errors: [FieldError] = [], headers: HTTPFields = [:]
    ) {
        self.type = type
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public static let contentType = "application/problem+json"

    /// The URN of a problem kind: `urn:accord:problem:<slug>`.
    public static func type(_ slug: String) -> String { "urn:accord:problem:\(slug)" }

    /// The same problem with `extra` headers on its response.
    public func with(headers extra: HTTPFields) -> Problem {
        var copy = self
        for field in extra { copy.headers[field.name] = field.value }
        return copy
    }

    // MARK: Common problems

    public static func badRequest(_ detail: String) -> Problem {
        Problem(type: type("bad-request"), status: .badRequest, title: "The request is malformed", detail: detail)
    }

    public static func unauthorized(_ detail: String = "Sign in to use this resource.") -> Problem {
        Problem(
            type: type("unauthorized"), status: .unauthorized, title: "Authentication required", detail: detail,
            headers: [.wwwAuthenticate: "Bearer"])
    }

    public static func forbidden(_ detail: String) -> Problem {
        Problem(type: type("forbidden"), status: .forbidden, title: "Not allowed", detail: detail)
    }

    public static func notFound(_ detail: String = "There is nothing at this address.") -> Problem {
        Problem(type: type("not-found"), status: .notFound, title: "Not found", detail: detail)
    }

    public static func methodNotAllowed(_ detail: String) -> Problem {
        Problem(type: type("method-not-allowed"), status: .methodNotAllowed, title: "Method not allowed", detail: detail)
    }

    public static func conflict(_ detail: String) -> Problem {
        Problem(type: type("conflict"), status: .conflict, title: "Conflict", detail: detail)
    }

    public static func payloadTooLarge(limit: Int) -> Problem {
        Problem(
            type: type("payload-too-large"), status: .contentTooLarge, title: "The request body is too large",
            detail: "The body may have at most \(limit) bytes.")
    }

    public static func invalid(_ errors: [FieldError], detail: String = "Some fields are invalid.") -> Problem {
        Problem(
            type: type("validation"), status: .unprocessableContent, title: "The request has invalid fields",
            detail: detail, errors: errors)
    }

    public static func invalid(field: String, _ message: String) -> Problem {
        invalid([FieldError(field: field, message: message)], detail: "\(field): \(message)")
    }

    public static func tooManyRequests(retryAfterSeconds: Int) -> Problem {
        Problem(
            type: type("rate-limited"), status: .tooManyRequests, title: "Too many requests",
            detail: "Try again in \(retryAfterSeconds) seconds.", headers: [.retryAfter: String(retryAfterSeconds)])
    }

    public static func serviceUnavailable(_ detail: String) -> Problem {
        Problem(type: type("unavailable"), status: .serviceUnavailable, title: "Service unavailable", detail: detail)
    }

    /// A 500 that says nothing about the cause; the cause goes to the log with the request id.
    public static let internalError = Problem(
        type: type("internal"), status: .internalServerError, title: "Internal server error",
        detail: "Something went wrong on our side. Quote the request id when you report it.")

    // MARK: Response

    struct Body: Encodable {
        let type: String
        let title: String
        let status: Int
        let detail: String?
        let instance: String?
        let requestId: String?
        let errors: [FieldError]?
    }

    /// The JSON body, with the request path as `instance` and the request id.
    public func body(instance: String?, requestID: String?) -> Data {
        let body = Body(
            type: type, title: title, status: status.code, detail: detail, instance: instance,
            requestId: requestID, errors: errors.isEmpty ? nil : errors)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(body)) ?? Data(#"{"title":"Internal server error","status":500}"#.utf8)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response(instance: RequestPath.redacted(request.uri.path), requestID: nil)
    }

    /// The complete response.
    public func response(instance: String?, requestID: String?) -> Response {
        var fields = headers
        fields[.contentType] = Self.contentType
        fields[.cacheControl] = "no-store"
        let data = body(instance: instance, requestID: requestID)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
