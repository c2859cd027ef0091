import AccordCore
import Foundation
import Logging
import NIOCore
import PGStore
import ServiceLifecycle
import Synchronization

/// Resolved sessions kept in memory by the token's SHA-256 (never the token), so that a recently
/// seen token needs no database round trip to identify its caller, and `GET /v1/me` none at all.
///
/// Forgets everything on an `accord_identity` notification, on `invalidateAll`, and when the
/// listener's connection changes; serves nothing while not listening; stores no answer read across
/// an invalidation (`Ticket`). An entry lives at most `maxAge`, and never past its session.
public final class IdentityCache: Service, Sendable {
    /// The channel the triggers notify.
    public static let channel = "accord_identity"

    public struct Configuration: Sendable {
        /// The most entries kept; when full, expired entries go first, then everything.
        public var maxEntries: Int
        /// The most bytes of /v1/me bodies kept (a body holds the institution's profile, a few KB);
        /// beyond it, as beyond `maxEntries`.
        public var maxBytes: Int
        /// The longest an entry is served, even without a notification.
        public var maxAge: Duration

        public init(maxEntries: Int = 100_000, maxBytes: Int = 64 << 20, maxAge: Duration = .seconds(60)) {
            self.maxEntries = maxEntries
            self.maxBytes = maxBytes
            self.maxAge = maxAge
        }
    }

    /// What a token resolved to.
    public struct Entry: Sendable {
        public let identity: Identity
        /// The body of `GET /v1/me`.
        public let me: ByteBuffer
        /// When the session expires.
        public let expiresAt: Date

        public init(identity: Identity, me: ByteBuffer, expiresAt: Date) {
            self.identity = identity
            self.me = me
            self.expiresAt = expiresAt
        }
    }

    struct Stored {
        let entry: Entry
        let storedAt: ContinuousClock.Instant
    }

    /// Handed out by a lookup that missed: the answer read afterwards may be stored only if nothing
    /// was invalidated in between.
    public struct Ticket: Sendable {
        let generation: UInt64
        let epoch: Int
    }

    public enum Lookup: Sendable {
        case hit(Entry)
        /// Read the database; store with the ticket (nil: the cache is not live, do not store).
        case miss(Ticket?)
    }

    struct State {
        var entries: [[UInt8]: Stored] = [:]
        /// Bytes of the bodies in `entries`.
        var bytes = 0
        var generation: UInt64 = 0
        var subscribed = false
        /// The listener's epoch the entries were stored under.
        var epoch: Int?
        var hits = 0
        var misses = 0
        var invalidations = 0
    }

    public let configuration: Configuration
    private let listener: PGListener
    private let logger: Logger
    private let state = Mutex(State())

    public init(listener: PGListener, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "accord.identity.cache")) {
        self.listener = listener
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Lookups

    /// The entry for a token hash, if it is live.
    public func lookup(_ tokenHash: [UInt8]) -> Lookup {
        let epoch = listener.connectionEpoch
        let now = Date()
        let clock = ContinuousClock.now
        return state.withLock { state in
            guard state.subscribed, let epoch else { return .miss(nil) }
            if state.epoch != epoch {
                // A new listening connection: whatever was notified in between is lost.
                state.forgetAll()
                state.epoch = epoch
            }
            if let stored = state.entries[tokenHash] {
                if stored.entry.expiresAt > now, clock < stored.storedAt + configuration.maxAge {
                    state.hits += 1
                    return .hit(stored.entry)
                }
                state.remove(tokenHash)
            }
            state.misses += 1
            return .miss(Ticket(generation: state.generation, epoch: epoch))
        }
    }

    /// Remembers what `tokenHash` resolved to, unless something was invalidated since `ticket`.
    public func store(_ tokenHash: [UInt8], _ entry: Entry, ticket: Ticket) {
        let epoch = listener.connectionEpoch
        let stored = Stored(entry: entry, storedAt: .now)
        state.withLock { state in
            guard state.subscribed, state.generation == ticket.generation, epoch == ticket.epoch, state.epoch == ticket.epoch else { return }
            state.remove(tokenHash)
            let size = stored.entry.me.readableBytes
            if state.entries.count >= configuration.maxEntries || state.bytes + size > configuration.maxBytes {
                let now = Date()
                for (key, old) in state.entries where old.entry.expiresAt <= now { state.remove(key) }
                if state.entries.count >= configuration.maxEntries || state.bytes + size > configuration.maxBytes {
                    state.entries.removeAll(keepingCapacity: true)
                    state.bytes = 0
                }
            }
            guard size <= configuration.maxBytes else { return }
            state.entries[tokenHash] = stored
            state.bytes += size
        }
    }

    /// Forgets everything: what a session resolves to has changed. Called after this process
    /// commits such a change (the notification that follows does the same for every instance).
    public func invalidateAll() {
        state.withLock { state in
            state.forgetAll()
            state.invalidations += 1
        }
    }

    /// Whether entries are served: subscribed to the channel, on a listening connection.
    public var isLive: Bool {
        let epoch = listener.connectionEpoch
        return state.withLock { $0.subscribed } && epoch != nil
    }

    public struct Statistics: Sendable, Equatable {
        public var entries: Int
        public var bytes: Int
        public var hits: Int
        public var misses: Int
        public var invalidations: Int
    }

    public var statistics: Statistics {
        state.withLock { Statistics(entries: $0.entries.count, bytes: $0.bytes, hits: $0.hits, misses: $0.misses, invalidations: $0.invalidations) }
    }

    // MARK: The subscription

    /// Subscribes to `accord_identity` and invalidates on every notification, until graceful
    /// shutdown; subscribes again (after a pause) when the subscription fails or ends.
    public func run() async throws {
        await listener.follow(
            channel: Self.channel,
            lost: { error in
                self.setSubscribed(false)
                if let error {
                    self.logger.warning("identity cache cannot subscribe; serving from the database", metadata: ["error": "\(error)"])
                }
            }
        ) { notifications in
            self.setSubscribed(true)
            for await _ in notifications { self.invalidateAll() }
        }
        setSubscribed(false)
    }

    private func setSubscribed(_ subscribed: Bool) {
        state.withLock { state in
            state.subscribed = subscribed
            state.forgetAll()
            state.epoch = nil
        }
    }
}

extension IdentityCache.State {
    /// Forgets every entry; a read that started before cannot store its answer.
    mutating func forgetAll() {
        entries.removeAll(keepingCapacity: true)
        bytes = 0
        generation &+= 1
    }

    mutating func remove(_ key: [UInt8]) {
        if let old = entries.removeValue(forKey: key) { bytes -= old.entry.me.readableBytes }
    }
}
