import Foundation

/// ROR ids: `0` + six Crockford base-32 characters + two ISO 7064 MOD 97-10 check digits.
public enum ROR {
    static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")

    public static func isValid(_ id: String) -> Bool {
        let chars = Array(id)
        guard chars.count == 9, chars[0] == "0", let checksum = Int(String(chars[7...])) else { return false }
        var value = 0
        for char in chars[0..<7] {
            guard let digit = alphabet.firstIndex(of: char) else { return false }
            value = value * 32 + digit
        }
        return 98 - ((value * 100) % 97) == checksum
    }
}
