import AccordCore
import AccordTesting
import Foundation
import HTTPTypes
import NIOWebSocket
import PGStore
import Rooms
import Testing

/// Two admitted institutions, a room of the first's admin, and the second's admin in it by
/// invitation.
struct RoomFixture {
    let admin: String
    let ana: String
    let anaID: UUID
    let bram: String
    let bramID: UUID
    let room: UUID
    let institutionB: UUID

    static func make(_ h: Harness) async throws -> RoomFixture {
        let admin = try await h.networkAdmin()
        let (a, emailA) = try await h.register(schac: "ulb.be")
        let (b, emailB) = try await h.register(schac: "uva.nl", country: "NL")
        try await h.approve(a, adminToken: admin)
        try await h.approve(b, adminToken: admin)
        let ana = try await h.signIn(emailA)
        let bram = try await h.signIn(emailB)
        let created = try await h.request(.post, "/v1/rooms", token: ana, json: ["title": "Joint master in water management", "field": "0712"])
        try #require(created.status == .created, "\(created.body)")
        let room = try #require(UUID(uuidString: created.string("id") ?? ""))
        let invited = try await h.request(.post, "/v1/rooms/\(room)/invitations", token: ana, json: ["email": emailB])
        try #require(invited.status == .created, "\(invited.body)")
        let accepted = try await h.request(.post, "/v1/room-invitations/\(invited.string("id")!)/accept", token: bram)
        try #require(accepted.status == .ok, "\(accepted.body)")
        return RoomFixture(
            admin: admin, ana: ana, anaID: try await Self.userID(h, ana), bram: bram, bramID: try await Self.userID(h, bram), room: room,
            institutionB: b)
    }

    static func userID(_ h: Harness, _ token: String) async throws -> UUID {
        let me = try await h.request(.get, "/v1/me", token: token)
        return try #require(UUID(uuidString: (me["user"] as? [String: Any])?["id"] as? String ?? ""))
    }

    func socket(_ h: Harness, _ token: String, after: Int64? = nil, reading: Bool = true) -> RoomSocketClient {
        RoomSocketClient(
            port: h.port!, path: "/v1/rooms/\(room)/socket" + (after.map { "?after=\($0)" } ?? ""), headers: [.authorization: "Bearer \(token)"],
            reading: reading)
    }
}

