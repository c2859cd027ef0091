import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

extension DirectoryIndex {
    /// Every entry in a slot (an ordinal); a changed entry gets a new slot at the end and its old
    /// one is marked dead, so posting lists stay sorted by appending.
    struct Store: Sendable {
        var ids: [UUID] = []
        /// Bit per slot: set while the slot's entry is listed as it is (not changed or removed since).
        var aliveBits: [UInt64] = []
        var liveCount = 0
        /// The slots of the last full load in the order of their ids (PostgreSQL's uuid order), and
        /// the slots appended since by id: `slotOf` finds an entry's live slot.
        var slotsByID: [Int32] = []
        var recentSlots: [UUID: Int32] = [:]
        var students: [Int32] = []
        /// Slot i's tags that count for a facet are facetTagIDs[facetTagStart[i] ..< facetTagStart[i + 1]].
        var facetTagStart: [Int32] = [0]
        var facetTagIDs: [UInt16] = []
        var tagNames: [String] = []
        var tagNumber: [String: UInt16] = [:]
        /// The tags by their bytes, numbered as `tagNames`.
        var tagBytes = ByteInterner()
        /// Per tag, the facet it counts for (an index into `DirectoryQuery.Facet.allCases`), or `noFacet`.
        var tagFacet: [UInt8] = []
        /// Per tag, the slots that carry it, as a bitset of `bitWords` words (room for more slots):
        /// a filter is a few bitset operations over all entries instead of a test per match.
        var tagBits: [[UInt64]] = []
        /// Per slot, its country tag and its type tag (`noTag` if none): a slot that fails only the
        /// country (or region, or type) filter counts for that facet alone, without reading its tags.
        var countryTag: [UInt16] = []
        var typeTag: [UInt16] = []
        var bitWords = 0
        var lexicon = Lexicon()
        /// Per slot, its folded acronym (maybe empty) and its SCHAC code, with the slots in byte order of
        /// each (those with an acronym only), for exact matches.
        var acronyms = SlotStrings()
        var schacs = SlotStrings()
        /// Slot i's folded names (`names_folded`, the similarity term of the rank) are
        /// names[nameStart[i] ..< nameStart[i + 1]].
        var names: [UInt8] = []
        var nameStart: [UInt32] = [0]
        /// Per slot, how many distinct trigrams its folded names have (`unknownTrigramCount`: not
        /// ASCII), for the bounds and the similarity of the rank.
        var nameTrigramCount: [UInt16] = []
        /// Per slot, two words: bit `trigramBit(t)` set for each trigram t of its folded names, so
        /// that how many of q's trigrams the names can share is bounded without reading them.
        var nameSignatures: [UInt64] = []
        /// Per slot, its place in the name order (`sort_name, id`) read at the last full load, or
        /// -1 (changed since: PostgreSQL orders those); and its sort name, to place a cursor.
        var namePlace: [Int32] = []
        /// Per slot, its place in the order of creation, newest first (`created_at DESC, id DESC`),
        /// read at the last full load, or -1.
        var createdPlace: [Int32] = []
        /// Slots without places (changed since the last full load).
        var unplaced = 0
        /// Per slot, a hash of its sort name, to check a cursor's.
        var sortNameHash: [UInt32] = []

