import AccordCore
import DequeModule
import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import PGStore
import Synchronization

/// One open socket of a room: what it has been sent, what waits to be sent, and its limits.
///
/// Three loops serve it: `deliver` (replay from the table, then what the hub hands over, in
/// sequence order without gap or duplicate: a gap is filled from the table), `write` (drains the
/// outbound queue into the socket; the only place that waits on the client), and the handler's
/// read loop (the client's frames, one at a time). Nothing the hub or another socket does waits
/// on this socket: handing over is an `AsyncStream` yield and a bounded enqueue. A close is done
/// within `closeTimeout` of being decided, whether or not the client reads.
final class RoomConnection: Sendable {
    let id: Int
    let room: UUID
    let identity: Identity
    let name: String
    let limits: RoomSocketLimits
    /// The hub's counters, for metrics.
    let counters: RoomCounters

    /// What the hub hands over, in the order it happened.
    enum Event: Sendable {
        /// New messages, each encoded once for every socket of the room.
        case messages([(seq: Int64, frame: ByteBuffer)])
        case frame(ByteBuffer, droppable: Bool)
        case close(RoomCloseCode)
    }

    let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    /// Signalled when a close is decided (and finished with the socket).
    private let closeDecided: AsyncStream<Void>.Continuation
    private let closeDecisions: AsyncStream<Void>

    struct State {
        var queue = Deque<(frame: ByteBuffer, seq: Int64?)>()
        var queuedBytes = 0
        /// The highest sequence queued for the client (replayed or live).
        var lastQueued: Int64 = 0
        /// The highest sequence written to the socket.
        var lastWritten: Int64 = 0
        var closing: RoomCloseCode?
        /// Whether the close waits for the queue to be written (else what is queued is dropped).
        var flushing = false
        /// When the close was decided: it is done `closeTimeout` later at the latest.
        var closingSince = ContinuousClock.now
        var sends = TokenBucket(rate: 20, burst: 20)
        var typing = TokenBucket(rate: 1, burst: 2)
        var droppedEphemeral = 0
    }

    private let state = Mutex(State())

