import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex {
    /// A tsquery as PostgreSQL prints it (`'bolgna':* | 'bologna'`, `'a':* & ( 'b' | 'c' )`):
    /// operands, `&`, `|`, `!` and parentheses. Anything else (a phrase, a weight) is not parsed, and
    /// the search goes to SQL.
    indirect enum TextExpression: Equatable {
        case word(String, prefix: Bool)
        case and([TextExpression])
        case or([TextExpression])
        case not(TextExpression)

        static func parse(_ text: String) -> TextExpression? {
            var parser = Parser(bytes: Array(text.utf8))
            guard let expression = parser.or(), parser.atEnd else { return nil }
            return expression
        }

        func evaluate(in lexicon: Lexicon, slots: Int) -> Bitset {
            switch self {
            case .word(let word, let prefix):
                var bits = Bitset(count: slots)
                lexicon.insert(word, prefix: prefix, into: &bits)
                return bits
            case .and(let parts):
                var bits = parts[0].evaluate(in: lexicon, slots: slots)
                for part in parts.dropFirst() { bits.formIntersection(part.evaluate(in: lexicon, slots: slots).words) }
                return bits
            case .or(let parts):
                var bits = parts[0].evaluate(in: lexicon, slots: slots)
                for part in parts.dropFirst() { bits.formUnion(part.evaluate(in: lexicon, slots: slots).words) }
                return bits
            case .not(let part):
                var bits = part.evaluate(in: lexicon, slots: slots)
                bits.invert(count: slots)
                return bits
            }
        }

        struct Parser {
            let bytes: [UInt8]
            var position = 0

            var atEnd: Bool {
                mutating get {
                    skipSpaces()
                    return position == bytes.count
                }
            }

            mutating func skipSpaces() { while position < bytes.count, bytes[position] == UInt8(ascii: " ") { position += 1 } }

            mutating func take(_ byte: UInt8) -> Bool {
                skipSpaces()
                guard position < bytes.count, bytes[position] == byte else { return false }
                position += 1
                return true
            }

            mutating func or() -> TextExpression? {
                guard let first = and() else { return nil }
                var parts = [first]
                while take(UInt8(ascii: "|")) {
                    guard let next = and() else { return nil }
                    parts.append(next)
                }
                return parts.count == 1 ? first : .or(parts)
            }

            mutating func and() -> TextExpression? {
                guard let first = unary() else { return nil }
                var parts = [first]
                while true {
                    skipSpaces()
                    // `<->` and `<N>` are phrase operators, not `&`.
                    guard take(UInt8(ascii: "&")) else { break }
                    guard let next = unary() else { return nil }
                    parts.append(next)
                }
                return parts.count == 1 ? first : .and(parts)
            }

            mutating func unary() -> TextExpression? {
                if take(UInt8(ascii: "!")) { return unary().map { .not($0) } }
                if take(UInt8(ascii: "(")) {
                    guard let inner = or(), take(UInt8(ascii: ")")) else { return nil }
                    return inner
                }
                return operand()
            }

            /// `'word'` with `''` and `\x` escapes, then `:*` or nothing.
            mutating func operand() -> TextExpression? {
                guard take(UInt8(ascii: "'")) else { return nil }
                var word: [UInt8] = []
                while true {
                    guard position < bytes.count else { return nil }
                    let byte = bytes[position]
                    position += 1
                    if byte == UInt8(ascii: "\\") {
                        guard position < bytes.count else { return nil }
                        word.append(bytes[position])
                        position += 1
                    } else if byte == UInt8(ascii: "'") {
                        if position < bytes.count, bytes[position] == UInt8(ascii: "'") {
                            word.append(byte)
                            position += 1
                        } else {
                            break
                        }
                    } else {
                        word.append(byte)
                    }
                }
                var prefix = false
                if position < bytes.count, bytes[position] == UInt8(ascii: ":") {
                    // Only `:*` (prefix) is understood; a weight restriction is not.
                    guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "*") else { return nil }
                    position += 2
                    prefix = true
                    if position < bytes.count, ![UInt8(ascii: " "), UInt8(ascii: ")")].contains(bytes[position]) { return nil }
                }
                return .word(String(decoding: word, as: UTF8.self), prefix: prefix)
            }
        }
    }
}

extension DirectoryIndex.TextExpression {
    /// Each operand, in the order PostgreSQL stores a query's items (its Polish notation: an
    /// operator's right operand before its left; the order does not matter once sorted).
    func forEachOperand(_ body: (String, Bool) -> Void) {
        switch self {
        case .word(let word, let prefix): body(word, prefix)
        case .and(let parts), .or(let parts): for part in parts { part.forEachOperand(body) }
        case .not(let part): part.forEachOperand(body)
        }
    }
}
