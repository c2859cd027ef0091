import AccordCrypto
import Foundation
import Testing

@Suite("TOTP")
struct TOTPTests {
    /// RFC 6238, appendix B: every test vector, for the three algorithms.
    @Test func theCodesAreThoseOfRFC6238() {
        let keys: [TOTP.Algorithm: [UInt8]] = [
            .sha1: Array("12345678901234567890".utf8),
            .sha256: Array("12345678901234567890123456789012".utf8),
            .sha512: Array("1234567890123456789012345678901234567890123456789012345678901234".utf8),
        ]
        let vectors: [(Int64, String, TOTP.Algorithm)] = [
            (59, "94287082", .sha1), (59, "46119246", .sha256), (59, "90693936", .sha512),
            (1_111_111_109, "07081804", .sha1), (1_111_111_109, "68084774", .sha256), (1_111_111_109, "25091201", .sha512),
            (1_111_111_111, "14050471", .sha1), (1_111_111_111, "67062674", .sha256), (1_111_111_111, "99943326", .sha512),
            (1_234_567_890, "89005924", .sha1), (1_234_567_890, "91819424", .sha256), (1_234_567_890, "93441116", .sha512),
            (2_000_000_000, "69279037", .sha1), (2_000_000_000, "90698825", .sha256), (2_000_000_000, "38618901", .sha512),
            (20_000_000_000, "65353130", .sha1), (20_000_000_000, "77737706", .sha256), (20_000_000_000, "47863826", .sha512),
        ]
        for (time, expected, algorithm) in vectors {
            let step = TOTP.step(at: Date(timeIntervalSince1970: TimeInterval(time)))
            #expect(TOTP.code(secret: keys[algorithm]!, step: step, digits: 8, algorithm: algorithm) == expected, "\(algorithm) at \(time)")
        }
    }

    /// A six-digit code matches its own step and one either side, nothing further, and only digits.
    @Test func aCodeMatchesItsStepWithinTheWindow() {
        let secret = Array("12345678901234567890".utf8)
        let now = Date(timeIntervalSince1970: 1_111_111_111)
        let step = TOTP.step(at: now)
        for offset in -1...1 {
            #expect(TOTP.matchingStep(TOTP.code(secret: secret, step: step + Int64(offset)), secret: secret, at: now) == step + Int64(offset))
        }
        #expect(TOTP.matchingStep(TOTP.code(secret: secret, step: step + 2), secret: secret, at: now) == nil)
        #expect(TOTP.matchingStep("05047", secret: secret, at: now) == nil)
        #expect(TOTP.matchingStep("0504７1", secret: secret, at: now) == nil)
    }

    /// RFC 4648's base32 test vectors (without padding), and an address authenticator apps read.
    @Test func secretsAreWrittenInBase32() {
        let vectors = ["": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI"]
        for (text, expected) in vectors { #expect(Base32.encode(Array(text.utf8)) == expected) }
        let uri = TOTP.provisioningURI(secret: Array("foobar".utf8), account: "ana@network.test", issuer: "Accord")
        #expect(uri == "otpauth://totp/Accord%3Aana@network.test?secret=MZXW6YTBOI&issuer=Accord&algorithm=SHA1&digits=6&period=30")
    }
}
