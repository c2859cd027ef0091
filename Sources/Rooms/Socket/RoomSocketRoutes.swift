import AccordCore
import AccordCrypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import PGStore
import Synchronization

/// `GET /v1/rooms/{id}/socket`: who may open it, and what it does once open.
///
/// The upgrade (`RoomSocketChannel`) runs the checks first; a request it refuses goes on to the HTTP
/// router, whose route at the same path runs the same checks and answers with their problem (404
/// for a non-member, 401 for a bad or used ticket, 403 for a suspended institution or a foreign
/// origin, 503 while the server stops) — or 426 to a request that asked for no upgrade.
public struct RoomSocketRoutes: Sendable {
    let rooms: RoomService
    let hub: RoomHub
    /// The identity behind a session's token hash (from the identity feature, composed by the server).
    let authenticate: @Sendable ([UInt8]) async throws -> Identity?
    /// Origins allowed to open sockets (`Origin`, when a browser sends it); empty: any.
    let allowedOrigins: Set<String>

    public init(
        rooms: RoomService, hub: RoomHub, allowedOrigins: Set<String>, authenticate: @escaping @Sendable ([UInt8]) async throws -> Identity?
    ) {
        self.rooms = rooms
        self.hub = hub
        self.allowedOrigins = allowedOrigins
        self.authenticate = authenticate
    }

    struct Admission: Sendable {
        let room: UUID
        let identity: Identity
        let name: String
        let after: Int64?
        let afterInvalid: Bool
    }

