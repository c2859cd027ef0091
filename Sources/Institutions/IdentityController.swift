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

    /// `GET /v1/me`, on a group *without* the `Authenticator`: it resolves the token itself, from
    /// the identity cache or in one statement (`accord_me_session`).
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
            return EditedResponse(
                status: .created, headers: [.cacheControl: "no-store"],
                response: try await identity.signIn(body, clientAddress: context.clientAddress))
        }
        routes.post("invitations/{token}/accept") { request, context -> EditedResponse<SessionGrant> in
            let token = try context.parameters.require("token")
            let body = try await JSONBody.decode(MembershipService.AcceptRequest.self, from: request, context: context)
            return EditedResponse(
                status: .created, headers: [.cacheControl: "no-store"],
                response: try await membership.accept(token: token, body, clientAddress: context.clientAddress))
        }

        routes.post("password-resets") { request, context -> HTTPResponse.Status in
            let body = try await JSONBody.decode(IdentityService.PasswordResetRequest.self, from: request, context: context)
            try await identity.requestPasswordReset(body)
            return .accepted
        }
        routes.post("password-resets/{token}") { request, context -> HTTPResponse.Status in
            let token = try context.parameters.require("token")
            let body = try await JSONBody.decode(IdentityService.NewPassword.self, from: request, context: context)
            try await identity.resetPassword(token: token, body)
            return .noContent
        }
        routes.post("email-verifications/{token}") { _, context -> IdentityService.EmailVerification in
            try await identity.verifyEmail(token: try context.parameters.require("token"))
        }

        authenticated.delete("sessions/current") { _, context -> HTTPResponse.Status in
            try await identity.signOut(context.identity)
            return .noContent
        }
        authenticated.get("me/sessions") { _, context in
            SessionList(items: try await identity.sessions(of: context.identity))
        }
        authenticated.delete("me/sessions/{id}") { _, context -> HTTPResponse.Status in
            try await identity.endSession(try context.pathID(), caller: context.identity)
            return .noContent
        }
        authenticated.put("me/password") { request, context -> HTTPResponse.Status in
            let body = try await JSONBody.decode(IdentityService.PasswordChange.self, from: request, context: context)
            try await identity.changePassword(body, caller: context.identity, clientAddress: context.clientAddress)
            return .noContent
        }
        authenticated.post("me/totp") { _, context -> EditedResponse<IdentityService.TOTPEnrolment> in
            EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: try await identity.beginTOTP(caller: context.identity))
        }
        authenticated.post("me/totp/confirm") { request, context -> EditedResponse<IdentityService.RecoveryCodes> in
            let body = try await JSONBody.decodeStrictly(IdentityService.TOTPCode.self, from: request, context: context)
            return EditedResponse(headers: [.cacheControl: "no-store"], response: try await identity.confirmTOTP(body, caller: context.identity))
        }
        authenticated.delete("me/totp") { request, context -> HTTPResponse.Status in
            let body = try await JSONBody.decodeStrictly(IdentityService.TOTPCode.self, from: request, context: context)
            try await identity.disableTOTP(body, caller: context.identity)
            return .noContent
        }
        authenticated.get("institutions/{id}") { _, context -> EditedResponse<Institution> in
            let (institution, version) = try await membership.profile(try context.pathID(), caller: context.identity)
            return EditedResponse(headers: [.eTag: ETag.of(version: version)], response: institution)
        }
        authenticated.patch("institutions/{id}") { request, context -> EditedResponse<Institution> in
            let id = try context.pathID()
            let input = try await JSONBody.decode(ProfileInput.self, from: request, context: context)
            let (institution, newVersion) = try await membership.updateProfile(
                id, with: input, ifMatch: ETag.precondition(request), caller: context.identity)
            return EditedResponse(headers: [.eTag: ETag.of(version: newVersion)], response: institution)
        }
        authenticated.get("institutions/{id}/members") { _, context in
            MemberList(items: try await membership.members(of: try context.pathID(), caller: context.identity))
        }
        authenticated.patch("institutions/{id}/members/{userId}") { request, context in
            let body = try await JSONBody.decode(RoleChange.self, from: request, context: context)
            let userID = try context.pathID("userId")
            return try await membership.changeRole(of: userID, in: try context.pathID(), to: body.role, caller: context.identity)
        }
        authenticated.delete("institutions/{id}/members/{userId}") { _, context -> HTTPResponse.Status in
            try await membership.removeMember(try context.pathID("userId"), from: try context.pathID(), caller: context.identity)
            return .noContent
        }
        authenticated.post("institutions/{id}/invitations") { request, context -> EditedResponse<MembershipService.Invitation> in
            let body = try await JSONBody.decode(MembershipService.InvitationRequest.self, from: request, context: context)
            return EditedResponse(status: .created, response: try await membership.invite(body, to: try context.pathID(), caller: context.identity))
        }
        authenticated.get("institutions/{id}/invitations") { _, context in
            InvitationList(items: try await membership.invitations(of: try context.pathID(), caller: context.identity))
        }
        authenticated.delete("institutions/{id}/invitations/{invitationId}") { _, context -> HTTPResponse.Status in
            try await membership.revokeInvitation(try context.pathID("invitationId"), of: try context.pathID(), caller: context.identity)
            return .noContent
        }
    }

    struct RoleChange: Codable, Sendable { var role: String }
    struct MemberList: ResponseEncodable { var items: [User] }
    struct InvitationList: ResponseEncodable { var items: [MembershipService.Invitation] }
    struct SessionList: ResponseEncodable { var items: [IdentityService.SessionInfo] }
}

extension Institution: ResponseEncodable {}
extension User: ResponseEncodable {}
extension SessionGrant: ResponseEncodable {}
extension IdentityService.Registration: ResponseEncodable {}
extension IdentityService.Me: ResponseEncodable {}
extension MembershipService.Invitation: ResponseEncodable {}
extension IdentityService.EmailVerification: ResponseEncodable {}

extension IdentityService.TOTPEnrolment: ResponseEncodable {}
extension IdentityService.RecoveryCodes: ResponseEncodable {}
