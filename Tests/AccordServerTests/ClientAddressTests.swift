import Testing

@testable import AccordServer

@Suite("Client addresses behind proxies")
struct ClientAddressTests {
    @Test func trustedProxiesParseAddressesAndRanges() throws {
        let proxies = try TrustedProxies(parsing: "10.0.0.1, 172.16.0.0/12,::1, 2001:db8::/32")
        #expect(proxies.contains("10.0.0.1"))
        #expect(!proxies.contains("10.0.0.2"))
        #expect(proxies.contains("172.31.255.254"))
        #expect(!proxies.contains("172.32.0.1"))
        #expect(proxies.contains("::1"))
        #expect(proxies.contains("2001:db8:1::7"))
        #expect(proxies.contains("::ffff:10.0.0.1"))
        #expect(!proxies.contains("not an address"))
        #expect(TrustedProxies.none.isEmpty)
        #expect(throws: StartupError.self) { try TrustedProxies(parsing: "10.0.0.0/33") }
        #expect(throws: StartupError.self) { try TrustedProxies(parsing: "proxy.local") }
    }

    @Test func theClientIsTheNearestUntrustedHop() throws {
        let proxies = try TrustedProxies(parsing: "10.0.0.0/8")
        func client(_ header: [String]) -> String { ClientAddressMiddleware.client(forwardedFor: header, peer: "10.0.0.1", trusted: proxies) }
        #expect(client(["203.0.113.9"]) == "203.0.113.9")
        // What the client wrote itself, further left, is not believed.
        #expect(client(["1.2.3.4, 203.0.113.9"]) == "203.0.113.9")
        #expect(client(["1.2.3.4", "203.0.113.9, 10.0.0.7"]) == "203.0.113.9")
        // Only proxies: the leftmost of them; nothing usable: the peer.
        #expect(client(["10.0.0.9, 10.0.0.7"]) == "10.0.0.9")
        #expect(client(["garbage"]) == "10.0.0.1")
        #expect(client([]) == "10.0.0.1")
    }
}
