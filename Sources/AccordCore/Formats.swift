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

    /// An e-mail address whose domain is a domain.
    public static func isEmail(_ value: String) -> Bool {
        guard (3...254).contains(value.count), !value.contains(where: \.isWhitespace) else { return false }
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
}
