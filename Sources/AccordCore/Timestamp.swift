import PGStore

/// The one way the API writes times: RFC 3339 in UTC, formatted by PostgreSQL in the statement
/// that reads them, so that what a client sees is exactly what a keyset compares.
public enum Timestamp {
    /// `column` to the microsecond, `2026-12-02T14:11:41.123456Z`: for times a cursor carries.
    public static func precise(_ column: String) -> PGQuery {
        PGQuery(unsafeSQL: "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    }

    /// `column` to the second, `2026-12-02T14:11:41Z`.
    public static func seconds(_ column: String) -> PGQuery {
        PGQuery(unsafeSQL: "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
    }

    /// Whether `text` has the form `precise` writes, with a real date and time: a cursor that
    /// carries anything else is refused before it reaches the database.
    public static func isPrecise(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 27, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "."), bytes[26] == UInt8(ascii: "Z")
        else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), number(20..<26) != nil
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return year >= 1 && (1...12).contains(month) && (1...days[month - 1]).contains(day) && hour < 24 && minute < 60 && second < 60
    }
}
