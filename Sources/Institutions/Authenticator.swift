import AccordCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PGStore

/// Resolves `Authorization: Bearer <token>` into the caller's identity. Routes that need a caller
/// run in `AuthenticatedContext`, which refuses (401) when there is none; public routes ignore it.
public struct Authenticator: RouterMiddleware {
    public typealias Context = AccordRequestContext
    let identity: IdentityService

    public init(identity: IdentityService) { self.identity = identity }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = try Self.bearerToken(request) else { return try await next(request, context) }
        guard let identity = try await identity.authenticate(token: token) else { throw Self.unknownToken }
        var context = context
        context.identity = identity
        context.facts.institutionID = identity.institutionID
        context.logger[metadataKey: "account"] = .string(identity.accountID.uuidString.lowercased())
        return try await next(request, context)
    }

    /// The bearer token of `request`: nil without an `Authorization` header, 401 for another scheme.
    public static func bearerToken(_ request: Request) throws -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw Problem.unauthorized("Use `Authorization: Bearer <token>`.")
        }
        return String(header.dropFirst(7))
    }

    static let unknownToken = Problem.unauthorized("The token is unknown, expired or revoked.")
}
