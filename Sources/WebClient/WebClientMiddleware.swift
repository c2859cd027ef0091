import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Serves the web client (Resources/web: HTML, CSS and JavaScript modules, no build step) from `/`
/// for every GET or HEAD that no route answers outside `/v1/`, with Hummingbird's FileMiddleware
/// (ETag, If-None-Match, ranges). Its responses carry a Content-Security-Policy that allows only
/// the server's own scripts, styles and connections (no inline script, no other origin).
public struct WebClientMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The policy of every file of the client.
    public static var contentSecurityPolicy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
            + "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }

    /// The folder of the client's files in the package's resources.
    public static var folder: URL? { Bundle.module.url(forResource: "web", withExtension: nil) }

    let files: FileMiddleware<Context, LocalFileSystem>

    /// Nil when the resources hold no client (a build without them).
    public init?(logger: Logger) {
        guard let folder = Self.folder else { return nil }
        files = FileMiddleware(folder.path, cacheControl: .init([(MediaType(type: .any), [.noCache])]), searchForIndexHtml: true, logger: logger)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard request.method == .get || request.method == .head, !path.hasPrefix("/v1/"), path != "/v1" else {
            return try await next(request, context)
        }
        var response = try await files.handle(request, context: context, next: next)
        if context.coreContext.endpointPath.value == "FileMiddleware" {
            response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
            response.headers[.xContentTypeOptions] = "nosniff"
            response.headers[.referrerPolicy] = "no-referrer"
            response.headers[.crossOriginOpenerPolicy] = "same-origin"
        }
        return response
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let crossOriginOpenerPolicy = Self("Cross-Origin-Opener-Policy")!
}
