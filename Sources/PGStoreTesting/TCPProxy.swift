import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback TCP forwarder for tests that need the database to "go away" and "come back": stop it
/// and every connection through it drops and new ones are refused; start it again on the same port
/// and connections succeed again. Blocking sockets on plain threads; for tests only.
public final class TCPProxy: Sendable {
    public let port: Int
    private let targetPort: Int
    private let state = Mutex(State())

    struct State {
        var listener: Int32 = -1
        var sockets: Set<Int32> = []
    }

    /// Listens on a free loopback port and forwards to `127.0.0.1:targetPort`.
    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        let listener = try Self.listen(port: 0)
        self.port = try Self.localPort(listener)
        state.withLock { $0.listener = listener }
        acceptLoop(listener)
    }

    deinit { stop() }

    /// Drops every connection and stops accepting (connections are then refused).
    public func stop() {
        let (listener, sockets) = state.withLock { state -> (Int32, Set<Int32>) in
            defer {
                state.listener = -1
                state.sockets.removeAll()
            }
            return (state.listener, state.sockets)
        }
        if listener >= 0 {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
        for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    /// Accepts connections again on the same port.
    public func start() throws {
        let listener = try Self.listen(port: port)
        state.withLock { $0.listener = listener }
        acceptLoop(listener)
    }

    private func acceptLoop(_ listener: Int32) {
        let thread = Thread { [weak self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                guard let self else {
                    close(client)
                    return
                }
                guard let upstream = try? Self.connect(port: self.targetPort) else {
                    close(client)
                    continue
                }
                let registered = self.state.withLock { state -> Bool in
                    guard state.listener == listener else { return false }
                    state.sockets.insert(client)
                    state.sockets.insert(upstream)
                    return true
                }
                guard registered else {
                    close(client)
                    close(upstream)
                    return
                }
                self.pipe(from: client, to: upstream)
                self.pipe(from: upstream, to: client)
            }
        }
        thread.start()
    }

    private func pipe(from source: Int32, to destination: Int32) {
        let thread = Thread { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(source, &buffer, buffer.count)
                if count <= 0 { break }
                var offset = 0
                while offset < count {
                    let written = buffer[offset..<count].withUnsafeBytes { send(destination, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if written <= 0 { break }
                    offset += written
                }
                if offset < count { break }
            }
            shutdown(source, Int32(SHUT_RDWR))
            shutdown(destination, Int32(SHUT_RDWR))
            let owned = self?.state.withLock { $0.sockets.remove(source) != nil } ?? true
            if owned || self == nil { close(source) }
        }
        thread.start()
    }

    private static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private static func listen(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            close(fd)
            throw ProxyError(message: "cannot listen on 127.0.0.1:\(port): errno \(errno)")
        }
        return fd
    }

    private static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw ProxyError(message: "cannot connect to 127.0.0.1:\(port)")
        }
        return fd
    }

    private static func localPort(_ fd: Int32) throws -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct ProxyError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