    init(id: Int, room: UUID, identity: Identity, name: String, limits: RoomSocketLimits, counters: RoomCounters = RoomCounters()) {
        self.counters = counters
        self.id = id
        self.room = room
        self.identity = identity
        self.name = name
        self.limits = limits
        (events, eventSink) = AsyncStream.makeStream(of: Event.self)
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (closeDecisions, closeDecided) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Handing over (never waits)

    func hand(_ event: Event) { eventSink.yield(event) }

    /// Queues a frame for the client. A droppable one (typing, presence) is dropped past the soft
    /// limit; past the hard limit the client cannot keep up and is closed with 1008 and the last
    /// sequence it was sent, from which it can resume.
    func enqueue(_ frame: ByteBuffer, seq: Int64? = nil, droppable: Bool = false) {
        let (accepted, closed) = state.withLock { state -> (Bool, Bool) in
            guard state.closing == nil else { return (false, false) }
            let size = frame.readableBytes
            if droppable, state.queuedBytes + size > limits.softQueueBytes {
                state.droppedEphemeral += 1
                counters.ephemeralDropped.add(1, ordering: .relaxed)
                return (false, false)
            }
            if state.queuedBytes + size > limits.hardQueueBytes {
                counters.slowConsumerCloses.add(1, ordering: .relaxed)
                state.closing = .slowConsumer
                state.closingSince = .now
                state.queue.removeAll()
                state.queuedBytes = 0
                return (true, true)
            }
            state.queue.append((frame, seq))
            state.queuedBytes += size
            if let seq { state.lastQueued = max(state.lastQueued, seq) }
            return (true, false)
        }
        guard accepted else { return }
        wake.yield()
        if closed { closeDecided.yield() }
    }

    /// Closes the socket once what is queued is written (a close for access or pressure drops the
    /// queue: nothing more is owed).
    func close(_ code: RoomCloseCode, flush: Bool) {
        state.withLock { state in
            guard state.closing == nil else { return }
            state.closing = code
            state.flushing = flush
            state.closingSince = .now
            if !flush {
                state.queue.removeAll()
                state.queuedBytes = 0
            }
        }
        wake.yield()
        closeDecided.yield()
    }

    var isClosing: Bool { state.withLock { $0.closing != nil } }

    /// Whether one more send fits in the rate (20 a second, in bursts of 20).
    func allowSend() -> Bool { state.withLock { $0.sends.take() } }
    func allowTyping() -> Bool { state.withLock { $0.typing.take() } }

    var lastQueued: Int64 { state.withLock { $0.lastQueued } }

    // MARK: The loops

    /// Replays what came after `after` (up to the room's last sequence when it started), then
    /// delivers what the hub hands over, filling any gap from the table, until the socket closes.
    func deliver(after: Int64, pool: PGPool) async {
        do {
            state.withLock { $0.lastQueued = after }
            try await catchUp(to: nil, pool: pool)
            for await event in events {
                switch event {
                case .messages(let messages):
                    let fresh = messages.filter { $0.seq > lastQueued }
                    guard let first = fresh.first else { continue }
                    if first.seq > lastQueued + 1 { try await catchUp(to: first.seq - 1, pool: pool) }
                    for message in fresh where message.seq > lastQueued { enqueue(message.frame, seq: message.seq) }
                case .frame(let frame, let droppable):
                    enqueue(frame, droppable: droppable)
                case .close(let code):
                    close(code, flush: false)
                }
                if isClosing { break }
            }
        } catch {
            close(.tryAgainLater("the room's history could not be read; resume later"), flush: true)
        }
    }

    /// Queues the stored messages after `lastQueued`, up to `upTo` (nil: all there are).
    private func catchUp(to upTo: Int64?, pool: PGPool) async throws {
        while !isClosing {
            let query = RoomStore.range(of: room, after: lastQueued, upTo: upTo, limit: limits.replayPage)
            let page = try await pool.readAsTenant(identity, query).map(RoomStore.message)
            for message in page { enqueue(RoomFrames.encode(RoomFrames.Message(message)), seq: message.seq) }
            if page.count < limits.replayPage { return }
        }
    }

    /// Writes queued frames to the socket until the connection closes, then closes the socket with
    /// the protocol's code; returns when the close is written, or when the socket is gone. A close
    /// that drops the queue (access ended, a slow consumer) abandons the frame being written, so
    /// the close goes out next; one that flushes gets `closeTimeout` for the queue and the close
    /// together. When the client does not take the close in time, `cut` ends the connection.
    func write(to outbound: WebSocketOutboundWriter, cut: @Sendable () -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.drain(to: outbound) }
            group.addTask { await self.queueAbandoned() }
            _ = await group.next()
            group.cancelAll()
        }
        guard let deadline = state.withLock({ $0.closing == nil ? nil : $0.closingSince + limits.closeTimeout }) else { return }
        let (code, reason) = (closeCode, closeReason)
        let closed = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await outbound.close(code, reason: reason)) != nil }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !closed { cut() }
    }

    /// Writes queued frames until closing with nothing left (or the socket is gone).
    private func drain(to outbound: WebSocketOutboundWriter) async throws {
        for await _ in wakes {
            while true {
                let next = state.withLock { state -> (frame: ByteBuffer, seq: Int64?)?? in
                    if let first = state.queue.popFirst() {
                        state.queuedBytes -= first.frame.readableBytes
                        return .some(first)
                    }
                    return state.closing == nil ? .none : .some(nil)
                }
                guard let item = next else { break }  // nothing queued: wait for a wake
                guard let (frame, seq) = item else { return }  // closing, and nothing left to write
                try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: frame)))
                if let seq { state.withLock { $0.lastWritten = max($0.lastWritten, seq) } }
            }
        }
    }

    /// Returns when the queue is to be abandoned: at once for a close that drops it, at the close's
    /// deadline for one that flushes it; never while the socket stays open.
    private func queueAbandoned() async {
        for await _ in closeDecisions {
            guard let (flushing, since) = state.withLock({ $0.closing == nil ? nil : ($0.flushing, $0.closingSince) }) else { continue }
            if flushing { try? await Task.sleep(until: since + limits.closeTimeout) }
            return
        }
    }

    private var closeCode: WebSocketErrorCode {
        switch state.withLock({ $0.closing }) {
        case .goingAway: .goingAway
        case .policyViolation, .slowConsumer: .policyViolation
        case .tryAgainLater: WebSocketErrorCode(codeNumber: 1013)
        case nil: .normalClosure
        }
    }

    private var closeReason: String? {
        switch state.withLock({ $0.closing }) {
        case .goingAway: "server shutting down; resume elsewhere"
        // Read when the close is written: a frame that was being written may have completed.
        case .slowConsumer: "slow consumer; lastSeq=\(state.withLock { $0.lastWritten })"
        case .policyViolation(let reason), .tryAgainLater(let reason): String(reason.prefix(120))
        case nil: nil
        }
    }

    /// Ends the delivery and write loops (the socket is gone).
    func finish() {
        eventSink.finish()
        wake.finish()
        closeDecided.finish()
    }
}

/// The limits of one socket.
public struct RoomSocketLimits: Sendable {
    /// Past this many bytes waiting to be written, typing and presence are dropped.
    public var softQueueBytes = 256 * 1024
    /// Past this many, the socket is closed (1008) with the last sequence it was sent.
    public var hardQueueBytes = 2 * 1024 * 1024
    /// Messages read from the table per query when replaying.
    public var replayPage = 500
    /// The largest frame a client may send (a frame over it closes the socket with 1009).
    public var maxFrameBytes = 64 * 1024
    /// How often the server pings; a client that has not answered one by the next is closed (1001).
    public var pingInterval: Duration = .seconds(10)
    /// How long a decided close may take: what a closing socket is owed and its close frame must
    /// be written by then, or the connection is cut.
    public var closeTimeout: Duration = .seconds(5)

    public init() {}
}

/// A rate: `rate` tokens a second, at most `burst` saved up.
struct TokenBucket {
    let rate: Double
    let burst: Double
    var tokens: Double
    var last = ContinuousClock.now

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
    }

    mutating func take() -> Bool {
        let now = ContinuousClock.now
        let elapsed = now - last
        last = now
        tokens = min(burst, tokens + rate * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// What the hub counts for operators since it started (see docs/operations.md).
public final class RoomCounters: Sendable {
    /// New messages handed to this instance's sockets (each counted once, however many sockets).
    public let messages = Atomic<Int>(0)
    /// Sockets closed because their client could not keep up.
    public let slowConsumerCloses = Atomic<Int>(0)
    /// Typing and presence events dropped for a socket under pressure.
    public let ephemeralDropped = Atomic<Int>(0)

    public init() {}
}
