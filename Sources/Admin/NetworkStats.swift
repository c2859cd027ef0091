import AccordCore
import Foundation
import PGStore

/// The network's statistics (`GET /v1/admin/stats`), counted by `accord_network_stats` in one
/// statement: members by status, tier, country and region; registrations, admissions and
/// agreements approved per month (24 months); partnerships by stage; rooms and messages per day
/// (30 days); the directory's size.
public enum NetworkStats {
    /// The statistics as JSON text (network administrators only).
    public static func json(pool: PGPool, caller: Identity) async throws -> String {
        guard caller.isNetworkAdmin else { throw Problem.forbidden("Only network administrators may do this.") }
        return try await pool.readAsTenant(caller, "SELECT accord_network_stats()::text").scalar(String.self)
    }

    /// The same as CSV (RFC 4180): `metric,key,value` per line, such as
    /// `institutions.byStatus,active,12` or `perMonth.registrations,2027-01,4`.
    public static func csv(fromJSON text: String) throws -> String {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return "metric,key,value\r\n" }
        var lines = ["metric,key,value"]
        func number(_ value: Any) -> String { (value as? NSNumber).map { "\($0.int64Value)" } ?? "\(value)" }
        func walk(_ value: Any, path: String) {
            if let dictionary = value as? [String: Any] {
                for key in dictionary.keys.sorted() {
                    let child = dictionary[key]!
                    if child is [String: Any] || child is [Any] {
                        walk(child, path: path.isEmpty ? key : "\(path).\(key)")
                    } else if path.hasPrefix("institutions.") || path == "partnerships.byStage" {
                        lines.append("\(path),\(AuditLog.cell(key)),\(number(child))")
                    } else {
                        lines.append("\(path.isEmpty ? key : "\(path).\(key)"),,\(number(child))")
                    }
                }
            } else if let array = value as? [[String: Any]] {
                // Series: one line per period and measure.
                for entry in array {
                    let period = (entry["month"] ?? entry["day"]).map { "\($0)" } ?? ""
                    for key in entry.keys.sorted() where key != "month" && key != "day" {
                        lines.append("\(path).\(key),\(period),\(number(entry[key]!))")
                    }
                }
            }
        }
        walk(object, path: "")
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
