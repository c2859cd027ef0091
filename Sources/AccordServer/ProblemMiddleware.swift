import AccordCore
import HTTPTypes
import Hummingbird
import Logging
import PGStore

/// Turns every error into an RFC 9457 problem response: `Problem`s as they are, Hummingbird's
/// `HTTPError`s (unknown route, oversized body, undecodable JSON) into their problem equivalents,
/// and anything else into a 500 that reveals nothing, with the cause logged.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AccordRequestContext
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var problem = Self.problem(for: error, request: request, context: context)
            if problem.status == .notFound, (error as? HTTPError)?.status == .notFound {
                // A known path with another method: 405 with the methods it has.
                let allowed = routes.methods(for: request.uri.path)
                if !allowed.isEmpty {
                    let list = allowed.sorted().joined(separator: ", ")
                    problem = Problem.methodNotAllowed(
                        "\(request.method.rawValue) is not allowed on \(RequestPath.redacted(request.uri.path)); use \(list)."
                    )
                    .with(headers: [.allow: list])
                }
            }
            return problem.response(instance: RequestPath.redacted(request.uri.path), requestID: context.requestID)
        }
    }

    static func problem(for error: any Error, request: Request, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as HTTPError:
            switch error.status {
            case .notFound:
                return .notFound("There is no \(request.method.rawValue) \(RequestPath.redacted(request.uri.path)).")
            case .contentTooLarge:
                return .payloadTooLarge(limit: context.maxUploadSize)
            case .badRequest:
                return .badRequest(error.body ?? "The request could not be read.")
            case .methodNotAllowed:
                return .methodNotAllowed("\(request.method.rawValue) is not allowed on \(RequestPath.redacted(request.uri.path)).")
            case .unsupportedMediaType:
                return Problem(
                    type: Problem.type("unsupported-media-type"), status: .unsupportedMediaType,
                    title: "Unsupported media type", detail: error.body)
            default:
                if error.status.code < 500 {
                    return Problem(
                        type: Problem.type("http-\(error.status.code)"), status: error.status,
                        title: error.status.reasonPhrase, detail: error.body)
                }
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
                return .internalError
            }
        case let error as PGError where error.kind == .poolTimeout || error.kind == .connection:
            context.logger.error("database unavailable", metadata: ["error": "\(String(reflecting: error))"])
            return Problem.serviceUnavailable("The database is unavailable; try again shortly.").with(
                headers: [.retryAfter: "5"])
        default:
            // Database errors and anything unexpected: log the detail, return nothing of it.
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError
        }
    }
}