@Suite("Rooms over HTTP")
struct RoomsTests {
    @Test func roomsMembersInvitationsAndWhatNonMembersSee() async throws {
        try await Harness.run { h in
            let f = try await RoomFixture.make(h)
            // Each sees the room, with the other's name and institution, nothing more.
            let members = try await h.request(.get, "/v1/rooms/\(f.room)/members", token: f.bram)
            let items = try #require(members["items"] as? [[String: Any]])
            #expect(items.count == 2)
            #expect(Set(items.compactMap { $0["role"] as? String }) == ["owner", "member"])
            #expect(items.allSatisfy { $0["institutionName"] is String && $0["email"] == nil })
            let list = try await h.request(.get, "/v1/rooms", token: f.bram)
            #expect((list["items"] as? [[String: Any]])?.first?["id"] as? String == f.room.uuidString.lowercased())

            // A third institution knows nothing of it: 404 for everything.
            let (c, emailC) = try await h.register(schac: "kuleuven.be")
            try await h.approve(c, adminToken: f.admin)
            let carla = try await h.signIn(emailC)
            for (method, path) in [
                (HTTPRequest.Method.get, "/v1/rooms/\(f.room)"), (.get, "/v1/rooms/\(f.room)/members"), (.get, "/v1/rooms/\(f.room)/messages"),
                (.post, "/v1/rooms/\(f.room)/tickets"), (.post, "/v1/rooms/\(f.room)/archive"),
            ] {
                #expect(try await h.request(method, path, token: carla).status == .notFound, "\(method) \(path)")
            }
            #expect(
                try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: carla, json: ["clientId": "x", "body": "hi"]).status == .notFound)
            // A member adds only users of their own institution.
            #expect(
                try await h.request(.post, "/v1/rooms/\(f.room)/members", token: f.ana, json: ["userId": f.bramID.uuidString.lowercased()])
                    .problemFields
                    == ["/userId"])
            let carlaID = try await RoomFixture.userID(h, carla)
            #expect(
                try await h.request(.post, "/v1/rooms/\(f.room)/members", token: f.ana, json: ["userId": carlaID.uuidString.lowercased()])
                    .problemFields
                    == ["/userId"])
            // Members cannot manage; the last owner cannot leave; a member can.
            #expect(try await h.request(.post, "/v1/rooms/\(f.room)/archive", token: f.bram).status == .forbidden)
            #expect(try await h.request(.delete, "/v1/rooms/\(f.room)/members/\(f.anaID)", token: f.ana).status == .conflict)
            // Bad input names its field.
            let bad = try await h.request(.post, "/v1/rooms", token: f.ana, json: ["title": "", "field": "1234"])
            #expect(Set(bad.problemFields) == ["/title", "/field"])
            #expect(try await h.count("SELECT count(*) FROM rooms") == 1)
        }
    }

    @Test func messagesAreIdempotentPagedSearchedAndArchivedRoomsReadOnly() async throws {
        try await Harness.run { h in
            let f = try await RoomFixture.make(h)
            let first = try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "c-1", "body": "Bonjour à tous"])
            #expect(first.status == .created)
            #expect((first["seq"] as? Int) == 1)
            let again = try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "c-1", "body": "Bonjour à tous"])
            #expect(again.status == .ok)
            #expect(again.string("id") == first.string("id"))
            #expect(again["duplicate"] as? Bool == true)
            // Another author may use the same client id.
            let other = try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.bram, json: ["clientId": "c-1", "body": "Hallo"])
            #expect((other["seq"] as? Int) == 2)
            for index in 3...10 {
                _ = try await h.request(
                    .post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "c-\(index)", "body": "Message \(index)"])
            }
            #expect(try await h.count("SELECT count(*) FROM room_messages") == 10)
            let page = try await h.request(.get, "/v1/rooms/\(f.room)/messages?after=2&limit=3", token: f.bram)
            #expect((page["items"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == [3, 4, 5])
            let before = try await h.request(.get, "/v1/rooms/\(f.room)/messages?before=4&limit=2", token: f.bram)
            #expect((before["items"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == [2, 3])
            // Full text, accents and case folded.
            let found = try await h.request(.get, "/v1/rooms/\(f.room)/messages?q=A%20TOUS", token: f.bram)
            #expect((found["items"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == [1])
            #expect(try await h.request(.get, "/v1/rooms/\(f.room)/messages?limit=201", token: f.bram).problemFields == ["limit"])
            // Unread: Bram has read nothing of Ana's nine.
            let room = try await h.request(.get, "/v1/rooms/\(f.room)", token: f.bram)
            #expect(room["unread"] as? Int == 9)
            #expect(try await h.request(.put, "/v1/rooms/\(f.room)/read", token: f.bram, json: ["seq": 10]).status == .noContent)
            #expect((try await h.request(.get, "/v1/rooms/\(f.room)", token: f.bram))["unread"] as? Int == 0)
            // Edit by the author only; delete by a moderator or the author.
            #expect(try await h.request(.patch, "/v1/rooms/\(f.room)/messages/1", token: f.bram, json: ["body": "x"]).status == .forbidden)
            #expect(try await h.request(.patch, "/v1/rooms/\(f.room)/messages/1", token: f.ana, json: ["body": "Bonjour"]).status == .ok)
            #expect(try await h.request(.delete, "/v1/rooms/\(f.room)/messages/2", token: f.ana).status == .noContent)
            // Bad bodies.
            let huge = String(repeating: "é", count: 9000)  // 18,000 bytes
            #expect(
                try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "h", "body": huge]).problemFields == [
                    "/body"
                ])
            #expect(
                try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "", "body": "x"]).problemFields == [
                    "/clientId"
                ])
            // Archived: read-only.
            #expect(try await h.request(.post, "/v1/rooms/\(f.room)/archive", token: f.ana).status == .ok)
            #expect(
                try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "z", "body": "late"]).status == .conflict)
            #expect(try await h.count("SELECT count(*) FROM room_messages") == 10)
        }
    }

    /// The owner mutes a member for some minutes (their messages are refused meanwhile, and the
    /// member list says until when), and unmutes them; a member may not mute.
    @Test func ownersMuteAndUnmuteMembers() async throws {
        try await Harness.run { h in
            let f = try await RoomFixture.make(h)
            let path = "/v1/rooms/\(f.room)/members/\(f.bramID)"
            #expect(try await h.request(.patch, "/v1/rooms/\(f.room)/members/\(f.anaID)", token: f.bram, json: ["muted": true]).status == .forbidden)
            let muted = try await h.request(.patch, path, token: f.ana, json: ["muted": true, "muteMinutes": 5])
            #expect(muted.status == .ok && muted.string("mutedUntil") != nil)
            #expect(
                try await h.count(
                    "SELECT count(*) FROM room_members WHERE muted_until BETWEEN now() + interval '4 minutes' AND now() + interval '6 minutes'") == 1)
            let refused = try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.bram, json: ["clientId": "m1", "body": "Hello?"])
            #expect(refused.status == .forbidden)
            #expect(try await h.request(.patch, path, token: f.ana, json: ["muted": false]).string("mutedUntil") == nil)
            #expect(
                try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.bram, json: ["clientId": "m1", "body": "Hello?"]).status
                    == .created)
        }
    }

    @Test func withoutATenantContextTheApplicationRoleSeesNoRoom() async throws {
        try await Harness.run { h in
            let f = try await RoomFixture.make(h)
            _ = try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "c", "body": "secret"])
            for table in ["rooms", "room_members", "room_messages", "room_invitations", "room_tickets", "room_presence"] {
                #expect(try await h.pool.query(PGQuery(unsafeSQL: "SELECT count(*) FROM \(table)")).scalar(Int.self) == 0, "\(table)")
            }
            for table in ["rooms", "room_members", "room_messages", "room_invitations", "room_tickets", "room_presence"] {
                let forced = try await h.count(
                    "SELECT count(*) FROM pg_class WHERE relname = '\(table)' AND relrowsecurity AND relforcerowsecurity")
                #expect(forced == 1, "\(table)")
            }
        }
    }
}
