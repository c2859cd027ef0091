import CLibPQ
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Waits for many connections' answers on one thread (`PGPoller`): the caller sends without
/// blocking, and the loop resumes it when the whole answer has arrived.
///
/// The loop is also a `TaskExecutor`: a task that prefers it (`PGPool.executors`) is resumed on
/// the loop's thread and sends its next statement from there.
final class PGIOLoop: TaskExecutor, Sendable {
    private let poller: PGPoller
    /// Each socket's registration and who awaits its answer, by descriptor (small numbers: an
    /// array, not a dictionary).
    private let sockets = Mutex(Sockets())
    private let queue = Mutex(JobQueue())
    /// The loop thread's `pthread_self()`, 0 until it starts.
    private let thread = Atomic<UInt>(0)

    /// Jobs of tasks that prefer this executor, run in order between waits.
    struct JobQueue {
        var jobs: [UnownedJob] = []
        /// The loop may block in its poller's `wait`: an enqueue from another thread then signals it.
        /// Set with the loop's last look at `jobs`, under the lock enqueues take, so a
        /// job is either seen by that look or its enqueuer sees the flag.
        var sleeping = false
        /// The loop stopped: jobs go to the global executor.
        var stopping = false
    }

    /// What the loop knows of a socket. It stays watched from its connection's first statement on
    /// the loop; readiness with nobody waiting unwatches it and marks the connection suspect (see
    /// docs/architecture.md, "PGStore").
    struct Socket {
        /// The connection that registered the descriptor: a new connection may reuse the number
        /// of a closed one, whose registration the kernel dropped.
        var connection: UInt64 = 0
        /// Watched by the poller.
        var registered = false
        /// Registered for writability too (a statement that libpq could not send at once).
        var writable = false
        /// Something arrived while nobody waited: the pool checks the connection before lending it.
        var suspect = false
        var waiter: Waiter?
    }

    struct Sockets {
        private var slots: [Socket] = []

        /// Runs `body` on `fd`'s entry in place.
        mutating func withSocket<Result>(_ fd: Int32, _ body: (inout Socket) -> Result) -> Result {
            if Int(fd) >= slots.count {
                slots.append(contentsOf: repeatElement(Socket(), count: Int(fd) - slots.count + 1))
            }
            return body(&slots[Int(fd)])
        }

        /// Removes and returns every waiter.
        mutating func removeWaiters() -> [Waiter] {
            var waiters: [Waiter] = []
            for index in slots.indices {
                if let waiter = slots[index].waiter { waiters.append(waiter) }
                slots[index].waiter = nil
            }
            return waiters
        }
    }

    struct Waiter: @unchecked Sendable {
        let connection: PGConnection
        let continuation: UnsafeContinuation<Answer, any Error>
        /// A pipeline ends with its Sync; a single statement with its first NULL result.
        let pipeline: Bool
        /// Results collected so far: a single statement's first result, or a pipeline's results.
        var answer = Answer()
    }

    /// The results of a statement (its first) or of a pipeline (all, in order). The first is kept
    /// apart so that a single statement's answer needs no array.
    struct Answer: @unchecked Sendable {
        var first: OpaquePointer?
        var more: [OpaquePointer] = []

        mutating func append(_ result: OpaquePointer) {
            if first == nil { first = result } else { more.append(result) }
        }

        var all: [OpaquePointer] { first.map { [$0] + more } ?? [] }

        func clear() { all.forEach { PQclear($0) } }
    }

    init(_ backend: PGPoller.Backend = .platformDefault) {
        poller = PGPoller(backend)
        let thread = Thread { [self] in self.run() }
        thread.name = "accord-pg-io"
        thread.start()
    }

    /// Stops the loop thread. Jobs enqueued afterwards (a task that still prefers this executor)
    /// go to the global concurrent executor instead.
    func shutdown() {
        queue.withLock { $0.stopping = true }
        signal()
    }

    private func signal() { poller.signal() }

    /// Whether the caller runs on this loop's thread.
    var isCurrent: Bool { thread.load(ordering: .relaxed) == Self.currentThread }

    private static var currentThread: UInt {
        #if canImport(Darwin)
        UInt(bitPattern: pthread_self())
        #else
        UInt(pthread_self())
        #endif
    }

