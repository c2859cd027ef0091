import AccordCore
import AccordTesting
import Foundation
import HTTPTypes
import NIOWebSocket
import PGStore
import Rooms
import Testing

/// The room socket over real TCP, against a real server and database.
/// (Each suite of sockets has a time limit: a socket that hangs fails its test, not the whole run.)
@Suite("Room sockets", .serialized, .timeLimit(.minutes(5)))
struct RoomSocketTests {
    static func live(_ body: @Sendable (Harness) async throws -> Void) async throws {
        try await Harness.run(transport: .sockets, body)
    }

    @Test func helloSendAckAndEveryoneReceivesInOrder() async throws {
        try await Self.live { h in
            let f = try await RoomFixture.make(h)
            let ana = f.socket(h, f.ana)
            let bram = f.socket(h, f.bram)
            defer {
                ana.close()
                bram.close()
            }
            let hello = try await ana.next("hello")
            #expect(hello["protocol"] as? Int == 1)
            #expect(hello["room"] as? String == f.room.uuidString.lowercased())
            #expect(hello["lastSeq"] as? Int == 0)
            _ = try await bram.next("hello")
            for index in 1...5 { ana.send(["type": "send", "clientId": "a-\(index)", "body": "Message \(index)"]) }
            var acks: [Int64] = []
            for _ in 1...5 { acks.append(try #require(try await ana.next("ack").seq)) }
            #expect(acks == [1, 2, 3, 4, 5])
            for client in [ana, bram] {
                var seqs: [Int64] = []
                for _ in 1...5 {
                    let message = try await client.next("message")
                    seqs.append(message.seq!)
                    #expect((message["author"] as? [String: Any])?["id"] as? String == f.anaID.uuidString.lowercased())
                }
                #expect(seqs == [1, 2, 3, 4, 5])
            }
        }
    }

    @Test func resumingAfterADisconnectLosesAndDoublesNothing() async throws {
        try await Self.live { h in
            let f = try await RoomFixture.make(h)
            let ana = f.socket(h, f.ana)
            defer { ana.close() }
            _ = try await ana.next("hello")
            var bram = f.socket(h, f.bram)
            _ = try await bram.next("hello")
            ana.send(["type": "send", "clientId": "1", "body": "one"])
            _ = try await ana.next("ack")
            #expect(try await bram.next("message").seq == 1)
            bram.close()
            // While Bram is away, Ana sends — and Bram's phone retries a send it never saw acknowledged.
            for index in 2...6 { ana.send(["type": "send", "clientId": "\(index)", "body": "message \(index)"]) }
            for _ in 2...6 { _ = try await ana.next("ack") }
            bram = f.socket(h, f.bram, after: 1)
            defer { bram.close() }
            let hello = try await bram.next("hello")
            #expect(hello["lastSeq"] as? Int == 6)
            bram.send(["type": "send", "clientId": "b-1", "body": "from the train"])
            var seqs: [Int64] = []
            while seqs.count < 6 { seqs.append(try #require(try await bram.next("message").seq)) }
            #expect(seqs == [2, 3, 4, 5, 6, 7])
            let firstAck = try await bram.next("ack")
            // The same client id again, on a new socket: the original ack, nothing stored.
            bram.close()
            let again = f.socket(h, f.bram, after: 7)
            defer { again.close() }
            _ = try await again.next("hello")
            again.send(["type": "send", "clientId": "b-1", "body": "from the train"])
            let secondAck = try await again.next("ack")
            #expect(secondAck["id"] as? String == firstAck["id"] as? String)
            #expect(secondAck["duplicate"] as? Bool == true)
            #expect(try await h.count("SELECT count(*) FROM room_messages") == 7)
        }
    }

    @Test func badFramesGetErrorsAndOnlyTheProtocolCloses() async throws {
        try await Self.live { h in
            let f = try await RoomFixture.make(h)
            let ana = f.socket(h, f.ana)
            _ = try await ana.next("hello")
            ana.sendRaw("{not json")
            #expect(try await ana.next("error")["code"] as? String == "malformed")
            ana.send(["type": "dance"])
            #expect(try await ana.next("error")["code"] as? String == "unknown_type")
            ana.send(["type": "send", "clientId": "e", "body": "   "])
            #expect(try await ana.next("error")["code"] as? String == "empty_body")
            ana.send(["type": "send", "clientId": "big", "body": String(repeating: "é", count: 9000)])
            #expect(try await ana.next("error")["code"] as? String == "body_too_large")
            ana.send(["type": "ping"])
            _ = try await ana.next("pong")
            // Still open: a send works.
            ana.send(["type": "send", "clientId": "ok", "body": "still here"])
            #expect(try await ana.next("ack").seq == 1)
            // A frame over the limit closes with 1009.
            ana.sendRaw(#"{"type":"send","clientId":"x","body":""# + String(repeating: "a", count: 70_000) + #""}"#)
            let closed = try await ana.closed()
            #expect(closed?.closeCode == .messageTooLarge)
        }
    }

    @Test func nonMembersAndBadTicketsAreRefusedBeforeTheUpgrade() async throws {
        try await Self.live { h in
            let f = try await RoomFixture.make(h)
            let (c, emailC) = try await h.register(schac: "kuleuven.be")
            try await h.approve(c, adminToken: f.admin)
            let carla = try await h.signIn(emailC)
            let upgrade: HTTPFields = [
                .connection: "Upgrade", .upgrade: "websocket", HTTPField.Name("Sec-WebSocket-Version")!: "13",
                HTTPField.Name("Sec-WebSocket-Key")!: "dGhlIHNhbXBsZSBub25jZQ==",
            ]
            // Refused before the upgrade, with the refusal's status and problem.
            let refused = try await h.request(.get, "/v1/rooms/\(f.room)/socket", token: carla, headers: upgrade)
            #expect(refused.status == .notFound)
            #expect(refused.headers[.contentType] == "application/problem+json")
            #expect(refused.string("detail") == "No such room.")
            #expect(refused.headers[.upgrade] == nil)
            let unknownToken = try await h.request(.get, "/v1/rooms/\(f.room)/socket", token: "not-a-session", headers: upgrade)
            #expect(unknownToken.status == .unauthorized)
            #expect(unknownToken.headers[.contentType] == "application/problem+json")
            // Tickets: single use, for their room.
            let ticket = try #require((try await h.request(.post, "/v1/rooms/\(f.room)/tickets", token: f.bram)).string("ticket"))
            let socket = RoomSocketClient(port: h.port!, path: "/v1/rooms/\(f.room)/socket?ticket=\(ticket)")
            defer { socket.close() }
            _ = try await socket.next("hello")
            let reused = RoomSocketClient(port: h.port!, path: "/v1/rooms/\(f.room)/socket?ticket=\(ticket)")
            #expect(try await reused.failed() != nil)
            #expect(try await h.request(.get, "/v1/rooms/\(f.room)/socket?ticket=\(ticket)", headers: upgrade).status == .unauthorized)
            // A foreign origin.
            var foreignUpgrade = upgrade
            foreignUpgrade[.origin] = "https://evil.example"
            let foreign = RoomSocketClient(
                port: h.port!, path: "/v1/rooms/\(f.room)/socket", headers: [.authorization: "Bearer \(f.ana)", .origin: "https://evil.example"])
            #expect(try await foreign.failed() != nil)
            #expect(
                try await h.request(.get, "/v1/rooms/\(f.room)/socket", token: f.ana, headers: foreignUpgrade).status == .forbidden)
            // No upgrade asked: 426.
            #expect(try await h.request(.get, "/v1/rooms/\(f.room)/socket", token: f.ana).status.code == 426)
        }
    }

    @Test func suspensionAndRemovalCloseOpenSockets() async throws {
        try await Self.live { h in
            let f = try await RoomFixture.make(h)
            let ana = f.socket(h, f.ana)
            let bram = f.socket(h, f.bram)
            defer { ana.close() }
            _ = try await ana.next("hello")
            _ = try await bram.next("hello")
            let suspended = try await h.request(
                .post, "/v1/admin/institutions/\(f.institutionB)/suspend", token: f.admin, json: ["reason": "membership fee unpaid"])
            #expect(suspended.status == .ok)
            let closed = try await bram.closed()
            #expect(closed?.closeCode == .policyViolation)
            // Ana's stays open.
            ana.send(["type": "ping"])
            _ = try await ana.next("pong")
            // Reinstated: Bram signs in again and the room is his as before (nothing was deleted).
            let reinstated = try await h.request(
                .post, "/v1/admin/institutions/\(f.institutionB)/reinstate", token: f.admin, json: ["reason": "fee paid"])
            #expect(reinstated.status == .ok)
            let back = f.socket(h, try await h.signIn("intl@uva.nl"))
            defer { back.close() }
            _ = try await back.next("hello")
        }
    }

    @Test func aRemovedMembersSocketCloses() async throws {
        try await Self.live { h in
            let f = try await RoomFixture.make(h)
            let bram = f.socket(h, f.bram)
            _ = try await bram.next("hello")
            #expect(try await h.request(.delete, "/v1/rooms/\(f.room)/members/\(f.bramID)", token: f.ana).status == .noContent)
            let closed = try await bram.closed()
            #expect(closed?.closeCode == .policyViolation)
            #expect(try await h.request(.get, "/v1/rooms/\(f.room)", token: f.bram).status == .notFound)
        }
    }

    @Test func presenceComesAndGoes() async throws {
        try await Self.live { h in
            let f = try await RoomFixture.make(h)
            let ana = f.socket(h, f.ana)
            defer { ana.close() }
            let hello = try await ana.next("hello")
            #expect(hello["online"] as? [String] == [f.anaID.uuidString.lowercased()])
            let bram = f.socket(h, f.bram)
            _ = try await bram.next("hello")
            var online = try await ana.next("presence")
            while online["user"] as? String != f.bramID.uuidString.lowercased() { online = try await ana.next("presence") }
            #expect(online["status"] as? String == "online")
            bram.close()
            let offline = try await ana.next("presence")
            #expect(offline["user"] as? String == f.bramID.uuidString.lowercased())
            #expect(offline["status"] as? String == "offline")
        }
    }
}

@Suite("Room sockets under stress", .serialized, .timeLimit(.minutes(5)))
struct RoomSocketStressTests {
    @Test func twoInstancesAreOneRoomAndAClientResumesOnTheOtherWhenOneDies() async throws {
        try await Harness.run(transport: .sockets) { h in
            let f = try await RoomFixture.make(h)
            let second = try await h.startInstance("instance-2")
            let ana = f.socket(h, f.ana)
            defer { ana.close() }
            _ = try await ana.next("hello")
            let bramFirst = RoomSocketClient(
                port: second.port, path: "/v1/rooms/\(f.room)/socket", headers: [.authorization: "Bearer \(f.bram)"])
            _ = try await bramFirst.next("hello")
            // Ana sends on instance 1; Bram reads on instance 2.
            let sender = Task {
                for index in 1...30 {
                    ana.send(["type": "send", "clientId": "m\(index)", "body": "message \(index)"])
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            var seen: [Int64] = []
            while seen.count < 10 { seen.append(try #require(try await bramFirst.next("message").seq)) }
            // Instance 2 dies mid-stream; whatever reached Bram before it counts.
            await second.kill()
            while let late = try await bramFirst.poll("message", timeout: .milliseconds(200)) { seen.append(late.seq!) }
            bramFirst.close()
            let bram = f.socket(h, f.bram, after: seen.last!)
            defer { bram.close() }
            _ = try await bram.next("hello")
            try await sender.value
            while seen.last! < 30 { seen.append(try #require(try await bram.next("message").seq)) }
            #expect(seen == Array(1...30), "every message exactly once, in order: \(seen)")
        }
    }

    /// Limits under which only the queue closes a socket: no ping timeout, no cut.
    static func queueLimits(closeTimeout: Duration = .seconds(120)) -> RoomSocketLimits {
        var limits = RoomSocketLimits()
        // The fast reader shares the test process (and, in CI, the machine) with the server: room
        // enough that a busy scheduler does not make it a slow consumer too.
        limits.softQueueBytes = 16 * 1024
        limits.hardQueueBytes = 512 * 1024
        limits.pingInterval = .seconds(300)
        limits.closeTimeout = closeTimeout
        return limits
    }

    /// Posts 12 KiB messages until the server has closed a slow consumer (however large the
    /// kernel's socket buffers are), then `extra` more; returns how many were posted.
    static func postUntilASlowConsumerIsClosed(_ h: Harness, _ f: RoomFixture, extra: Int) async throws -> Int {
        let body = String(repeating: "x", count: 12 * 1024)
        var posted = 0
        func post() async throws {
            posted += 1
            let sent = try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "s\(posted)", "body": body])
            try #require(sent.status == .created)
        }
        while h.roomHub.counters.slowConsumerCloses.load(ordering: .relaxed) == 0 {
            try #require(posted < 4000, "48 MB posted and no socket was closed as a slow consumer")
            try await post()
        }
        for _ in 0..<extra { try await post() }
        return posted
    }

    @Test func aClientThatCannotKeepUpIsClosedWithoutHoldingUpTheOthers() async throws {
        try await Harness.run(transport: .sockets, roomLimits: Self.queueLimits()) { h in
            let f = try await RoomFixture.make(h)
            let slow = f.socket(h, f.bram, reading: false)
            let fast = f.socket(h, f.ana)
            defer { fast.close() }
            _ = try await fast.next("hello")
            while h.roomHub.socketCount < 2 { try await Task.sleep(for: .milliseconds(10)) }
            let count = try await Self.postUntilASlowConsumerIsClosed(h, f, extra: 50)
            var received: [Int64] = []
            while received.count < count { received.append(try #require(try await fast.next("message").seq)) }
            #expect(received == Array(1...Int64(count)), "the fast reader got every message, in order")
            // The slow one gets what was written before its close, in order, then the close with
            // the last sequence it was sent: where it resumes.
            slow.startReading()
            let closed = try await slow.closed()
            #expect(closed?.closeCode == .policyViolation)
            let reason = closed?.reason ?? ""
            #expect(reason.hasPrefix("slow consumer; lastSeq="), "\(reason)")
            let lastSeq = try #require(Int64(reason.dropFirst("slow consumer; lastSeq=".count)))
            // (Its hello may have come after the first messages, under load.)
            let first = try #require(slow.drain("hello").first?["lastSeq"] as? NSNumber).int64Value + 1
            let got = slow.drain("message").compactMap(\.seq)
            #expect(first < lastSeq && lastSeq < Int64(count))
            #expect(got == Array(first...lastSeq), "messages \(first)...\(lastSeq) exactly, got \(got.count) ending \(got.last ?? 0)")
        }
    }

    @Test func aClientThatReadsNothingIsCutOffOnceItsCloseIsDue() async throws {
        try await Harness.run(transport: .sockets, roomLimits: Self.queueLimits(closeTimeout: .seconds(1))) { h in
            let f = try await RoomFixture.make(h)
            let slow = f.socket(h, f.bram, reading: false)
            defer { slow.close() }
            let fast = f.socket(h, f.ana)
            defer { fast.close() }
            _ = try await fast.next("hello")
            while h.roomHub.socketCount < 2 { try await Task.sleep(for: .milliseconds(10)) }
            _ = try await Self.postUntilASlowConsumerIsClosed(h, f, extra: 0)
            // Its close cannot be written (it reads nothing): a second later the server lets go.
            let deadline = ContinuousClock.now + .seconds(30)
            while h.roomHub.socketCount > 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(h.roomHub.socketCount == 1, "the socket that reads nothing is released")
            // The other is served as before.
            let sent = try await h.request(.post, "/v1/rooms/\(f.room)/messages", token: f.ana, json: ["clientId": "after", "body": "still here"])
            #expect(sent.status == .created)
            while try await fast.next("message")["body"] as? String != "still here" {}
        }
    }
}

@Suite("Room sockets when a server stops", .timeLimit(.minutes(5)))
struct RoomSocketShutdownTests {
    @Test func aStoppingServerAcknowledgesThenClosesWith1001() async throws {
        try await Harness.run(transport: .sockets) { h in
            let f = try await RoomFixture.make(h)
            let second = try await h.startInstance("instance-2")
            let bram = RoomSocketClient(port: second.port, path: "/v1/rooms/\(f.room)/socket", headers: [.authorization: "Bearer \(f.bram)"])
            _ = try await bram.next("hello")
            bram.send(["type": "send", "clientId": "last-words", "body": "before the restart"])
            _ = try await bram.next("ack")
            await second.stop()
            let closed = try await bram.closed()
            #expect(closed?.closeCode == .goingAway)
            // And presence left with it.
            #expect(try await h.count("SELECT count(*) FROM room_presence WHERE instance = 'instance-2'") == 0)
        }
    }
}
