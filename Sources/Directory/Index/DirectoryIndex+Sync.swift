import AccordCore
import CAccordSystem
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex {
    /// Subscribes to `accord_directory`, loads everything, then applies each notified change, until
    /// graceful shutdown; subscribes again (after a pause) when the subscription or a load fails.
    public func run() async throws {
        await listener.follow(
            channel: Self.channel,
            lost: { error in
                // Notifications may have been missed: nothing is served until everything is read again.
                self.state.withLock { $0.reloadRequested = true }
                if let error {
                    self.logger.warning("directory index cannot follow the database; searching with SQL", metadata: ["error": "\(error)"])
                }
            }
        ) { notifications in
            let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            self.state.withLock { $0.wake = wake.continuation }
            wake.continuation.yield()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await notification in notifications { self.note(notification.payload) }
                }
                group.addTask {
                    for await _ in wake.stream { try await self.synchronize() }
                }
                group.addTask {
                    // A new listener connection sends no notification: look for one.
                    while true {
                        try await Task.sleep(for: .milliseconds(250))
                        wake.continuation.yield()
                    }
                }
                // Either ends only when the listener shuts down or a read fails.
                _ = try await group.next()
                group.cancelAll()
            }
        }
        state.withLock { $0.loaded = false }
        box.write { $0 = nil }
    }

    /// Notes a notification's payload: ids to read again, or `*`.
    func note(_ payload: String) {
        let wake = state.withLock { state -> AsyncStream<Void>.Continuation? in
            state.sequence += 1
            let parts = payload.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let version = Int64(parts[0]) else {
                state.reloadRequested = true  // not a payload of ours: be safe
                state.pending.removeAll()
                return state.wake
            }
            state.notified = max(state.notified, version)
            if parts[1] == "*" {
                state.reloadRequested = true
            } else {
                for part in parts[1].split(separator: ",") {
                    if let id = UUID(uuidString: String(part)) {
                        state.pending[id] = state.sequence
                    } else {
                        state.reloadRequested = true
                    }
                }
                if state.pending.count > configuration.maxPending { state.reloadRequested = true }
            }
            if state.reloadRequested { state.pending.removeAll() }
            return state.wake
        }
        wake?.yield()
    }

    /// One step: a full load when the index has none, follows another connection, was told to, or
    /// has too many dead slots; else the pending changes.
    func synchronize() async throws {
        while true {
            guard let epoch = listener.connectionEpoch else { return }
            enum Step {
                case reload
                case apply([UUID: UInt64])
                case done
            }
            // This task is the only writer, so the box does not change under this check.
            let tooManyDead = box.read { store in store.map { $0.ids.count - $0.liveCount > max(10_000, $0.liveCount / 4) } ?? false }
            let step = state.withLock { state -> Step in
                if !state.loaded || state.epoch != epoch || state.reloadRequested || tooManyDead {
                    state.reloadRequested = false
                    state.reloading = true
                    state.loaded = false
                    state.pending.removeAll()
                    return .reload
                }
                if state.pending.isEmpty { return .done }
                return .apply(Dictionary(uniqueKeysWithValues: state.pending.prefix(500).map { ($0.key, $0.value) }))
            }
            switch step {
            case .done:
                return
            case .reload:
                // Not served while reloading: let it go now rather than hold two in memory.
                box.write { $0 = nil }
                let started = ContinuousClock.now
                let snapshot: Snapshot
                do {
                    snapshot = try await Snapshot.load(pool: pool, batch: configuration.loadBatch)
                } catch {
                    state.withLock {
                        $0.reloading = false
                        $0.reloadRequested = true
                    }
                    throw error
                }
                let (store, version) = (snapshot.store, snapshot.version)
                let count = store.liveCount
                let lexemes = store.lexicon.words.count
                box.write { $0 = store }
                // The load's transient buffers are freed: give the heap's free pages back.
                _ = accord_release_free_memory()
                state.withLock { state in
                    state.loaded = true
                    state.epoch = epoch
                    state.reloading = false
                    state.loads += 1
                    state.version = version
                    state.notified = max(state.notified, version)
                    if state.pending.isEmpty { state.version = state.notified }
                }
                let elapsed = (ContinuousClock.now - started).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
                logger.info(
                    "directory index loaded",
                    metadata: [
                        "entries": "\(count)", "lexemes": "\(lexemes)", "seconds": "\(String(format: "%.1f", seconds))",
                    ])
            case .apply(let batch):
                let ids = Array(batch.keys)
                let rows = try await pool.query(Self.select("WHERE e.id = ANY (\(ids))"))
                let entries = try rows.map(Entry.init(row:))
                for entry in entries where !entry.isReadable { throw UnreadableDocument(id: entry.id) }
                guard state.withLock({ $0.epoch == epoch && !$0.reloading && $0.loaded }) else { continue }
                box.write { $0?.replace(ids, with: entries) }
                state.withLock { state in
                    state.applied += 1
                    for (id, sequence) in batch where state.pending[id] == sequence { state.pending[id] = nil }
                    if state.pending.isEmpty { state.version = state.notified }
                }
            }
        }
    }
}
