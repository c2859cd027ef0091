import Foundation

/// Time-based one-time passwords (RFC 6238, over HOTP of RFC 4226): the code of a secret for a
/// 30-second time step, as authenticator apps compute it.
public enum TOTP {
    /// The HMAC behind the codes; authenticator apps use SHA-1.
    public typealias Algorithm = Secrets.Digest

    /// The length of a step, in seconds.
    public static let period: Int64 = 30

    /// The step of a moment: whole periods since the Unix epoch.
    public static func step(at date: Date) -> Int64 {
        Int64(floor(date.timeIntervalSince1970)) / period
    }

    /// The code of `secret` at `step`, `digits` long (zero-padded).
    public static func code(secret: [UInt8], step: Int64, digits: Int = 6, algorithm: Algorithm = .sha1) -> String {
        var counter = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 { counter[index] = UInt8(truncatingIfNeeded: UInt64(bitPattern: step) >> (56 - 8 * UInt64(index))) }
        let mac = Secrets.hmac(algorithm, key: secret, message: counter)
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary =
            (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: max(0, digits - value.count)) + value
    }

    /// The step whose code `code` is, among the step of `date` and `window` steps either side
    /// (clocks drift); nil when it is none of them. Compared in constant time.
    public static func matchingStep(_ code: String, secret: [UInt8], at date: Date, window: Int64 = 1) -> Int64? {
        guard code.utf8.count == 6, code.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        let now = step(at: date)
        var found: Int64?
        for candidate in (now - window)...(now + window) {
            if Secrets.constantTimeEquals(Array(Self.code(secret: secret, step: candidate).utf8), Array(code.utf8)) { found = candidate }
        }
        return found
    }

    /// The `otpauth://` address an authenticator app reads (from a QR code, or typed).
    public static func provisioningURI(secret: [UInt8], account: String, issuer: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~@")
        let label = (issuer + ":" + account).addingPercentEncoding(withAllowedCharacters: allowed) ?? account
        let issuerParameter = issuer.addingPercentEncoding(withAllowedCharacters: allowed) ?? issuer
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(issuerParameter)&algorithm=SHA1&digits=6&period=\(period)"
    }
}

/// Base32 of RFC 4648 (upper-case, no padding), the encoding of TOTP secrets.
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }
}