        /// Most entries without a place in the name order (changed since the last full load) for
        /// pages in name order from the index: each that matches goes to PostgreSQL.
        static let maxUnplaced = 2_000
        static let noFacet: UInt8 = .max
        static let noTag: UInt16 = .max
        static let unknownTrigramCount: UInt16 = .max
        static let countryFacet = UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .country)!)
        static let regionFacet = UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .region)!)
        static let typeFacet = UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .type)!)

        /// Appends an entry read at a full load; its postings go to `builder`.
        mutating func appendLoaded(_ entry: Entry, into builder: inout Lexicon.Builder) throws {
            appendFields(entry)
            let readable = DirectoryIndex.forEachLexemeBytes(in: entry.document) { word, positions in
                builder.add(word, positions: positions, to: &lexicon)
            }
            guard readable else { throw UnreadableDocument(id: entry.id) }
            builder.endDocument()
        }

        /// Appends a changed entry (its document readable).
        mutating func append(_ entry: Entry) {
            let slot = appendFields(entry)
            _ = DirectoryIndex.forEachLexemeBytes(in: entry.document) { word, positions in
                lexicon.add(word, slot: slot, positions: positions)
            }
        }

        /// Appends everything of an entry but its postings; returns its slot.
        @discardableResult
        private mutating func appendFields(_ entry: Entry) -> Int32 {
            let slot = Int32(ids.count)
            ids.append(entry.id)
            liveCount += 1
            recentSlots[entry.id] = slot
            students.append(entry.students.map { Int32(clamping: $0) } ?? -1)
            if Int(slot) >> 6 >= bitWords {
                let grown = max(1024, bitWords * 2)
                for tag in tagBits.indices { tagBits[tag].append(contentsOf: repeatElement(0, count: grown - bitWords)) }
                aliveBits.append(contentsOf: repeatElement(0, count: grown - bitWords))
                bitWords = grown
            }
            aliveBits[Int(slot) >> 6] |= 1 << UInt64(slot & 63)
            var country = Self.noTag
            var type = Self.noTag
            for tag in entry.tags.utf8.split(separator: UInt8(ascii: " ")) {
                let number = tagNumber(tag)
                let facet = tagFacet[Int(number)]
                if facet != Self.noFacet { facetTagIDs.append(number) }
                switch facet {
                case Self.countryFacet: country = number
                case Self.typeFacet: type = number
                default: break
                }
                tagBits[Int(number)][Int(slot) >> 6] |= 1 << UInt64(slot & 63)
            }
            countryTag.append(country)
            typeTag.append(type)
            facetTagStart.append(Int32(facetTagIDs.count))
            let nameBytes = Array(entry.namesFolded.utf8)
            names.append(contentsOf: nameBytes)
            nameStart.append(UInt32(names.count))
            var trigrams: [UInt32] = []
            let ascii = DirectoryIndex.Relevance.trigrams(nameBytes[...], into: &trigrams)
            nameTrigramCount.append(ascii && trigrams.count < Int(Self.unknownTrigramCount) ? UInt16(trigrams.count) : Self.unknownTrigramCount)
            var signature: (UInt64, UInt64) = (0, 0)
            for trigram in trigrams {
                let bit = Self.trigramBit(trigram)
                if bit < 64 { signature.0 |= 1 << UInt64(bit) } else { signature.1 |= 1 << UInt64(bit - 64) }
            }
            nameSignatures.append(signature.0)
            nameSignatures.append(signature.1)
            sortNameHash.append(Self.sortNameHash(entry.sortName))
            namePlace.append(-1)
            createdPlace.append(-1)
            unplaced += 1
            acronyms.append(entry.acronym ?? "")
            schacs.append(entry.schac)
            return slot
        }

        /// The bit (0…127) of a trigram in a name's signature.
        @inline(__always)
        static func trigramBit(_ trigram: UInt32) -> Int { Int((trigram &* 0x9E37_79B1) >> 25) }

        /// The live slot of the entry `id`, if it is listed.
        func slotOf(_ id: UUID) -> Int32? {
            if let slot = recentSlots[id] { return isAlive(slot) ? slot : nil }
            var low = 0
            var high = slotsByID.count
            while low < high {
                let middle = (low + high) / 2
                if Self.precedes(ids[Int(slotsByID[middle])], id) { low = middle + 1 } else { high = middle }
            }
            guard low < slotsByID.count, ids[Int(slotsByID[low])] == id, isAlive(slotsByID[low]) else { return nil }
            return slotsByID[low]
        }

        func isAlive(_ slot: Int32) -> Bool { aliveBits[Int(slot) >> 6] & (1 << UInt64(slot & 63)) != 0 }

        static func sortNameHash(_ name: String) -> UInt32 { UInt32(truncatingIfNeeded: ByteInterner.hash(name.utf8)) }

        /// Gives the arrays filled at a load back their spare capacity.
        mutating func compact() {
            func exact<T>(_ array: inout [T]) { array = array.withUnsafeBufferPointer { Array($0) } }
            exact(&ids)
            exact(&students)
            exact(&facetTagStart)
            exact(&facetTagIDs)
            exact(&countryTag)
            exact(&typeTag)
            exact(&names)
            exact(&nameStart)
            exact(&nameTrigramCount)
            exact(&nameSignatures)
            exact(&sortNameHash)
            exact(&namePlace)
            exact(&createdPlace)
            acronyms.sort()
            schacs.sort()
            // Every slot so far by id.
            var byID = slotsByID + recentSlots.values
            let ids = self.ids
            byID.sort { Self.precedes(ids[Int($0)], ids[Int($1)]) }
            slotsByID = byID
            recentSlots = [:]
        }

        private mutating func tagNumber<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt16 {
            if let number = tagBytes.number(bytes) { return UInt16(number) }
            precondition(tagNames.count < Int(UInt16.max), "more distinct directory tags than the index holds")
            let number = UInt16(tagBytes.intern(bytes))
            let tag = String(decoding: bytes, as: UTF8.self)
            tagNames.append(tag)
            tagNumber[tag] = number
            tagFacet.append(Self.facet(of: tag))
            tagBits.append([UInt64](repeating: 0, count: bitWords))
            return number
        }

        /// The facet a tag counts for: `c:` country (and, through the country, region), `t:` type,
        /// a broad field `f:07`, a language without a level `l:fr`, an offered activity.
        static func facet(of tag: String) -> UInt8 {
            let value = tag.dropFirst(2)
            let facet: DirectoryQuery.Facet?
            switch tag.prefix(2) {
            case "c:": facet = .country
            case "t:": facet = .type
            case "f:": facet = value.count == 2 ? .field : nil
            case "l:": facet = value.contains(":") ? nil : .language
            case "o:": facet = Activity(rawValue: String(value)) != nil ? .offers : nil
            default: facet = nil
            }
            return facet.map { UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: $0)!) } ?? noFacet
        }

        /// Replaces the entries `ids` with `entries` (those of them still listed).
        mutating func replace(_ ids: [UUID], with entries: [Entry]) {
            for id in ids {
                if let slot = slotOf(id) {
                    recentSlots[id] = nil
                    let (word, bit) = (Int(slot) >> 6, UInt64(1) << UInt64(slot & 63))
                    if aliveBits[word] & bit != 0 {
                        aliveBits[word] &= ~bit
                        liveCount -= 1
                    }
                }
            }
            let appended = lexicon.words.count
            for entry in entries where slotOf(entry.id) == nil { append(entry) }
            if lexicon.words.count > appended { lexicon.insertSorted(from: appended) }
        }
    }
}
