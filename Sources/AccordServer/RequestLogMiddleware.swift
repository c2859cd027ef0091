import AccordCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Gives each request an id (the caller's `X-Request-ID` when it is 1–128 safe characters, else a
/// new random one), returns it as `X-Request-ID`, and writes one structured log line per request:
/// method, path (without the secret tokens some paths carry: `RequestPath`), route template,
/// status, duration, request id and the caller's institution.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = AccordRequestContext

    static let header = HTTPField.Name("X-Request-ID")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = Self.acceptable(request.headers[Self.header]) ?? Self.newID()
        context.requestID = requestID
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "request_id"] = .string(requestID)
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // The problem middleware converts everything; this is a last resort.
            response = Problem.internalError.response(instance: RequestPath.redacted(request.uri.path), requestID: requestID)
        }
        response.headers[Self.header] = requestID
        let elapsed = ContinuousClock.now - started
        let millis = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var metadata: Logger.Metadata = [
            "method": .string(request.method.rawValue),
            "path": .string(RequestPath.redacted(request.uri.path)),
            "route": .string(context.endpointPath ?? "NotFound"),
            "status": .stringConvertible(response.status.code),
            "duration_ms": .string(String(format: "%.2f", millis)),
        ]
        if let institution = context.facts.institutionID { metadata["institution_id"] = .string(institution.uuidString.lowercased()) }
        context.logger.info("request", metadata: metadata)
        return response
    }

    static func acceptable(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 128,
            value.utf8.allSatisfy({ byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            })
        else { return nil }
        return value
    }

    static func newID() -> String {
        UUID().uuidString.lowercased()
    }
}
