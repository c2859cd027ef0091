import COpenSSL
import Foundation

/// Random tokens, SHA-256 and memory-hard password hashes, all through the system OpenSSL.
public enum Secrets {
    /// `count` cryptographically random bytes (OpenSSL's `RAND_bytes`).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = RAND_bytes(&bytes, Int32(count))
        precondition(ok == 1, "RAND_bytes failed")
        return bytes
    }

    /// An opaque token of 256 random bits, URL-safe base64 without padding (43 characters).
    public static func newToken() -> String {
        Base64URL.encode(randomBytes(32))
    }

    /// SHA-256 of `bytes` as lower-case hex.
    public static func sha256Hex<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        hex(sha256(bytes))
    }

    /// Bytes as lower-case hexadecimal, two digits each.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The hash functions an HMAC may use.
    public enum Digest: String, Sendable {
        case sha1 = "SHA1"
        case sha256 = "SHA256"
        case sha512 = "SHA512"
    }

    /// HMAC (RFC 2104) of `message` under `key` (OpenSSL's one-shot HMAC).
    public static func hmac(_ digest: Digest, key: [UInt8], message: [UInt8]) -> [UInt8] {
        let md: OpaquePointer? =
            switch digest {
            case .sha1: EVP_sha1()
            case .sha256: EVP_sha256()
            case .sha512: EVP_sha512()
            }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = HMAC(md, key, Int32(key.count), message, message.count, &out, &length)
        return Array(out.prefix(Int(length)))
    }

    /// SHA-256 of `bytes`.
    public static func sha256<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let input = Array(bytes)
        let ok = input.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        precondition(ok == 1, "EVP_Digest failed")
        return Array(digest.prefix(Int(length)))
    }

    /// Compares in time independent of where the inputs differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { left in b.withUnsafeBytes { right in CRYPTO_memcmp(left.baseAddress, right.baseAddress, a.count) == 0 } }
    }
}

/// scrypt (RFC 7914) through OpenSSL's `EVP_PBE_scrypt`, stored as
/// `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64), so the cost can rise without breaking old hashes.
public struct PasswordHasher: Sendable {
    /// log2 of scrypt's N. 15 (N = 32768, r = 8: 32 MiB and tens of milliseconds) by default.
    public let logN: Int
    public let r: Int
    public let p: Int

    public init(logN: Int = 15, r: Int = 8, p: Int = 1) {
        precondition((4...20).contains(logN), "scrypt logN must be 4…20")
        self.logN = logN
        self.r = r
        self.p = p
    }

    /// Shortest password accepted.
    public static let minimumLength = 10
    /// Longest password accepted (hashing cost is bounded).
    public static let maximumLength = 256

    /// Hashes `password` with a fresh 16-byte salt. Blocking and memory-hard: call it off the
    /// event loop.
    public func hash(_ password: String) -> String {
        let salt = Secrets.randomBytes(16)
        let key = derive(password, salt: salt, logN: logN, r: r, p: p)
        return "$scrypt$ln=\(logN),r=\(r),p=\(p)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    /// Checks `password` against a stored hash in constant time. A malformed hash never matches.
    public func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: true)
        guard parts.count == 4, parts[0] == "scrypt" else { return false }
        var parameters: [String: Int] = [:]
        for item in parts[1].split(separator: ",") {
            let pair = item.split(separator: "=")
            guard pair.count == 2, let value = Int(pair[1]) else { return false }
            parameters[String(pair[0])] = value
        }
        guard let ln = parameters["ln"], let r = parameters["r"], let p = parameters["p"], (4...20).contains(ln), (1...32).contains(r),
            (1...16).contains(p),
            let salt = Data(base64Encoded: String(parts[2])), let expected = Data(base64Encoded: String(parts[3]))
        else { return false }
        let key = derive(password, salt: Array(salt), logN: ln, r: r, p: p, length: expected.count)
        return Secrets.constantTimeEquals(key, Array(expected))
    }

    /// Burns the same time as a real verification of a hash with this hasher's parameters, for
    /// unknown accounts (no timing oracle). Stored hashes get these parameters too: see
    /// `needsRehash`.
    public func verifyNothing(_ password: String) {
        _ = derive(password, salt: Array(repeating: 0, count: 16), logN: logN, r: r, p: p)
    }

    /// Whether a stored hash was made with other parameters than this hasher's (and so should be
    /// replaced after the next successful verification).
    public func needsRehash(_ stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: true)
        return parts.count != 4 || parts[0] != "scrypt" || parts[1] != "ln=\(logN),r=\(r),p=\(p)"
    }

    private func derive(_ password: String, salt: [UInt8], logN: Int, r: Int, p: Int, length: Int = 32) -> [UInt8] {
        var key = [UInt8](repeating: 0, count: length)
        let passwordBytes = Array(password.utf8)
        let n = UInt64(1) << UInt64(logN)
        let memory = UInt64(128 * r * p) + UInt64(128 * r) * n + (1 << 20)
        let ok = passwordBytes.withUnsafeBufferPointer { pass in
            salt.withUnsafeBufferPointer { saltBuffer in
                pass.withMemoryRebound(to: CChar.self) { passChars in
                    EVP_PBE_scrypt(
                        passChars.baseAddress, passwordBytes.count, saltBuffer.baseAddress, salt.count, n, UInt64(r), UInt64(p), memory, &key, length)
                }
            }
        }
        precondition(ok == 1, "EVP_PBE_scrypt failed")
        return key
    }
}
