import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Addresses Accord may send requests to on a member's behalf (webhooks): https, and a host whose
/// every address is public — not loopback, private, link-local, shared, multicast or reserved —
/// so that a member cannot make the server call into its own network. `allowLoopback` (tests,
/// development) also admits http and the loopback addresses, and nothing else private.
public enum OutboundURL {
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case notAURL
        case scheme
        case credentials
        case unresolvable(String)
        case privateAddress(String)

        public var description: String {
            switch self {
            case .notAURL: "must be an absolute https URL"
            case .scheme: "must be an https URL"
            case .credentials: "must not carry a user name or password"
            case .unresolvable(let host): "names a host that does not resolve (\(host))"
            case .privateAddress(let address): "points at a private, loopback or reserved address (\(address))"
            }
        }
    }

    /// The URL when it may be called now (its host is resolved and every address checked).
    public static func check(_ text: String, allowLoopback: Bool) async throws(Refusal) -> URL {
        guard text.utf8.count <= 2000, let components = URLComponents(string: text), let url = components.url, let host = components.host,
            !host.isEmpty, let scheme = components.scheme?.lowercased()
        else { throw .notAURL }
        guard scheme == "https" || (allowLoopback && scheme == "http") else { throw .scheme }
        guard components.user == nil, components.password == nil else { throw .credentials }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let addresses: [[UInt8]]
        do {
            addresses = try await Task.detached { try resolve(bare) }.value
        } catch {
            throw .unresolvable(bare)
        }
        guard !addresses.isEmpty else { throw .unresolvable(bare) }
        for address in addresses where !isPublic(address) {
            if allowLoopback && isLoopback(address) { continue }
            throw .privateAddress(format(address))
        }
        return url
    }

    /// The host's IPv4 (4 bytes) and IPv6 (16 bytes) addresses.
    static func resolve(_ host: String) throws -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { throw Refusal.unresolvable(host) }
        defer { freeaddrinfo(first) }
        var addresses: [[UInt8]] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if info.pointee.ai_family == AF_INET, let raw = info.pointee.ai_addr {
                var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                addresses.append(withUnsafeBytes(of: &address) { Array($0) })
            } else if info.pointee.ai_family == AF_INET6, let raw = info.pointee.ai_addr {
                var address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                addresses.append(withUnsafeBytes(of: &address) { Array($0) })
            }
            cursor = info.pointee.ai_next
        }
        return addresses
    }

    static func isLoopback(_ a: [UInt8]) -> Bool {
        if a.count == 4 { return a[0] == 127 }
        if let mapped = mappedIPv4(a) { return isLoopback(mapped) }
        return a == Array(repeating: 0, count: 15) + [1]
    }

    /// Whether an address is on the public internet (RFC 6890's special-purpose ranges excluded).
    public static func isPublic(_ a: [UInt8]) -> Bool {
        if a.count == 4 {
            switch (a[0], a[1]) {
            case (0, _), (10, _), (127, _), (169, 254), (192, 168), (255, 255): return false
            case (172, 16...31), (100, 64...127), (198, 18...19): return false
            case (192, 0) where a[2] == 0 || a[2] == 2: return false
            case (198, 51) where a[2] == 100, (203, 0) where a[2] == 113: return false
            case (224...255, _): return false
            default: return true
            }
        }
        guard a.count == 16 else { return false }
        if let mapped = mappedIPv4(a) { return isPublic(mapped) }
        if a.allSatisfy({ $0 == 0 }) || isLoopback(a) { return false }
        if a[0] & 0xfe == 0xfc { return false }  // fc00::/7, unique local
        if a[0] == 0xfe && a[1] & 0xc0 == 0x80 { return false }  // fe80::/10, link-local
        if a[0] == 0xff { return false }  // multicast
        if a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8 { return false }  // 2001:db8::/32, documentation
        if a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b { return false }  // 64:ff9b::/96, NAT64
        return true
    }

    /// The IPv4 address of an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
    static func mappedIPv4(_ a: [UInt8]) -> [UInt8]? {
        guard a.count == 16, a[0..<10].allSatisfy({ $0 == 0 }), a[10] == 0xff, a[11] == 0xff else { return nil }
        return Array(a[12..<16])
    }

    static func format(_ a: [UInt8]) -> String {
        if a.count == 4 { return a.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(a[$0]) << 8 | UInt16(a[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}
