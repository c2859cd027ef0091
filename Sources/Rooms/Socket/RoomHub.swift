import AccordCore
import Foundation
import Logging
import NIOCore
import PGStore
import ServiceLifecycle
import Synchronization

/// The sockets of this instance, by room, and everything that reaches them: what any instance
/// stores is announced on the channel `accord_rooms` (at commit, in commit order); the hub reads
/// the new messages once per room and hands them to the room's sockets, which fill any gap from
/// the table — so a lost notification delays a message until the next one or the next sweep (every
/// `sweepInterval`), and never loses it. Access changes (`accord_identity`, membership) are checked
/// against every open socket within `revalidationDelay`. Presence lives in `room_presence`, one
/// row per (room, user, instance), refreshed every `presenceInterval` and offline after
/// `presenceTTL` whoever notices (a crashed instance's rows expire).
public final class RoomHub: Service, Sendable {
    public struct Configuration: Sendable {
        public var instance: String
        public var sweepInterval: Duration = .seconds(1)
        public var presenceInterval: Duration = .seconds(10)
        public var presenceTTL: Duration = .seconds(30)
        public var revalidationDelay: Duration = .milliseconds(100)
        public var limits = RoomSocketLimits()

        public init(instance: String = "accord-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8).lowercased())") {
            self.instance = instance
        }
    }

    public static let channel = "accord_rooms"
    static let identityChannel = "accord_identity"

    let pool: PGPool
    let listener: PGListener
    public let configuration: Configuration
    let logger: Logger

    struct RoomState {
        var connections: [Int: RoomConnection] = [:]
        /// The highest sequence handed to this room's sockets.
        var delivered: Int64?
        /// A read of new messages is running; `wanted` is how far the next must go.
        var fetching = false
        var wanted: Int64 = 0
    }

    struct State {
        var rooms: [UUID: RoomState] = [:]
        var nextID = 0
        var revalidationPending = false
        var stopping = false
        /// Sockets removed whose presence is still being left (shutdown waits for them).
        var detaching = 0
        /// The (room, user) pairs that had sockets here when the hub began to stop.
        var pairsAtStop: [(UUID, UUID)] = []
    }

    private let state = Mutex(State())
    /// Messages, slow-consumer closes and dropped events since the hub started.
    public let counters = RoomCounters()

