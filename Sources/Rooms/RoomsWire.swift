import AccordCore
import Foundation

/// A room as its members see it.
public struct Room: Codable, Sendable {
    public var id: UUID
    public var title: String
    public var topic: String?
    /// An ISCED-F 2013 code.
    public var field: String?
    /// The creator's institution.
    public var institutionId: UUID
    public var createdBy: UUID?
    /// The caller's role in the room.
    public var role: RoomRole
    /// Archived rooms are read-only.
    public var archived: Bool
    /// The sequence of the room's last message (0: none yet).
    public var lastSeq: Int64
    /// Messages of others after the caller's read marker (counted up to `RoomStore.unreadCap`).
    public var unread: Int
    public var lastReadSeq: Int64
    public var createdAt: String
    public var updatedAt: String
}

/// A member's role in a room: owners do everything, moderators manage members and messages,
/// members write.
public enum RoomRole: String, Codable, Sendable, CaseIterable {
    case owner, moderator, member

    var manages: Bool { self != .member }
}

/// A member of a room, as the room's other members see them: a name and an institution, nothing
/// else of another institution.
public struct RoomMember: Codable, Sendable {
    public var userId: UUID
    public var name: String
    public var institutionId: UUID
    public var institutionName: String
    public var role: RoomRole
    public var mutedUntil: String?
    public var joinedAt: String
}

/// Who wrote a message, as it was when they wrote it.
public struct MessageAuthor: Codable, Sendable {
    public var id: UUID?
    public var name: String
    /// The author's institution's id.
    public var institution: UUID
    public var institutionName: String
}

/// A message of a room.
public struct RoomMessage: Codable, Sendable {
    public var seq: Int64
    public var id: UUID
    public var clientId: String
    public var author: MessageAuthor
    /// Empty once deleted.
    public var body: String
    public var sentAt: String
    public var editedAt: String?
    public var deleted: Bool
}

/// What a send answers, over the socket and over HTTP alike.
public struct MessageAck: Codable, Sendable {
    public var type = "ack"
    public var clientId: String
    public var seq: Int64
    public var id: UUID
    /// True when the client id had been sent before: nothing new was stored.
    public var duplicate: Bool
}

/// An invitation into a room, for a user of another institution.
public struct RoomInvitation: Codable, Sendable {
    public var id: UUID
    public var roomId: UUID
    public var roomTitle: String
    public var email: String
    public var status: String
    public var createdAt: String
    public var expiresAt: String
}

/// A single-use ticket that opens the room's socket within 30 seconds.
public struct RoomTicket: Codable, Sendable {
    public var ticket: String
    public var expiresAt: String
}

/// The body of `POST /v1/rooms` and `PATCH /v1/rooms/{id}`.
public struct RoomInput: Codable, Sendable {
    public var title: String?
    public var topic: String?
    public var field: String?
}

/// The body of `POST /v1/rooms/{id}/messages`.
public struct SendRequest: Codable, Sendable {
    public var clientId: String
    public var body: String
}
