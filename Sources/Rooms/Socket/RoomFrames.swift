import AccordCore
import Foundation
import NIOCore

/// The frames of the rooms protocol (docs/rooms-protocol.md), version `RoomFrames.version`.
enum RoomFrames {
    static let version = 1

    /// What a client sends: `type` says which fields matter.
    struct Inbound: Decodable {
        var type: String
        var clientId: String?
        var body: String?
        var seq: Int64?
    }

    struct Hello: Encodable {
        var type = "hello"
        var `protocol` = RoomFrames.version
        var room: UUID
        var lastSeq: Int64
        var online: [UUID]
        var archived: Bool
    }

    struct Message: Encodable {
        var type = "message"
        var seq: Int64
        var id: UUID
        var clientId: String
        var author: MessageAuthor
        var body: String
        var sentAt: String
        var editedAt: String?
        var deleted: Bool

        init(_ message: RoomMessage) {
            (seq, id, clientId, author, body, sentAt, editedAt, deleted) = (
                message.seq, message.id, message.clientId, message.author, message.body, message.sentAt, message.editedAt, message.deleted
            )
        }
    }

    struct Edited: Encodable {
        var type = "edited"
        var seq: Int64
        var id: UUID
        var body: String
        var editedAt: String?
    }

    struct Deleted: Encodable {
        var type = "deleted"
        var seq: Int64
        var id: UUID
    }

    struct Typing: Encodable {
        var type = "typing"
        var user: UUID
        var name: String
    }

    struct Presence: Encodable {
        var type = "presence"
        var user: UUID
        var status: String
    }

    struct Archived: Encodable {
        var type = "archived"
    }

    struct Resync: Encodable {
        var type = "resync"
        var reason: String
        var lastSeq: Int64
    }

    struct Pong: Encodable {
        var type = "pong"
    }

    struct Error: Encodable {
        var type = "error"
        var code: String
        var message: String
        var clientId: String?
    }

    /// A frame's JSON, ready to be written to any number of sockets (a `ByteBuffer` shares its
    /// storage: a message for a thousand sockets is encoded and held once).
    static func encode(_ frame: some Encodable) -> ByteBuffer {
        guard let bytes = try? WireEncoder().encode(frame) else {
            return ByteBuffer(string: #"{"type":"error","code":"internal","message":"encoding"}"#)
        }
        return ByteBuffer(bytes: bytes)
    }
}

/// The close codes of the protocol.
enum RoomCloseCode {
    /// The server is stopping (1001, going away): resume on another instance.
    case goingAway
    /// Access ended (session revoked, member removed, institution suspended) (1008, policy
    /// violation).
    case policyViolation(String)
    /// The client could not keep up with what was sent (1008, with the last sequence written).
    case slowConsumer
    /// Try again later (1013).
    case tryAgainLater(String)
}
