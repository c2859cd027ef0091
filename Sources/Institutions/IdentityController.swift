import AccordCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PGStore

/// Routes of identity and institutions: registrations, sessions, me, profiles, members,
/// invitations.
public struct IdentityController: Sendable {
    let identity: IdentityService
    let membership: MembershipService

    public init(identity: IdentityService) {
        self.identity = identity
        self.membership = MembershipService(identity: identity)
    }

    /// `GET /v1/me`, the hottest authenticated route, on a group *without* the `Authenticator`: a
    /// token resolved recently is answered from the identity cache; otherwise one statement
    /// (`accord_me_session`) resolves the token, sets the tenant context and builds the answer,
    /// where other routes pay a token lookup and then their own transaction.
    public func addMeRoute(to routes: RouterGroup<AccordRequestContext>) {
        routes.get("me") { request, _ -> Response in
            guard let token = try Authenticator.bearerToken(request) else { throw Problem.unauthorized() }
            guard let body = try await identity.meBody(token: token) else { throw Authenticator.unknownToken }
            return Response(status: .ok, headers: Self.meHeaders, body: .init(byteBuffer: body))
        }
    }

    static let meHeaders: HTTPFields = [.contentType: "application/json; charset=utf-8"]

    public func addRoutes(public routes: RouterGroup<AccordRequestContext>, authenticated: RouterGroup<AuthenticatedContext>) {
        routes.post("registrations") { request, context -> EditedResponse<IdentityService.Registration> in
            let body = try await JSONBody.decode(IdentityService.RegistrationRequest.self, from: request, context: context)
            let registration = try await identity.register(body, clientAddress: context.clientAddress)
            return EditedResponse(status: .created, headers: [.location: "/v1/institutions/\(registration.institution.id)"], response: registration)
        }
        routes.post("sessions") { request, context -> EditedResponse<SessionGrant> in
            let body = try await JSONBody.decode(IdentityService.SignInRequest.self, from: request, context: context)
            return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: try await identity.signIn(body, clientAddress: context.clientAddress))
        }
        routes.post("invitations/{token}/accept") { request, context -> EditedResponse<SessionGrant> in
            let token = try context.parameters.require("token")
            let body = try await JSONBody.decode(MembershipService.AcceptRequest.self, from: request, context: context)
            return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: try await membership.accept(token: token, body, clientAddress: context.clientAddress))
        }

        authenticated.delete("sessions/current") { _, context -> HTTPResponse.Status in
            try await identity.signOut(context.identity)
            return .noContent
        }
        authenticated.get("institutions/{id}") { _, context -> EditedResponse<Institution> in
            let (institution, version) = try await membership.profile(try Self.id(context), caller: context.identity)
            return EditedResponse(headers: [.eTag: Self.etag(version)], response: institution)
        }
        authenticated.patch("institutions/{id}") { request, context -> EditedResponse<Institution> in
            let id = try Self.id(context)
            guard let ifMatch = request.headers[.ifMatch] else {
                throw Problem(type: Problem.type("precondition-required"), status: .preconditionRequired, title: "If-Match is required",
                              detail: "Send the ETag of the profile you read as If-Match.")
            }
            guard let version = Self.version(fromETag: ifMatch) else {
                throw Problem(type: Problem.type("precondition-failed"), status: .preconditionFailed, title: "The profile changed meanwhile",
                              detail: "If-Match does not name the current version of the profile.")
            }
            let input = try await JSONBody.decode(ProfileInput.self, from: request, context: context)
            let (institution, newVersion) = try await membership.updateProfile(id, with: input, ifMatch: version, caller: context.identity)
            return EditedResponse(headers: [.eTag: Self.etag(newVersion)], response: institution)
        }
        authenticated.get("institutions/{id}/members") { _, context in
            MemberList(items: try await membership.members(of: try Self.id(context), caller: context.identity))
        }
        authenticated.patch("institutions/{id}/members/{userId}") { request, context in
            let body = try await JSONBody.decode(RoleChange.self, from: request, context: context)
            let userID = try Self.uuid(context, "userId")
            return try await membership.changeRole(of: userID, in: try Self.id(context), to: body.role, caller: context.identity)
        }
        authenticated.delete("institutions/{id}/members/{userId}") { _, context -> HTTPResponse.Status in
            try await membership.removeMember(try Self.uuid(context, "userId"), from: try Self.id(context), caller: context.identity)
            return .noContent
        }
        authenticated.post("institutions/{id}/invitations") { request, context -> EditedResponse<MembershipService.Invitation> in
            let body = try await JSONBody.decode(MembershipService.InvitationRequest.self, from: request, context: context)
            return EditedResponse(status: .created, response: try await membership.invite(body, to: try Self.id(context), caller: context.identity))
        }
        authenticated.get("institutions/{id}/invitations") { _, context in
            InvitationList(items: try await membership.invitations(of: try Self.id(context), caller: context.identity))
        }
        authenticated.delete("institutions/{id}/invitations/{invitationId}") { _, context -> HTTPResponse.Status in
            try await membership.revokeInvitation(try Self.uuid(context, "invitationId"), of: try Self.id(context), caller: context.identity)
            return .noContent
        }
    }

    struct RoleChange: Codable, Sendable { var role: String }
    struct MemberList: ResponseEncodable { var items: [User] }
    struct InvitationList: ResponseEncodable { var items: [MembershipService.Invitation] }

    static func id(_ context: AuthenticatedContext) throws -> UUID { try uuid(context, "id") }

    /// A path UUID; anything else is a 404 (there is nothing at that address).
    static func uuid(_ context: AuthenticatedContext, _ name: String) throws -> UUID {
        guard let text = context.parameters.get(name), let id = UUID(uuidString: text) else { throw Problem.notFound() }
        return id
    }

    static func etag(_ version: Int) -> String { "\"v\(version)\"" }

    static func version(fromETag header: String) -> Int? {
        var value = header.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("W/") { value.removeFirst(2) }
        guard value.hasPrefix("\"v"), value.hasSuffix("\""), value.count > 3 else { return nil }
        return Int(value.dropFirst(2).dropLast())
    }
}

extension Institution: ResponseEncodable {}
extension User: ResponseEncodable {}
extension SessionGrant: ResponseEncodable {}
extension IdentityService.Registration: ResponseEncodable {}
extension IdentityService.Me: ResponseEncodable {}
extension MembershipService.Invitation: ResponseEncodable {}
