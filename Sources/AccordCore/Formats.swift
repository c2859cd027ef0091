import Foundation

/// The text formats Accord accepts, checked the same way wherever they arrive.
public enum Formats {
    /// An internet domain in lower case (a SCHAC code): `ulb.be`.
    public static func isDomain(_ value: String) -> Bool {
        guard (3...253).contains(value.count) else { return false }
        let labels = value.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        return labels.allSatisfy { label in
            guard (1...63).contains(label.count), label.first != "-", label.last != "-" else { return false }
            return label.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
        }
    }

    /// An e-mail address whose domain is a domain, in printable ASCII (no internationalised
    /// addresses: no look-alike of another account's address).
    public static func isEmail(_ value: String) -> Bool {
        guard (3...254).contains(value.utf8.count), value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { return false }
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64 else { return false }
        return isDomain(parts[1].lowercased())
    }

    /// An http or https URL with a host, of at most 500 characters.
    public static func isWebURL(_ value: String) -> Bool {
        guard value.count <= 500, let url = URL(string: value), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { return false }
        return true
    }

    /// A calendar date `YYYY-MM-DD` that exists.
    public static func isDate(_ value: String) -> Bool {
        let parts = value.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2])
        else { return false }
        var components = DateComponents()
        (components.year, components.month, components.day) = (year, month, day)
        return components.isValidDate(in: Calendar(identifier: .gregorian))
    }

    /// An RFC 3339 time with a zone (`Z` or an offset), such as `2027-01-31T12:00:00Z`, that exists.
    public static func isTimestamp(_ value: String) -> Bool {
        guard
            value.range(
                of: #"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"#, options: .regularExpression)
                != nil,
            isDate(String(value.prefix(10)))
        else { return false }
        let plain = ISO8601DateFormatter()
        if plain.date(from: value) != nil { return true }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: value) != nil
    }

    /// The length of a text as PostgreSQL's `length()` counts it (Unicode code points), so that a
    /// limit checked here is the limit the database checks: "é" written as e + U+0301 counts two.
    public static func length(_ value: String) -> Int { value.unicodeScalars.count }

    /// Text for a single line: no control characters (C0, DEL, C1, so no CR or LF) and no line or
    /// paragraph separator.
    public static func isSingleLine(_ value: String) -> Bool {
        value.unicodeScalars.allSatisfy { scalar in
            !(scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029)
        }
    }

    /// Text of several lines: no control characters but tab, LF and CR.
    public static func isMultiLine(_ value: String) -> Bool {
        value.unicodeScalars.allSatisfy { scalar in
            scalar == "\t" || scalar == "\n" || scalar == "\r"
                || !(scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value))
        }
    }
}
