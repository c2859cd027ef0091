import AccordCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The routes of partnerships under /v1.
public struct PartnershipsController: Sendable {
    let partnerships: PartnershipService

    public init(partnerships: PartnershipService) { self.partnerships = partnerships }

    struct VersionList: ResponseEncodable { var items: [AgreementVersion] }
    struct RoomReference: ResponseEncodable { var roomId: UUID }
    struct MeetingList: ResponseEncodable { var items: [Meeting] }
    struct NoteList: ResponseEncodable { var items: [Note] }

    public func addRoutes(to routes: RouterGroup<AuthenticatedContext>) {
        routes.post("partnerships") { request, context -> EditedResponse<Partnership> in
            let proposal = try await JSONBody.decode(PartnershipProposal.self, from: request, context: context)
            let partnership = try await partnerships.propose(proposal, caller: context.identity)
            return EditedResponse(status: .created, headers: [.location: "/v1/partnerships/\(partnership.id)"], response: partnership)
        }
        routes.get("partnerships") { request, context in
            let parameters = request.uri.queryParameters
            var v = Validator()
            let limit = Limit.parse(parameters.get("limit"), default: 50, into: &v)
            var stage: PartnershipStage?
            if let text = parameters.get("stage") {
                stage = PartnershipStage(rawValue: text)
                v.check(stage != nil, "stage", "must be one of \(PartnershipStage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let since = parameters.get("modifiedSince")
            if let since { v.check(Formats.isTimestamp(since), "modifiedSince", "must be an RFC 3339 time, such as 2027-01-31T12:00:00Z") }
            let due = parameters.get("due")
            if let due { v.check(due == "renewal", "due", "must be renewal") }
            try v.validate()
            return try await partnerships.partnerships(
                stage: stage, modifiedSince: since, dueForRenewal: due != nil, limit: limit, cursor: parameters.get("cursor"),
                caller: context.identity)
        }
        routes.get("partnerships/{id}") { _, context in
            try await partnerships.partnership(try context.pathID(), caller: context.identity)
        }
        for answer in [PartnershipService.Answer.accept, .decline, .withdraw] {
            routes.post("partnerships/{id}/\(answer.rawValue)") { _, context in
                try await partnerships.answer(answer, try context.pathID(), caller: context.identity)
            }
        }
        routes.post("partnerships/{id}/room") { _, context in
            RoomReference(roomId: try await partnerships.joinRoom(of: try context.pathID(), caller: context.identity))
        }
        routes.get("partnerships/{id}/timeline") { request, context in
            let parameters = request.uri.queryParameters
            let limit = try Limit.parse(parameters.get("limit"), default: 100, range: 1...200)
            return try await partnerships.timeline(
                of: try context.pathID(), after: try PartnershipService.timelineAfter(parameters.get("cursor")), limit: limit,
                caller: context.identity)
        }

        routes.put("partnerships/{id}/agreement") { request, context -> EditedResponse<AgreementVersion> in
            let id = try context.pathID()
            try await partnerships.requireParty(id, caller: context.identity)  // a non-party learns nothing from validation
            let terms = try await JSONBody.decodeStrictly(AgreementTerms.self, from: request, context: context)
            let version = try await partnerships.draft(terms, for: id, caller: context.identity)
            return EditedResponse(
                status: .created, headers: [.location: "/v1/partnerships/\(id)/agreement/versions/\(version.version)"], response: version)
        }
        routes.get("partnerships/{id}/agreement/versions") { _, context in
            VersionList(items: try await partnerships.versions(of: try context.pathID(), caller: context.identity))
        }
        routes.get("partnerships/{id}/agreement/versions/{version}") { _, context in
            try await partnerships.version(try Self.version(context, "version"), of: try context.pathID(), caller: context.identity)
        }
        routes.delete("partnerships/{id}/agreement/versions/{version}") { _, context -> HTTPResponse.Status in
            try await partnerships.deleteDraft(try Self.version(context, "version"), of: try context.pathID(), caller: context.identity)
            return .noContent
        }
        routes.get("partnerships/{id}/agreement/versions/{version}/diff/{to}") { _, context in
            try await partnerships.diff(
                try Self.version(context, "version"), try Self.version(context, "to"), of: try context.pathID(), caller: context.identity)
        }
        routes.post("partnerships/{id}/renew") { request, context -> EditedResponse<AgreementVersion> in
            let (id, input) = try await partyBody(RenewalInput.self, request, context)
            let version = try await partnerships.renew(input, id, caller: context.identity)
            return EditedResponse(
                status: .created, headers: [.location: "/v1/partnerships/\(id)/agreement/versions/\(version.version)"], response: version)
        }
        routes.post("partnerships/{id}/terminate") { request, context in
            let (id, input) = try await partyBody(TerminationInput.self, request, context)
            return try await partnerships.terminate(input, id, caller: context.identity)
        }

        routes.post("partnerships/{id}/meetings") { request, context -> EditedResponse<Meeting> in
            let (id, input) = try await partyBody(MeetingInput.self, request, context)
            return EditedResponse(status: .created, response: try await partnerships.addMeeting(input, to: id, caller: context.identity))
        }
        routes.get("partnerships/{id}/meetings") { _, context in
            MeetingList(items: try await partnerships.meetings(of: try context.pathID(), caller: context.identity))
        }
        routes.patch("partnerships/{id}/meetings/{meetingId}") { request, context in
            let (id, input) = try await partyBody(MeetingInput.self, request, context)
            return try await partnerships.changeMeeting(try context.pathID("meetingId"), in: id, input, caller: context.identity)
        }
        routes.post("partnerships/{id}/notes") { request, context -> EditedResponse<Note> in
            let (id, input) = try await partyBody(NoteInput.self, request, context)
            return EditedResponse(status: .created, response: try await partnerships.addNote(input, to: id, caller: context.identity))
        }
        routes.get("partnerships/{id}/notes") { _, context in
            NoteList(items: try await partnerships.notes(of: try context.pathID(), caller: context.identity))
        }
        routes.post("partnerships/{id}/kpi-reports") { request, context in
            let (id, input) = try await partyBody(KPIReportInput.self, request, context)
            return try await partnerships.report(input, for: id, caller: context.identity)
        }
        routes.get("partnerships/{id}/assessment") { _, context in
            try await partnerships.assessment(of: try context.pathID(), caller: context.identity)
        }
        routes.get("activity") { request, context in
            let parameters = request.uri.queryParameters
            return try await partnerships.activity(
                limit: try Limit.parse(parameters.get("limit"), default: 50), cursor: parameters.get("cursor"), caller: context.identity)
        }
        routes.get("partnerships/{id}/agreement/ewp-iia") { _, context -> Response in
            let document = try await partnerships.ewpDocument(for: try context.pathID(), caller: context.identity)
            return Response(
                status: .ok, headers: [.contentType: "application/xml; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: document)))
        }
        routes.post("partnerships/{id}/agreement/approvals") { request, context in
            let (id, body) = try await partyBody(ApprovalRequest.self, request, context)
            return try await partnerships.approve(body, for: id, caller: context.identity)
        }
    }

    /// The path's partnership and the request's body, read only once the caller is known to be a
    /// party: a non-party gets 404 whatever it sent, and learns nothing from validation.
    func partyBody<Body: Decodable>(_ type: Body.Type, _ request: Request, _ context: AuthenticatedContext) async throws -> (UUID, Body) {
        let id = try context.pathID()
        try await partnerships.requireParty(id, caller: context.identity)
        return (id, try await JSONBody.decode(type, from: request, context: context))
    }

    /// A version number from the path (404 when it is not one).
    static func version(_ context: AuthenticatedContext, _ name: String) throws -> Int {
        guard let text = context.parameters.get(name), let version = Int(text), version > 0, version < 1_000_000 else {
            throw Problem.notFound("No such agreement version.")
        }
        return version
    }
}