    public init(pool: PGPool, listener: PGListener, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "accord.rooms")) {
        self.pool = pool
        self.listener = listener
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Sockets

    func attach(room: UUID, identity: Identity, name: String) -> RoomConnection {
        let connection = state.withLock { state -> RoomConnection in
            state.nextID += 1
            let connection = RoomConnection(
                id: state.nextID, room: room, identity: identity, name: name, limits: configuration.limits, counters: counters)
            state.rooms[room, default: RoomState()].connections[connection.id] = connection
            return connection
        }
        return connection
    }

    func detach(_ connection: RoomConnection) async {
        connection.finish()
        let last = state.withLock { state -> Bool in
            state.rooms[connection.room]?.connections[connection.id] = nil
            if state.rooms[connection.room]?.connections.isEmpty == true { state.rooms[connection.room] = nil }
            state.detaching += 1
            return state.rooms[connection.room]?.connections.values.contains { $0.identity.accountID == connection.identity.accountID } != true
        }
        if last { await leavePresence([(connection.room, connection.identity.accountID)]) }
        state.withLock { $0.detaching -= 1 }
    }

    /// Marks the user online in the room (a new socket) and tells the room if they just came online.
    func joinPresence(room: UUID, user: UUID) async {
        do {
            let fresh = try await pool.query(
                "SELECT room_id, user_id FROM accord_room_presence_beat(\(configuration.instance), \([room]), \([user]))"
            ).decode((UUID, UUID).self)
            try await announce(fresh, status: "online")
        } catch {
            logger.warning("presence not recorded", metadata: ["error": "\(error)"])
        }
    }

    private func leavePresence(_ pairs: [(UUID, UUID)]) async {
        guard !pairs.isEmpty else { return }
        do {
            let gone = try await pool.query(
                "SELECT room_id, user_id FROM accord_room_presence_leave(\(configuration.instance), \(pairs.map(\.0)), \(pairs.map(\.1)))"
            ).decode((UUID, UUID).self)
            try await announce(gone, status: "offline")
        } catch {
            logger.warning("presence not removed", metadata: ["error": "\(error)"])
        }
    }

    private func announce(_ pairs: [(UUID, UUID)], status: String) async throws {
        for (room, user) in pairs {
            try await pool.query(
                "SELECT pg_notify(\(Self.channel), \(room.uuidString.lowercased() + " p " + user.uuidString.lowercased() + " " + status))")
        }
    }

    /// Who is online in the room (fresh presence rows of any instance).
    func online(in room: UUID, as identity: Identity) async throws -> [UUID] {
        let ttl = Int(configuration.presenceTTL.components.seconds)
        return try await pool.readAsTenant(
            identity, "SELECT DISTINCT user_id FROM room_presence WHERE room_id = \(room) AND seen_at > now() - make_interval(secs => \(ttl))"
        ).decode(UUID.self)
    }

    // MARK: Delivery

    /// New messages up to `seq` in `room`: read them once and hand them to the room's sockets.
    private func messagesArrived(in room: UUID, upTo seq: Int64) {
        let start = state.withLock { state -> Bool in
            guard var roomState = state.rooms[room] else { return false }
            if let delivered = roomState.delivered, seq <= delivered { return false }
            roomState.wanted = max(roomState.wanted, seq)
            if roomState.delivered == nil { roomState.delivered = seq - 1 }
            let start = !roomState.fetching
            roomState.fetching = true
            state.rooms[room] = roomState
            return start
        }
        guard start else { return }
        Task { await self.fetch(room) }
    }

    private func fetch(_ room: UUID) async {
        while true {
            let plan = state.withLock { state -> (after: Int64, upTo: Int64, reader: Identity)? in
                guard var roomState = state.rooms[room], let reader = roomState.connections.values.first?.identity,
                    let delivered = roomState.delivered, delivered < roomState.wanted
                else {
                    state.rooms[room]?.fetching = false
                    return nil
                }
                roomState.fetching = true
                state.rooms[room] = roomState
                return (delivered, roomState.wanted, reader)
            }
            guard let plan else { return }
            do {
                let messages = try await pool.readAsTenant(
                    plan.reader, RoomStore.range(of: room, after: plan.after, upTo: plan.upTo, limit: 1000)
                ).map { row in
                    let message = try RoomStore.message(row)
                    return (seq: message.seq, frame: RoomFrames.encode(RoomFrames.Message(message)))
                }
                let connections = state.withLock { state -> [RoomConnection] in
                    if let last = messages.last?.seq { state.rooms[room]?.delivered = last } else { state.rooms[room]?.delivered = plan.upTo }
                    return Array(state.rooms[room]?.connections.values ?? [:].values)
                }
                if !messages.isEmpty {
                    counters.messages.add(messages.count, ordering: .relaxed)
                    for connection in connections { connection.hand(.messages(messages)) }
                }
            } catch {
                logger.warning("room messages not read; the next sweep retries", metadata: ["room": "\(room)", "error": "\(error)"])
                state.withLock { $0.rooms[room]?.fetching = false }
                return
            }
        }
    }

    /// Hands a frame to every socket of the room (but `except` a user's own).
    private func broadcast(_ frame: ByteBuffer, in room: UUID, droppable: Bool, except user: UUID? = nil) {
        let connections = state.withLock { $0.rooms[room].map { Array($0.connections.values) } ?? [] }
        for connection in connections where connection.identity.accountID != user { connection.hand(.frame(frame, droppable: droppable)) }
    }

    /// An edit or a deletion: the message as it is now, to every socket of the room.
    private func messageChanged(in room: UUID, seq: Int64) async {
        guard let reader = state.withLock({ $0.rooms[room]?.connections.values.first?.identity }) else { return }
        do {
            let rows = try await pool.readAsTenant(reader, RoomStore.one(seq, of: room))
            guard let message = try rows.first.map(RoomStore.message) else { return }
            let frame =
                message.deleted
                ? RoomFrames.encode(RoomFrames.Deleted(seq: seq, id: message.id))
                : RoomFrames.encode(RoomFrames.Edited(seq: seq, id: message.id, body: message.body, editedAt: message.editedAt))
            broadcast(frame, in: room, droppable: false)
        } catch {
            logger.warning("changed message not read", metadata: ["room": "\(room)", "error": "\(error)"])
        }
    }

    /// Someone is typing: to the room's other sockets, dropped first under pressure.
    func typing(in room: UUID, user: UUID, name: String) async throws {
        let payload = room.uuidString.lowercased() + " t " + user.uuidString.lowercased() + " " + String(name.prefix(200))
        try await pool.query("SELECT pg_notify(\(Self.channel), \(payload))")
    }

    // MARK: Notifications

    func handle(_ payload: String) async {
        let parts = payload.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return }
        if parts[0] == "-" {
            requestRevalidation()
            return
        }
        guard let room = UUID(uuidString: String(parts[0])) else { return }
        switch parts[1] {
        case "m": if let seq = Int64(parts[2]) { messagesArrived(in: room, upTo: seq) }
        case "e", "d": if let seq = Int64(parts[2]) { await messageChanged(in: room, seq: seq) }
        case "a": broadcast(RoomFrames.encode(RoomFrames.Archived()), in: room, droppable: false)
        case "t":
            guard let user = UUID(uuidString: String(parts[2])) else { return }
            let name = parts.count > 3 ? String(parts[3]) : ""
            broadcast(RoomFrames.encode(RoomFrames.Typing(user: user, name: name)), in: room, droppable: true, except: user)
        case "p":
            guard let user = UUID(uuidString: String(parts[2])), parts.count > 3 else { return }
            broadcast(RoomFrames.encode(RoomFrames.Presence(user: user, status: String(parts[3]))), in: room, droppable: true)
        default: return
        }
    }

    /// Checks every open socket against the database soon (debounced): closed when its session
    /// ended, its user left the room, or its institution is no longer active.
    func requestRevalidation() {
        let start = state.withLock { state -> Bool in
            guard !state.revalidationPending else { return false }
            state.revalidationPending = true
            return true
        }
        guard start else { return }
        Task {
            try? await Task.sleep(for: configuration.revalidationDelay)
            state.withLock { $0.revalidationPending = false }
            await revalidate()
        }
    }

    func revalidate() async {
        let connections = state.withLock { $0.rooms.values.flatMap { $0.connections.values } }
        guard !connections.isEmpty else { return }
        do {
            let rows = try await pool.query(
                """
                SELECT ordinal FROM accord_room_sockets_allowed(\(connections.map { Self.hex($0.identity.tokenHash) }),
                    \(connections.map(\.room)), \(connections.map(\.identity.accountID)))
                """)
            let allowed = Set(try rows.map { try $0.column(0, as: Int64.self) })
            for (index, connection) in connections.enumerated() where !allowed.contains(Int64(index + 1)) {
                connection.hand(.close(.policyViolation("access ended; lastSeq=\(connection.lastQueued)")))
                connection.close(.policyViolation("access ended"), flush: false)
            }
        } catch {
            logger.warning("sockets not revalidated; retrying", metadata: ["error": "\(error)"])
            requestRevalidation()
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    // MARK: The service

    /// Follows the channels, sweeps for missed messages and keeps presence, until graceful shutdown;
    /// then closes every socket with 1001 once what it was sent is written, and returns when they
    /// are closed (at most 10 s). Run it in a service group after the HTTP server (which stops
    /// first in reverse order would close the sockets with 1000 instead).
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.listener.follow(channel: Self.channel, lost: { _ in self.sweepSoon() }) { notifications in
                    self.sweepSoon()
                    for await notification in notifications { await self.handle(notification.payload) }
                }
            }
            group.addTask {
                await self.listener.follow(channel: Self.identityChannel, lost: { _ in self.requestRevalidation() }) { notifications in
                    for await _ in notifications { self.requestRevalidation() }
                }
            }
            group.addTask { await self.tick() }
            await withGracefulShutdownHandler {
                await group.next()
            } onGracefulShutdown: {
                self.stop()
            }
            group.cancelAll()
        }
        // The sockets close once what they are owed is written; the HTTP server stops after this
        // service (it comes after it in the service group), so their 1001 goes out first.
        // Presence is left here, before the pool closes: what the sockets' own detaching has not
        // removed by the deadline goes with the pairs they had when stopping began.
        let deadline = ContinuousClock.now + .seconds(10)
        while state.withLock({ $0.detaching > 0 || !$0.rooms.isEmpty }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        await leavePresence(state.withLock { $0.pairsAtStop } + localPairs)
    }

    private func sweepSoon() {
        Task { await self.sweep() }
    }

    /// Rooms whose last sequence is past what their sockets were handed: a notification was missed.
    func sweep() async {
        let delivered = state.withLock { state in state.rooms.compactMapValues { $0.delivered } }
        guard !delivered.isEmpty else { return }
        do {
            let rows = try await pool.query("SELECT room_id, last_seq FROM accord_rooms_last_seq(\(Array(delivered.keys)))").decode(
                (UUID, Int64).self)
            for (room, last) in rows where last > (delivered[room] ?? 0) { messagesArrived(in: room, upTo: last) }
        } catch {
            logger.debug("sweep failed", metadata: ["error": "\(error)"])
        }
    }

    private func tick() async {
        var sincePresence = Duration.zero
        while !Task.isCancelled, !state.withLock({ $0.stopping }) {
            try? await Task.sleep(for: configuration.sweepInterval)
            await sweep()
            sincePresence += configuration.sweepInterval
            if sincePresence >= configuration.presenceInterval {
                sincePresence = .zero
                await beat()
            }
        }
    }

    /// Refreshes this instance's presence rows and expires everyone's stale ones.
    func beat() async {
        let pairs = localPairs
        do {
            if !pairs.isEmpty {
                let fresh = try await pool.query(
                    "SELECT room_id, user_id FROM accord_room_presence_beat(\(configuration.instance), \(pairs.map(\.0)), \(pairs.map(\.1)))"
                ).decode((UUID, UUID).self)
                try await announce(fresh, status: "online")
            }
            let ttl = "\(configuration.presenceTTL.components.seconds) seconds"
            let gone = try await pool.query("SELECT room_id, user_id FROM accord_room_presence_expire(\(ttl)::interval)").decode((UUID, UUID).self)
            try await announce(gone, status: "offline")
        } catch {
            // After the pool closed (the server is stopping) there is nothing to refresh.
            if (error as? PGError)?.kind == .poolClosed { return }
            logger.warning("presence not refreshed", metadata: ["error": "\(error)"])
        }
    }

    /// Stops taking sockets and closes every open one with 1001 once its queue is written.
    func stop() {
        let connections = state.withLock { state -> [RoomConnection] in
            state.stopping = true
            state.pairsAtStop = state.rooms.flatMap { room, roomState in
                Set(roomState.connections.values.map(\.identity.accountID)).map { (room, $0) }
            }
            return state.rooms.values.flatMap { $0.connections.values }
        }
        for connection in connections { connection.close(.goingAway, flush: true) }
    }

    var isStopping: Bool { state.withLock { $0.stopping } }

    /// The (room, user) pairs with a socket on this instance: its share of presence.
    private var localPairs: [(UUID, UUID)] {
        state.withLock { state in
            state.rooms.flatMap { room, roomState in Set(roomState.connections.values.map(\.identity.accountID)).map { (room, $0) } }
        }
    }

    /// How many sockets are open here (for tests and metrics).
    public var socketCount: Int { state.withLock { $0.rooms.values.reduce(0) { $0 + $1.connections.count } } }
}
