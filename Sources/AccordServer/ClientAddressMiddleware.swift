import AccordCore
import Foundation
import HTTPTypes
import Hummingbird

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The reverse proxies whose `X-Forwarded-For` Accord believes (`ACCORD_TRUSTED_PROXIES`): IPv4
/// and IPv6 addresses and CIDR ranges, separated by commas. Empty by default: the client address
/// is the peer's, and the header is ignored.
public struct TrustedProxies: Sendable, Equatable {
    struct Range: Sendable, Equatable {
        let bytes: [UInt8]
        let prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefixLength
            for (a, b) in zip(address, bytes) where remaining > 0 {
                let bits = min(remaining, 8)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if a & mask != b & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    let ranges: [Range]

    public static let none = TrustedProxies(ranges: [])

    init(ranges: [Range]) { self.ranges = ranges }

    /// Parses `10.0.0.1, 10.1.0.0/16, ::1`; throws a one-line message naming the first bad entry.
    public init(parsing text: String) throws {
        var ranges: [Range] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = Self.bytes(parts[0]) else {
                throw StartupError("ACCORD_TRUSTED_PROXIES: '\(item.prefix(60))' is not an IP address or range")
            }
            let length = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let length, (0...(bytes.count * 8)).contains(length) else {
                throw StartupError("ACCORD_TRUSTED_PROXIES: '\(item.prefix(60))' has a prefix length out of range")
            }
            ranges.append(Range(bytes: bytes, prefixLength: length))
        }
        self.ranges = ranges
    }

    public var isEmpty: Bool { ranges.isEmpty }

    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(address) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The address's bytes: 4 for IPv4 (and IPv4-mapped IPv6), 16 for IPv6; nil if it is neither.
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }
}

/// Sets the request's client address (rate limits, the audit log): the peer's, or — when the peer
/// is a trusted proxy — the nearest address in `X-Forwarded-For` that is not one, read from the
/// right (the entries further left are the client's to write, and so its to forge).
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = AccordRequestContext
    let trusted: TrustedProxies

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !trusted.isEmpty, let peer = context.clientAddress, trusted.contains(peer) else { return try await next(request, context) }
        var context = context
        context.clientAddress = Self.client(forwardedFor: request.headers[values: Self.forwardedFor], peer: peer, trusted: trusted)
        return try await next(request, context)
    }

    static func client(forwardedFor values: [String], peer: String, trusted: TrustedProxies) -> String {
        let hops = values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard TrustedProxies.bytes(hop) != nil else { break }  // not an address: believe nothing further left
            client = hop
            if !trusted.contains(hop) { break }
        }
        return client
    }
}
