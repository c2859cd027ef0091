import Foundation

/// `Date` travels as `timestamptz` in ISO form in UTC with microseconds (connections set
/// `DateStyle=ISO` and `TimeZone=UTC`). PostgreSQL keeps microseconds, so a `Date` round-trips to the
/// nearest microsecond.
extension Date: PGEncodable, PGDecodable {
    public static var pgType: PGType { .timestamptz }

    public func encode(into buffer: inout [UInt8]) throws {
        if self == .distantFuture {
            appendASCII("infinity", to: &buffer)
            return
        }
        if self == .distantPast {
            appendASCII("-infinity", to: &buffer)
            return
        }
        let micros = (timeIntervalSince1970 * 1_000_000).rounded()
        guard micros.isFinite, abs(micros) < 9.2e18 else {
            throw PGError(.invalidValue, message: "date out of range")
        }
        let total = Int64(micros)
        var seconds = total / 1_000_000
        var fraction = total % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civilFromDays(days)
        guard year >= 1 else { throw PGError(.invalidValue, message: "dates before year 1 are not supported") }
        var text = ""
        text.reserveCapacity(32)
        text += pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + " "
        text += pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
        text += "." + pad(fraction, 6) + "+00"
        appendASCII(text, to: &buffer)
    }

    public static func accepts(_ type: PGType) -> Bool { type == .timestamptz }

    public static func decode(text: UnsafeRawBufferPointer, type: PGType) throws -> Date {
        // 2024-01-02 03:04:05.123456+00, also +05:30 offsets, 5-digit years, infinity.
        if text.elementsEqual("infinity".utf8) { return .distantFuture }
        if text.elementsEqual("-infinity".utf8) { return .distantPast }
        var index = 0
        func number(_ maxDigits: Int) -> Int64? {
            var value: Int64 = 0
            var count = 0
            while index < text.count, count < maxDigits, let digit = Optional(text[index] &- 48), digit < 10 {
                value = value * 10 + Int64(digit)
                index += 1
                count += 1
            }
            return count == 0 ? nil : value
        }
        func expect(_ ascii: Character) -> Bool {
            guard index < text.count, text[index] == ascii.asciiValue! else { return false }
            index += 1
            return true
        }
        guard let year = number(7), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect(" "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { throw invalid(text, as: Date.self) }
        var micros: Int64 = 0
        if index < text.count, text[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            guard let fraction = number(6) else { throw invalid(text, as: Date.self) }
            var scaled = fraction
            for _ in 0..<(6 - (index - start)) { scaled *= 10 }
            micros = scaled
        }
        var offsetSeconds: Int64 = 0
        if index < text.count, text[index] == UInt8(ascii: "+") || text[index] == UInt8(ascii: "-") {
            let sign: Int64 = text[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2) else { throw invalid(text, as: Date.self) }
            var minutes: Int64 = 0
            var secs: Int64 = 0
            if expect(":") { minutes = number(2) ?? 0 }
            if expect(":") { secs = number(2) ?? 0 }
            offsetSeconds = sign * (hours * 3600 + minutes * 60 + secs)
        }
        guard index == text.count else { throw invalid(text, as: Date.self) }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }
}

@inline(__always)
private func pad(_ value: Int64, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (month <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, month, day)
}
