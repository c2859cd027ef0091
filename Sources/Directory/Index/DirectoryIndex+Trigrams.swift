import Foundation

/// pg_trgm's trigrams and similarity (`show_trgm`, `cnt_sml`), for text in ASCII.
extension DirectoryIndex.Relevance {
    /// The trigrams of `text` as pg_trgm makes them (`show_trgm`), each its three bytes in one
    /// number, sorted, each once; nil when `text` has a byte outside ASCII.
    static func trigrams(_ text: [UInt8]) -> [UInt32]? {
        var result: [UInt32] = []
        guard trigrams(text[...], into: &result) else { return nil }
        return result
    }

    /// As `trigrams(_:)`, into `result` (emptied first); false when `text` is not ASCII.
    static func trigrams(_ text: ArraySlice<UInt8>, into result: inout [UInt32]) -> Bool {
        result.removeAll(keepingCapacity: true)
        guard forEachTrigram(text, { result.append($0) }) else { return false }
        result.sort()
        var kept = 0
        for i in result.indices where i == 0 || result[i] != result[kept - 1] {
            result[kept] = result[i]
            kept += 1
        }
        result.removeLast(result.count - kept)
        return true
    }

    /// Calls `body` with each trigram of `text` as pg_trgm makes them, in the order of the text,
    /// repeats included; false (having stopped) at a byte outside ASCII.
    @discardableResult
    static func forEachTrigram(_ text: ArraySlice<UInt8>, _ body: (UInt32) -> Void) -> Bool {
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            guard byte < 0x80 else { return false }
            guard isWordByte(byte) else {
                index += 1
                continue
            }
            // A word: "  word " gives a trigram at each of its bytes and one more.
            var a: UInt32 = 0x20
            var b: UInt32 = 0x20
            while index < text.endIndex, isWordByte(text[index]) {
                let c = UInt32(lower(text[index]))
                body(a << 16 | b << 8 | c)
                (a, b) = (b, c)
                index += 1
            }
            body(a << 16 | b << 8 | 0x20)
            if index < text.endIndex, text[index] >= 0x80 { return false }
        }
        return true
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    private static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte }

    /// pg_trgm's `cnt_sml`: shared trigrams ÷ trigrams of either, as a float4.
    static func similarity(_ a: [UInt32], _ b: [UInt32]) -> Float {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        var (i, j, shared) = (0, 0, 0)
        while i < a.count, j < b.count {
            if a[i] == b[j] {
                shared += 1
                i += 1
                j += 1
            } else if a[i] < b[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return Float(shared) / Float(a.count + b.count - shared)
    }
}