    // MARK: TaskExecutor

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let (accepted, wake) = queue.withLock { queue -> (Bool, Bool) in
            if queue.stopping { return (false, false) }
            queue.jobs.append(job)
            return (true, queue.jobs.count == 1 && queue.sleeping)
        }
        if !accepted {
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
        } else if wake && !isCurrent {
            signal()
        }
    }

    /// Runs the jobs enqueued so far (and those they enqueue, up to a bound), in order.
    private func runJobs(_ batch: inout [UnownedJob]) {
        for _ in 0..<4 {
            queue.withLock { swap(&$0.jobs, &batch) }
            if batch.isEmpty { return }
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// Registers interest in `connection`'s answer (and in writability while it still has bytes to
    /// send); the continuation gets the statement's result.
    func await(_ connection: PGConnection, needsWrite: Bool, pipeline: Bool = false, _ continuation: UnsafeContinuation<Answer, any Error>) {
        let fd = PQsocket(connection.handle)
        guard fd >= 0 else {
            continuation.resume(throwing: PGError(.connection, message: PGConnection.errorMessage(connection.handle)))
            return
        }
        sockets.withLock { sockets in
            sockets.withSocket(fd) { socket in
                if socket.connection != connection.serial {
                    // First statement on the loop, or a closed connection's number reused.
                    socket = Socket(connection: connection.serial)
                }
                socket.waiter = Waiter(connection: connection, continuation: continuation, pipeline: pipeline)
                // A mark from before this statement is moot: the statement reads whatever arrived.
                socket.suspect = false
                if !socket.registered || socket.writable != needsWrite {
                    // The rare case, under the lock so that the loop's removal cannot cross it.
                    poller.watch(fd, add: !socket.registered, writable: needsWrite)
                    socket.registered = true
                    socket.writable = needsWrite
                }
            }
        }
    }

    /// Whether something arrived for `connection` while it was idle (a notice, or the server's
    /// last words before it closed the connection); clears the mark.
    func takeSuspect(_ connection: PGConnection) -> Bool {
        let fd = PQsocket(connection.handle)
        guard fd >= 0 else { return true }
        return sockets.withLock { sockets in
            sockets.withSocket(fd) { socket in
                guard socket.connection == connection.serial, socket.suspect else { return false }
                socket.suspect = false
                return true
            }
        }
    }

    private func run() {
        thread.store(Self.currentThread, ordering: .relaxed)
        var buffers = PGPoller.Buffers()
        var ready: [Int32] = []
        ready.reserveCapacity(64)
        var batch: [UnownedJob] = []
        batch.reserveCapacity(64)
        while true {
            runJobs(&batch)
            let idle = queue.withLock { queue -> Bool in
                queue.sleeping = queue.jobs.isEmpty
                return queue.sleeping
            }
            let waited = poller.wait(timeout: idle ? -1 : 0, into: &ready, buffers: &buffers)
            if idle { queue.withLock { $0.sleeping = false } }
            if !waited { return }
            for fd in ready {
                if fd == poller.wakeup {
                    poller.drainWakeup()
                    // A job enqueued while the loop slept; otherwise shutdown: fail whoever waits.
                    if !queue.withLock({ $0.stopping }) { continue }
                    let pending = sockets.withLock { $0.removeWaiters() }
                    for waiter in pending {
                        waiter.answer.clear()
                        waiter.continuation.resume(throwing: PGError(.poolClosed, message: "the connection pool is shut down"))
                    }
                    // Tasks that prefer this executor carry on on the global one.
                    for job in queue.withLock({ queue -> [UnownedJob] in
                        defer { queue.jobs.removeAll() }
                        return queue.jobs
                    }) {
                        globalConcurrentExecutor.enqueue(ExecutorJob(job))
                    }
                    poller.close()
                    return
                }
                progress(fd)
            }
        }
    }

    /// Reads what arrived for `fd`; resumes its waiter once the answer is complete.
    private func progress(_ fd: Int32) {
        // The waiter is taken out while its answer is read (only this thread reads answers, and
        // nobody registers another for a connection that is still busy), and put back if the
        // answer is not complete yet.
        let taken = sockets.withLock { sockets -> (waiter: Waiter, writable: Bool)? in
            sockets.withSocket(fd) { socket in
                if let waiter = socket.waiter.take() { return (waiter, socket.writable) }
                // Nobody waits: leave the connection alone (it may be idle in the pool, or in use
                // on the thread pool) and stop watching it until its next statement here.
                if socket.registered {
                    poller.unwatch(fd)
                    socket.registered = false
                    socket.writable = false
                    socket.suspect = true
                }
                return nil
            }
        }
        guard let taken else { return }
        var waiter = taken.waiter
        let wasWritable = taken.writable
        let handle = waiter.connection.handle
        var failure: PGError?
        var complete = false
        let flushed = PQflush(handle)
        if flushed < 0 {
            failure = PGError(.connection, message: PGConnection.errorMessage(handle))
        } else if PQconsumeInput(handle) == 0 {
            failure = PGError(.connection, message: PGConnection.errorMessage(handle))
        } else if waiter.pipeline {
            // Each statement's results end with a NULL; the pipeline ends with its Sync.
            var separators = 0
            while PQisBusy(handle) == 0, separators < 2 {
                guard let result = PQgetResult(handle) else {
                    separators += 1
                    continue
                }
                separators = 0
                if PQresultStatus(result) == PGRES_PIPELINE_SYNC {
                    PQclear(result)
                    complete = true
                    break
                }
                waiter.answer.append(result)
            }
        } else {
            while PQisBusy(handle) == 0 {
                guard let result = PQgetResult(handle) else {
                    complete = true
                    break
                }
                if waiter.answer.first == nil { waiter.answer.first = result } else { PQclear(result) }
            }
        }
        let done = failure != nil || complete
        let writable = !done && flushed == 1
        if !done || writable != wasWritable {
            sockets.withLock { sockets in
                sockets.withSocket(fd) { socket in
                    if !done { socket.waiter = waiter }
                    if socket.writable != writable {
                        poller.watch(fd, add: false, writable: writable)
                        socket.writable = writable
                    }
                }
            }
        }
        guard done else { return }
        if let failure {
            waiter.answer.clear()
            waiter.continuation.resume(throwing: failure)
        } else {
            waiter.continuation.resume(returning: waiter.answer)
        }
    }
}
