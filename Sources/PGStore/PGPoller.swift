import CLibPQ
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an I/O loop waits on: its connections' sockets, level-triggered, and a wake-up that any
/// thread can signal. `epoll` with an `eventfd` on Linux; `poll(2)` with a pipe elsewhere, and on
/// Linux when asked, so that the portable path is tested where CI runs.
final class PGPoller: Sendable {
    enum Backend: Sendable {
        case epoll
        case poll

        static var platformDefault: Backend {
            #if os(Linux)
            .epoll
            #else
            .poll
            #endif
        }
    }

    let backend: Backend
    /// epoll: the epoll descriptor; poll: unused (-1).
    private let epoll: Int32
    /// The descriptor the loop reads its wake-ups from (an eventfd, or a pipe's read end).
    let wakeup: Int32
    /// The descriptor a wake-up is written to (the eventfd itself, or the pipe's write end).
    private let wakeupWriter: Int32
    /// poll: the sockets watched and their events; epoll keeps this set in the kernel.
    private let interest = Mutex<[Int32: Int16]>([:])

    init(_ backend: Backend = .platformDefault) {
        self.backend = backend
        switch backend {
        case .epoll:
            #if os(Linux)
            epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
            let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
            precondition(epoll >= 0 && fd >= 0, "cannot create the PGStore I/O loop")
            (wakeup, wakeupWriter) = (fd, fd)
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.fd = fd
            epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
            #else
            preconditionFailure("epoll exists on Linux only")
            #endif
        case .poll:
            epoll = -1
            var ends: [Int32] = [-1, -1]
            precondition(pipe(&ends) == 0, "cannot create the PGStore I/O loop")
            for fd in ends {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            (wakeup, wakeupWriter) = (ends[0], ends[1])
        }
    }

    /// Wakes the loop from `wait`; a wake-up already pending absorbs this one.
    func signal() {
        switch backend {
        case .epoll:
            var one: UInt64 = 1
            _ = write(wakeupWriter, &one, 8)
        case .poll:
            var one: UInt8 = 1
            _ = write(wakeupWriter, &one, 1)
        }
    }

    /// Consumes the pending wake-ups.
    func drainWakeup() {
        var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        switch backend {
        case .epoll:
            _ = read(wakeup, &buffer, 8)
        case .poll:
            while read(wakeup, &buffer, 32) > 0 {}
        }
    }

    /// Watches `fd` for input (and for writability with `writable`), or changes what it watches
    /// for. `add` says whether `fd` is new to the set as far as the caller knows.
    func watch(_ fd: Int32, add: Bool, writable: Bool) {
        switch backend {
        case .epoll:
            #if os(Linux)
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | (writable ? EPOLLOUT.rawValue : 0)
            event.data.fd = fd
            if add {
                if epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0, errno == EEXIST {
                    _ = epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event)
                }
            } else if epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) != 0, errno == ENOENT {
                _ = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
            }
            #endif
        case .poll:
            let events = Int16(POLLIN) | (writable ? Int16(POLLOUT) : 0)
            let changed = interest.withLock { set in
                defer { set[fd] = events }
                return set[fd] != events
            }
            // The loop may be blocked in poll without this socket: it must look again.
            if changed { signal() }
        }
    }

    /// Stops watching `fd`.
    func unwatch(_ fd: Int32) {
        switch backend {
        case .epoll:
            #if os(Linux)
            var event = epoll_event()
            _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &event)
            #endif
        case .poll:
            interest.withLock { _ = $0.removeValue(forKey: fd) }
        }
    }

    /// Buffers `wait` reuses from one round to the next (owned by the loop's thread).
    struct Buffers {
        #if os(Linux)
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        #endif
        var pollfds: [pollfd] = []
    }

    /// Blocks until a watched descriptor or the wake-up is ready (or `timeout` milliseconds pass;
    /// -1 waits for ever) and puts the ready descriptors in `ready`. False when waiting failed for
    /// another reason than a signal.
    func wait(timeout: Int32, into ready: inout [Int32], buffers: inout Buffers) -> Bool {
        ready.removeAll(keepingCapacity: true)
        switch backend {
        case .epoll:
            #if os(Linux)
            let count = epoll_wait(epoll, &buffers.events, Int32(buffers.events.count), timeout)
            if count < 0 { return errno == EINTR }
            for index in 0..<Int(count) { ready.append(buffers.events[index].data.fd) }
            #endif
        case .poll:
            buffers.pollfds.removeAll(keepingCapacity: true)
            buffers.pollfds.append(pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0))
            interest.withLock { set in
                for (fd, events) in set { buffers.pollfds.append(pollfd(fd: fd, events: events, revents: 0)) }
            }
            let count = poll(&buffers.pollfds, nfds_t(buffers.pollfds.count), timeout)
            if count < 0 { return errno == EINTR }
            for entry in buffers.pollfds where entry.revents != 0 { ready.append(entry.fd) }
        }
        return true
    }

    /// Closes the poller's own descriptors (not the sockets it watched).
    func close() {
        switch backend {
        case .epoll:
            _ = systemClose(epoll)
            _ = systemClose(wakeup)
        case .poll:
            _ = systemClose(wakeup)
            _ = systemClose(wakeupWriter)
        }
    }
}

/// The C library's `close`, under a name that methods called `close` do not shadow.
@inline(__always)
private func systemClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #else
    Darwin.close(fd)
    #endif
}
