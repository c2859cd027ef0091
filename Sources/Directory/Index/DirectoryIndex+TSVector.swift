import Foundation

extension DirectoryIndex {
    /// A tsvector as PostgreSQL prints it (`'word':1A,5 'other':3`): each lexeme (with `''` and `\\`
    /// undoubled) and its positions (weight A, B, C or none for D in the top two bits); nil when the
    /// text is not one.
    static func forEachLexeme(in text: String, _ body: (String, ArraySlice<UInt16>) -> Void) -> Bool {
        forEachLexemeBytes(in: text) { word, positions in body(String(decoding: word, as: UTF8.self), positions) }
    }

    /// As `forEachLexeme`, with each lexeme's bytes (valid during the call only).
    static func forEachLexemeBytes(in text: String, _ body: ([UInt8], ArraySlice<UInt16>) -> Void) -> Bool {
        var text = text
        return text.withUTF8 { bytes -> Bool in
            var i = 0
            var word: [UInt8] = []
            var positions: [UInt16] = []
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: " ") {
                    i += 1
                    continue
                }
                guard bytes[i] == UInt8(ascii: "'") else { return false }
                i += 1
                word.removeAll(keepingCapacity: true)
                while true {
                    guard i < bytes.count else { return false }
                    let byte = bytes[i]
                    if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\\") {
                        if i + 1 < bytes.count, bytes[i + 1] == byte {
                            word.append(byte)
                            i += 2
                            continue
                        }
                        guard byte == UInt8(ascii: "'") else { return false }
                        i += 1
                        break
                    }
                    word.append(byte)
                    i += 1
                }
                positions.removeAll(keepingCapacity: true)
                if i < bytes.count, bytes[i] == UInt8(ascii: ":") {
                    i += 1
                    while true {
                        var value: UInt32 = 0
                        var digits = 0
                        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, digits < 6 {
                            value = value * 10 + UInt32(bytes[i] - 0x30)
                            i += 1
                            digits += 1
                        }
                        guard digits > 0, value <= UInt32(Relevance.maxEntryPosition) else { return false }
                        var weight: UInt16 = 0
                        if i < bytes.count {
                            switch bytes[i] {
                            case UInt8(ascii: "A"):
                                weight = 3
                                i += 1
                            case UInt8(ascii: "B"):
                                weight = 2
                                i += 1
                            case UInt8(ascii: "C"):
                                weight = 1
                                i += 1
                            case UInt8(ascii: "D"):
                                weight = 0
                                i += 1
                            default: break
                            }
                        }
                        positions.append(weight << 14 | UInt16(value))
                        guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { break }
                        i += 1
                    }
                }
                body(word, positions[...])
            }
            return true
        }
    }
}
