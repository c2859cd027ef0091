import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

/// A value behind a readers-writer lock (pthread): many readers at once, one writer alone.
final class StoreBox: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var store: DirectoryIndex.Store?

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<T>(_ body: (borrowing DirectoryIndex.Store?) -> T) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body(store)
    }

    func write<T>(_ body: (inout DirectoryIndex.Store?) -> T) -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body(&store)
    }
}
