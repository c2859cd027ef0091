import AccordCore
import Foundation
import HTTPTypes
import Hummingbird

/// The REST routes of rooms under /v1 (the socket's are in `RoomSocketRoutes`).
public struct RoomsController: Sendable {
    let rooms: RoomService

    public init(rooms: RoomService) { self.rooms = rooms }

    struct MemberRequest: Codable { var userId: UUID }
    struct ReadRequest: Codable { var seq: Int64 }
    struct EditRequest: Codable { var body: String }
    struct MemberList: ResponseEncodable { var items: [RoomMember] }
    struct MessageList: ResponseEncodable { var items: [RoomMessage] }
    struct InvitationList: ResponseEncodable { var items: [RoomInvitation] }

    public func addRoutes(to routes: RouterGroup<AuthenticatedContext>) {
        routes.post("rooms") { request, context -> EditedResponse<Room> in
            let input = try await JSONBody.decode(RoomInput.self, from: request, context: context)
            let room = try await rooms.create(input, caller: context.identity)
            return EditedResponse(status: .created, headers: [.location: "/v1/rooms/\(room.id)", .eTag: ETag.of(version: 1)], response: room)
        }
        routes.get("rooms") { request, context in
            let parameters = request.uri.queryParameters
            return try await rooms.rooms(
                limit: try Limit.parse(parameters.get("limit"), default: 50), cursor: parameters.get("cursor"), caller: context.identity)
        }
        routes.get("rooms/{id}") { _, context -> EditedResponse<Room> in
            let id = try context.pathID()
            let (room, version) = try await rooms.room(id, caller: context.identity)
            return EditedResponse(headers: [.eTag: ETag.of(version: version)], response: room)
        }
        routes.patch("rooms/{id}") { request, context -> EditedResponse<Room> in
            let id = try context.pathID()
            _ = try await rooms.room(id, caller: context.identity)  // a non-member learns nothing, whatever the If-Match
            let input = try await JSONBody.decode(RoomInput.self, from: request, context: context)
            let (room, newVersion) = try await rooms.update(id, with: input, ifMatch: ETag.precondition(request), caller: context.identity)
            return EditedResponse(headers: [.eTag: ETag.of(version: newVersion)], response: room)
        }
        routes.post("rooms/{id}/archive") { _, context in
            try await rooms.archive(try context.pathID(), caller: context.identity)
        }

        routes.get("rooms/{id}/members") { _, context in
            MemberList(items: try await rooms.members(of: try context.pathID(), caller: context.identity))
        }
        routes.post("rooms/{id}/members") { request, context -> EditedResponse<RoomMember> in
            let body = try await JSONBody.decode(MemberRequest.self, from: request, context: context)
            return EditedResponse(
                status: .created, response: try await rooms.addMember(body.userId, to: try context.pathID(), caller: context.identity))
        }
        routes.patch("rooms/{id}/members/{userId}") { request, context in
            let change = try await JSONBody.decode(RoomService.MemberChange.self, from: request, context: context)
            return try await rooms.changeMember(try context.pathID("userId"), in: try context.pathID(), change, caller: context.identity)
        }
        routes.delete("rooms/{id}/members/{userId}") { _, context -> HTTPResponse.Status in
            try await rooms.removeMember(try context.pathID("userId"), from: try context.pathID(), caller: context.identity)
            return .noContent
        }

        routes.post("rooms/{id}/invitations") { request, context -> EditedResponse<RoomInvitation> in
            let body = try await JSONBody.decode(RoomService.InvitationRequest.self, from: request, context: context)
            return EditedResponse(status: .created, response: try await rooms.invite(body, to: try context.pathID(), caller: context.identity))
        }
        routes.get("room-invitations") { _, context in
            InvitationList(items: try await rooms.myInvitations(caller: context.identity))
        }
        routes.post("room-invitations/{id}/accept") { _, context in
            try await rooms.accept(invitation: try context.pathID(), caller: context.identity)
        }

        routes.get("rooms/{id}/messages") { request, context in
            let parameters = request.uri.queryParameters
            func sequence(_ name: String) throws -> Int64? {
                guard let text = parameters.get(name) else { return nil }
                guard let value = Int64(text), value >= 0 else { throw Problem.invalid(field: name, "must be a sequence number (0 or more)") }
                return value
            }
            return MessageList(
                items: try await rooms.messages(
                    of: try context.pathID(), after: try sequence("after"), before: try sequence("before"), query: parameters.get("q"),
                    limit: try Limit.parse(parameters.get("limit"), default: 50, range: 1...200), caller: context.identity))
        }
        routes.post("rooms/{id}/messages") { request, context -> EditedResponse<MessageAck> in
            let body = try await JSONBody.decode(SendRequest.self, from: request, context: context)
            let ack = try await rooms.send(body, to: try context.pathID(), caller: context.identity)
            return EditedResponse(status: ack.duplicate ? .ok : .created, response: ack)
        }
        routes.patch("rooms/{id}/messages/{seq}") { request, context in
            let body = try await JSONBody.decode(EditRequest.self, from: request, context: context)
            return try await rooms.change(message: try Self.seq(context), in: try context.pathID(), newBody: body.body, caller: context.identity)
        }
        routes.delete("rooms/{id}/messages/{seq}") { _, context -> HTTPResponse.Status in
            _ = try await rooms.change(message: try Self.seq(context), in: try context.pathID(), newBody: nil, caller: context.identity)
            return .noContent
        }
        routes.put("rooms/{id}/read") { request, context -> HTTPResponse.Status in
            let body = try await JSONBody.decode(ReadRequest.self, from: request, context: context)
            guard body.seq >= 0 else { throw Problem.invalid(field: "/seq", "must be 0 or more") }
            try await rooms.markRead(body.seq, in: try context.pathID(), caller: context.identity)
            return .noContent
        }
        routes.post("rooms/{id}/tickets") { _, context -> EditedResponse<RoomTicket> in
            EditedResponse(
                status: .created, headers: [.cacheControl: "no-store"],
                response: try await rooms.ticket(for: try context.pathID(), caller: context.identity))
        }
    }

    static func seq(_ context: some RequestContext) throws -> Int64 {
        guard let text = context.parameters.get("seq"), let seq = Int64(text), seq > 0 else { throw Problem.notFound("No such message.") }
        return seq
    }
}

extension Room: ResponseEncodable {}
extension RoomMember: ResponseEncodable {}
extension RoomMessage: ResponseEncodable {}
extension MessageAck: ResponseEncodable {}
extension RoomInvitation: ResponseEncodable {}
extension RoomTicket: ResponseEncodable {}