    /// Runs every check of an upgrade; spends the ticket (if that is how the caller came) only
    /// when all passed and `spend` is set.
    func admit(_ request: Request, roomText: String?, spend: Bool) async throws -> Admission {
        if let origin = request.headers[.origin], !allowedOrigins.isEmpty, !allowedOrigins.contains(origin) {
            throw Problem.forbidden("The origin \(origin.prefix(100)) may not open sockets here.")
        }
        guard let roomText, let room = UUID(uuidString: roomText) else { throw RoomService.notFound }
        let parameters = request.uri.queryParameters
        var sessionHash: [UInt8]
        var ticketHash: Data?
        if let ticket = parameters.get("ticket") {
            let hash = Data(Secrets.sha256(ticket.utf8))
            guard ticket.utf8.count <= 200,
                let peeked = try await rooms.pool.query("SELECT room_id, user_id, session_hash FROM accord_peek_room_ticket(\(hash))")
                    .first((UUID, UUID, Data).self), peeked.0 == room
            else { throw Problem.unauthorized("The ticket is unknown, used or expired; ask for a new one.") }
            sessionHash = Array(peeked.2)
            ticketHash = hash
        } else if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            sessionHash = Secrets.sha256(header.dropFirst(7).utf8)
        } else {
            throw Problem.unauthorized("Open the socket with `Authorization: Bearer <token>` or `?ticket=` from POST /v1/rooms/{id}/tickets.")
        }
        guard let identity = try await authenticate(sessionHash) else { throw Problem.unauthorized("The token is unknown, expired or revoked.") }
        try RoomService.requireMember(identity)
        guard
            let member = try await rooms.pool.readAsTenant(
                identity, "SELECT name FROM room_members WHERE room_id = \(room) AND user_id = \(identity.accountID)"
            ).first(String.self)
        else { throw RoomService.notFound }
        if spend, let ticketHash {
            guard try await rooms.pool.query("SELECT room_id FROM accord_spend_room_ticket(\(ticketHash))").first(UUID.self) != nil else {
                throw Problem.unauthorized("The ticket is unknown, used or expired; ask for a new one.")
            }
        }
        let afterText = parameters.get("after")
        let after = afterText.flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil }
        return Admission(room: room, identity: identity, name: member, after: after, afterInvalid: afterText != nil && after == nil)
    }

    /// The HTTP route at the socket's path: the refusal a failed upgrade deserves, or 426. A refused
    /// upgrade's answer closes the connection (`Connection: close`).
    public func addFallbackRoute(to routes: RouterGroup<AccordRequestContext>) {
        routes.get("rooms/{id}/socket") { request, context -> Response in
            let closing: HTTPFields = request.headers[.upgrade] != nil ? [.connection: "close"] : [:]
            do {
                guard !hub.isStopping else { throw Self.stopping }
                _ = try await admit(request, roomText: context.parameters.get("id"), spend: false)
            } catch let problem as Problem {
                throw problem.with(headers: closing)
            }
            throw Problem(
                type: Problem.type("upgrade-required"), status: .init(code: 426, reasonPhrase: "Upgrade Required"), title: "Upgrade required",
                detail: "This is a WebSocket: connect with an upgrade request.", headers: [.upgrade: "websocket", .connection: "Upgrade"])
        }
    }

    /// The checks of an upgrade request, spending its ticket: the admission, or the refusal.
    func admitUpgrade(_ request: Request, roomText: String) async throws -> Admission {
        guard !hub.isStopping else { throw Self.stopping }
        return try await admit(request, roomText: roomText, spend: true)
    }

    static let stopping = Problem.serviceUnavailable(
        "The server is stopping; open the socket again (another instance, or this one once it is back)."
    ).with(headers: [.retryAfter: "1"])

    // MARK: The open socket

    /// Serves an open socket until it closes: the client's frames, and what the room sends it.
    /// `cut` ends the connection without a close handshake (a client that does not read its close).
    func serve(
        _ admission: Admission, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, cut: @escaping @Sendable () -> Void,
        logger: Logger
    ) async throws {
        let identity = admission.identity
        let connection = hub.attach(room: admission.room, identity: identity, name: admission.name)
        defer { Task { await hub.detach(connection) } }
        // The hello: where the room stands; then the replay, then live messages.
        let (lastSeq, archived) =
            try await rooms.pool.readAsTenant(identity, "SELECT last_seq, archived_at IS NOT NULL FROM rooms WHERE id = \(admission.room)")
            .first((Int64, Bool).self) ?? (Int64(0), false)
        await hub.joinPresence(room: admission.room, user: identity.accountID)
        let online = (try? await hub.online(in: admission.room, as: identity)) ?? []
        connection.enqueue(
            RoomFrames.encode(RoomFrames.Hello(room: admission.room, lastSeq: lastSeq, online: online, archived: archived)))
        var start = admission.after ?? lastSeq
        if admission.afterInvalid || start > lastSeq {
            connection.enqueue(
                RoomFrames.encode(
                    RoomFrames.Resync(
                        reason: admission.afterInvalid ? "after is not a sequence number" : "after is past the room's last message", lastSeq: lastSeq)
                ))
            start = lastSeq
        }
        let replayFrom = start
        enum Loop { case writer, delivery, reader }
        try await withThrowingTaskGroup(of: Loop.self) { group in
            defer {
                connection.finish()
                group.cancelAll()
            }
            group.addTask {
                await connection.write(to: outbound, cut: cut)
                return .writer
            }
            group.addTask {
                await connection.deliver(after: replayFrom, pool: rooms.pool)
                return .delivery
            }
            group.addTask {
                try await read(inbound, connection: connection, admission: admission, logger: logger)
                return .reader
            }
            // The socket is done when the writer is: it has written the server's close (or cut the
            // connection), or the client's side ended and nothing more is to be written.
            while let done = try await group.next() {
                switch done {
                case .writer: return
                case .delivery: continue
                case .reader: if !connection.isClosing { connection.finish() }
                }
            }
        }
    }

    /// The client's frames, one at a time. A malformed frame is answered with an error frame and
    /// never closes the socket.
    func read(_ inbound: WebSocketInboundStream, connection: RoomConnection, admission: Admission, logger: Logger) async throws {
        let decoder = JSONDecoder()
        for try await message in inbound.messages(maxSize: hub.configuration.limits.maxFrameBytes) {
            if connection.isClosing { break }
            guard case .text(let text) = message else {
                connection.enqueue(RoomFrames.encode(RoomFrames.Error(code: "unsupported_frame", message: "send JSON text frames")))
                continue
            }
            guard let frame = try? decoder.decode(RoomFrames.Inbound.self, from: Data(text.utf8)) else {
                connection.enqueue(RoomFrames.encode(RoomFrames.Error(code: "malformed", message: "a frame is a JSON object with a type")))
                continue
            }
            await handle(frame, connection: connection, admission: admission, logger: logger)
        }
    }

    func handle(_ frame: RoomFrames.Inbound, connection: RoomConnection, admission: Admission, logger: Logger) async {
        func error(_ code: String, _ message: String) {
            connection.enqueue(RoomFrames.encode(RoomFrames.Error(code: code, message: message, clientId: frame.clientId)))
        }
        let identity = admission.identity
        do {
            switch frame.type {
            case "send":
                guard let clientID = frame.clientId, let body = frame.body else { return error("malformed", "send needs clientId and body") }
                guard connection.allowSend() else { return error("rate_limited", "at most 20 sends a second; send it again") }
                if let problem = rooms.sendProblem(clientID: clientID, body: body) { return error(problem.code, problem.message) }
                let ack = try await RoomService.mapSendErrors {
                    try await rooms.pool.withTenant(identity) { tx in try await RoomStore.send(admission.room, clientID: clientID, body: body, on: tx)
                    }
                }
                connection.enqueue(RoomFrames.encode(ack))
            case "edit", "delete":
                guard let seq = frame.seq, seq > 0 else { return error("malformed", "\(frame.type) needs the message's seq") }
                if frame.type == "edit" && frame.body == nil { return error("malformed", "edit needs a body") }
                _ = try await rooms.change(message: seq, in: admission.room, newBody: frame.type == "edit" ? frame.body : nil, caller: identity)
            case "typing":
                if connection.allowTyping() { try await hub.typing(in: admission.room, user: identity.accountID, name: admission.name) }
            case "read":
                guard let seq = frame.seq, seq >= 0 else { return error("malformed", "read needs a seq") }
                try await rooms.markRead(seq, in: admission.room, caller: identity)
            case "ping":
                connection.enqueue(RoomFrames.encode(RoomFrames.Pong()))
            default:
                error("unknown_type", "unknown frame type '\(frame.type.prefix(40))'")
            }
        } catch let problem as Problem {
            switch problem.status {
            case .conflict: error("archived", "the room is archived: it is read-only")
            case .forbidden: error(problem.detail?.contains("muted") == true ? "muted" : "forbidden", problem.detail ?? problem.title)
            case .notFound: error("not_found", problem.detail ?? problem.title)
            case .unprocessableContent: error("invalid", problem.detail ?? problem.title)
            default: error("failed", problem.detail ?? problem.title)
            }
        } catch {
            logger.error("room frame failed", metadata: ["error": "\(error)"])
            connection.enqueue(
                RoomFrames.encode(RoomFrames.Error(code: "unavailable", message: "try again shortly", clientId: frame.clientId)))
        }
    }
}
