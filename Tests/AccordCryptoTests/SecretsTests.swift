import AccordCrypto
import Foundation
import Testing

@Suite("Random tokens, SHA-256, scrypt")
struct SecretsTests {
    @Test func sha256MatchesKnownVectors() {
        #expect(Secrets.sha256Hex("".utf8) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Secrets.sha256Hex("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func tokensAreLongAndDistinct() {
        let tokens = (0..<1000).map { _ in Secrets.newToken() }
        #expect(Set(tokens).count == 1000)
        #expect(tokens.allSatisfy { $0.count == 43 && !$0.contains("+") && !$0.contains("/") && !$0.contains("=") })
    }

    @Test func scryptMatchesRFC7914() {
        // RFC 7914 §12, second vector: P="password", S="NaCl", N=1024, r=8, p=16, dkLen=64.
        let hasher = PasswordHasher(logN: 10, r: 8, p: 16)
        let stored =
            "$scrypt$ln=10,r=8,p=16$" + Data("NaCl".utf8).base64EncodedString() + "$"
            + Data(
                hex:
                    "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
            ).base64EncodedString()
        #expect(hasher.verify("password", against: stored))
        #expect(!hasher.verify("Password", against: stored))
    }

    @Test func hashesVerifyAndAreSalted() {
        let hasher = PasswordHasher(logN: 10)
        let first = hasher.hash("correct horse battery staple")
        let second = hasher.hash("correct horse battery staple")
        #expect(first != second)
        #expect(first.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(hasher.verify("correct horse battery staple", against: first))
        #expect(!hasher.verify("correct horse battery stapler", against: first))
        #expect(!hasher.verify("x", against: "not a hash"))
        #expect(!hasher.verify("x", against: "$scrypt$ln=99,r=8,p=1$AA==$AA=="))
    }
}

extension Data {
    init(hex: String) {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self.init(bytes)
    }
}
