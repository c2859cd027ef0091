import AccordCore
import Institutions
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

/// The directory in memory, for the part of a search that PostgreSQL can only do by reading every
/// matching row: which entries a text query matches under the filters, and the facets.
///
/// A topic word such as `architecture` is in 26,000 of a million profiles. PostgreSQL finds them in
/// the GIN index but must then read each one's row (3.5 µs each, 1.7 GB of heap) to test the
/// filters and count the facets, 100–300 ms a query. Here each entry is its lexemes (exactly those
/// of its `document` tsvector, in posting lists, with their positions and weights), its tags (as in
/// `directory_entries.tags`, which is what every filter tests), its folded names and its student
/// count, so the same work is a pass over bitsets and small arrays: a millisecond. In relevance
/// order the index also ranks every match (`Relevance`) and keeps only those that can be on the
/// page. PostgreSQL does the rest over the ids the index found (`DirectoryService`) — the exact
/// rank, order, cursor, snippet — and checks every condition again on those rows, so an item is
/// never one that does not match.
///
/// Kept current through `accord_directory` (Schema/0009_directory_index_notify.sql): the ids a
/// statement changed are read again; `*` (a bulk change), a changed listener connection or too many
/// dead entries read everything again. The index answers nothing — the search falls back to SQL —
/// until it is loaded, while changes are pending or being read, while it reloads, and while the
/// listener has no connection; so its answers lag the database by at most the delivery of a
/// notification (a millisecond or so), as the identity cache's do.
public final class DirectoryIndex: Service, Sendable {
    /// The channel the triggers notify.
    public static let channel = "accord_directory"

    public struct Configuration: Sendable {
        /// Entries read per statement when everything is (re)loaded.
        public var loadBatch: Int
        /// Most pending changed ids before a full reload is cheaper.
        public var maxPending: Int

        public init(loadBatch: Int = 20_000, maxPending: Int = 10_000) {
            self.loadBatch = loadBatch
            self.maxPending = maxPending
        }
    }

    /// What the index found for a query.
    public struct Result: Sendable {
        /// The entries that meet the whole query, in no particular order; nil when there are more
        /// than the caller's limit.
        public var ids: [UUID]?
        /// For each of `ids`: whether its document matches q with no word widened (the strict form),
        /// a term of the rank.
        public var strict: [Bool]
        /// How many entries meet the whole query.
        public var total: Int
        /// Per facet, value → count, each with its own filter left out; nil when not asked for.
        public var facets: [String: [String: Int]]?
        /// Whether the matches were ordered here (relevance or name order): `ids` are then only
        /// those that can be on the page, however many match.
        public var ranked = false
    }

    public struct Statistics: Sendable, Equatable {
        /// Entries listed now.
        public var entries: Int
        /// Slots of entries changed or removed since the last full load.
        public var dead: Int
        public var lexemes: Int
        public var tags: Int
        /// Full loads, and change notifications applied.
        public var loads: Int
        public var applied: Int
        /// Whether searches are answered from the index now.
        public var serving: Bool
        /// The directory_version the index reflects.
        public var version: Int64
    }

    let pool: PGPool
    let listener: PGListener
    let configuration: Configuration
    let logger: Logger
    private let state = Mutex(State())
    /// The entries, behind a readers-writer lock: searches evaluate in parallel, changes apply alone.
    private let box = StoreBox()

    struct State {
        /// Whether `box` holds a loaded store.
        var loaded = false
        /// The listener epoch the store has followed since its load.
        var epoch: Int?
        /// Changed ids not applied yet, with the number of the last notification naming each.
        var pending: [UUID: UInt64] = [:]
        var sequence: UInt64 = 0
        /// The directory_version the store reflects: every change numbered up to it is in.
        var version: Int64 = -1
        /// The highest version notified; the store reflects it once nothing is pending.
        var notified: Int64 = -1
        var reloadRequested = false
        var reloading = false
        var loads = 0
        var applied = 0
        /// Wakes the task that applies changes.
        var wake: AsyncStream<Void>.Continuation?
    }

    public init(pool: PGPool, listener: PGListener, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "accord.directory.index")) {
        self.pool = pool
        self.listener = listener
        self.configuration = configuration
        self.logger = logger
    }

    /// Whether searches are answered from the index now.
    public var isServing: Bool {
        let epoch = listener.connectionEpoch
        return state.withLock { Self.serving($0, epoch: epoch) }
    }

    private static func serving(_ state: State, epoch: Int?) -> Bool {
        state.loaded && epoch != nil && state.epoch == epoch && state.pending.isEmpty && !state.reloadRequested && !state.reloading
    }

    public var statistics: Statistics {
        let epoch = listener.connectionEpoch
        let (entries, dead, lexemes, tags) = box.read { store in
            (store?.liveCount ?? 0, store.map { $0.ids.count - $0.liveCount } ?? 0, store?.lexicon.words.count ?? 0, store?.tagNames.count ?? 0)
        }
        return state.withLock { state in
            Statistics(
                entries: entries, dead: dead, lexemes: lexemes, tags: tags,
                loads: state.loads, applied: state.applied, serving: Self.serving(state, epoch: epoch), version: state.version)
        }
    }

    /// The entries that match `query` (which has q; `text` are its forms) and its facets, or nil
    /// when the index is not serving, has not yet applied `text.directoryVersion` (a change
    /// committed before the search began), or cannot read the text form: the caller then searches
    /// with SQL. `ids` is nil when more than `maxIDs` entries match.
    public func evaluate(_ query: DirectoryQuery, text: DirectoryService.TextForms, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
        guard let (expression, strict) = Self.expressions(text), answers(atLeast: text.directoryVersion) else { return nil }
        // A change applied since is newer than that version, which is as good; a reload empties the box.
        return box.read { store in
            store?.evaluate(
                query, expression: expression, strict: strict, folded: text.folded, domain: text.domain, countryRegions: countryRegions, maxIDs: maxIDs)
        }
    }

    /// As `evaluate(_:text:…)`, for a search without q (filters only): every listed entry is a
    /// match. `directoryVersion` is the directory's version read when the search began.
    public func evaluate(_ query: DirectoryQuery, directoryVersion: Int64, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
        precondition(query.text == nil, "a search with q is evaluated with its text forms")
        guard answers(atLeast: directoryVersion) else { return nil }
        return box.read { store in
            store?.evaluate(query, expression: nil, strict: nil, folded: "", domain: nil, matchAll: true, countryRegions: countryRegions, maxIDs: maxIDs)
        }
    }

    /// Whether the index is serving and has applied every change up to `version`.
    private func answers(atLeast version: Int64) -> Bool {
        let epoch = listener.connectionEpoch
        return state.withLock { Self.serving($0, epoch: epoch) && $0.version >= version }
    }

    // MARK: Following the database

    /// Subscribes to `accord_directory`, loads everything, then applies each notified change, until
    /// graceful shutdown; subscribes again (after a pause) when the subscription or a load fails.
    public func run() async throws {
        await listener.follow(channel: Self.channel, lost: { error in
            // Notifications may have been missed: nothing is served until everything is read again.
            self.state.withLock { $0.reloadRequested = true }
            if let error {
                self.logger.warning("directory index cannot follow the database; searching with SQL", metadata: ["error": "\(error)"])
            }
        }) { notifications in
            let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            self.state.withLock { $0.wake = wake.continuation }
            wake.continuation.yield()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await notification in notifications { self.note(notification.payload) }
                }
                group.addTask {
                    for await _ in wake.stream { try await self.synchronize() }
                }
                group.addTask {
                    // A new listener connection sends no notification: look for one.
                    while true {
                        try await Task.sleep(for: .milliseconds(250))
                        wake.continuation.yield()
                    }
                }
                // Either ends only when the listener shuts down or a read fails.
                _ = try await group.next()
                group.cancelAll()
            }
        }
        state.withLock { $0.loaded = false }
        box.write { $0 = nil }
    }

    /// Notes a notification's payload: ids to read again, or `*`.
    func note(_ payload: String) {
        let wake = state.withLock { state -> AsyncStream<Void>.Continuation? in
            state.sequence += 1
            let parts = payload.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let version = Int64(parts[0]) else {
                state.reloadRequested = true  // not a payload of ours: be safe
                state.pending.removeAll()
                return state.wake
            }
            state.notified = max(state.notified, version)
            if parts[1] == "*" {
                state.reloadRequested = true
            } else {
                for part in parts[1].split(separator: ",") {
                    if let id = UUID(uuidString: String(part)) {
                        state.pending[id] = state.sequence
                    } else {
                        state.reloadRequested = true
                    }
                }
                if state.pending.count > configuration.maxPending { state.reloadRequested = true }
            }
            if state.reloadRequested { state.pending.removeAll() }
            return state.wake
        }
        wake?.yield()
    }

    /// One step: a full load when the index has none, follows another connection, was told to, or
    /// has too many dead slots; else the pending changes.
    func synchronize() async throws {
        while true {
            guard let epoch = listener.connectionEpoch else { return }
            enum Step { case reload, apply([UUID: UInt64]), done }
            // This task is the only writer, so the box does not change under this check.
            let tooManyDead = box.read { store in store.map { $0.ids.count - $0.liveCount > max(10_000, $0.liveCount / 4) } ?? false }
            let step = state.withLock { state -> Step in
                if !state.loaded || state.epoch != epoch || state.reloadRequested || tooManyDead {
                    state.reloadRequested = false
                    state.reloading = true
                    state.loaded = false
                    state.pending.removeAll()
                    return .reload
                }
                if state.pending.isEmpty { return .done }
                return .apply(Dictionary(uniqueKeysWithValues: state.pending.prefix(500).map { ($0.key, $0.value) }))
            }
            switch step {
            case .done:
                return
            case .reload:
                // Not served while reloading: let it go now rather than hold two in memory.
                box.write { $0 = nil }
                let started = ContinuousClock.now
                let snapshot: Snapshot
                do {
                    snapshot = try await Snapshot.load(pool: pool, batch: configuration.loadBatch)
                } catch {
                    state.withLock { $0.reloading = false; $0.reloadRequested = true }
                    throw error
                }
                let (store, version) = (snapshot.store, snapshot.version)
                let count = store.liveCount
                let lexemes = store.lexicon.words.count
                box.write { $0 = store }
                state.withLock { state in
                    state.loaded = true
                    state.epoch = epoch
                    state.reloading = false
                    state.loads += 1
                    state.version = version
                    state.notified = max(state.notified, version)
                    if state.pending.isEmpty { state.version = state.notified }
                }
                let elapsed = (ContinuousClock.now - started).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
                logger.info("directory index loaded", metadata: [
                    "entries": "\(count)", "lexemes": "\(lexemes)", "seconds": "\(String(format: "%.1f", seconds))",
                ])
            case .apply(let batch):
                let ids = Array(batch.keys)
                let rows = try await pool.query(Self.select("WHERE e.id = ANY (\(ids))"))
                let entries = try rows.map(Entry.init(row:))
                guard state.withLock({ $0.epoch == epoch && !$0.reloading && $0.loaded }) else { continue }
                box.write { $0?.replace(ids, with: entries) }
                state.withLock { state in
                    state.applied += 1
                    for (id, sequence) in batch where state.pending[id] == sequence { state.pending[id] = nil }
                    if state.pending.isEmpty { state.version = state.notified }
                }
            }
        }
    }

    /// Reads every entry, in batches in id order.
    static func load(pool: PGPool, batch: Int) async throws -> Store {
        var store = Store()
        var after: UUID?
        while true {
            let condition: PGQuery = after.map { "WHERE e.id > \($0)" } ?? ""
            let rows = try await pool.query(Self.select(condition, orderedLimit: batch))
            for row in rows { store.append(try Entry(row: row)) }
            guard rows.count == batch, let last = rows.last else { break }
            after = try last.column(0, as: UUID.self)
        }
        store.lexicon.sortWords()
        // The name order, as PostgreSQL sorts (its collation): an entry changed since gets a new
        // slot without a place in it.
        let order = try await pool.query("SELECT id FROM directory_entries ORDER BY sort_name, id")
        var place: Int32 = 0
        for row in order {
            if let slot = store.slotOf[try row.column(0, as: UUID.self)] {
                store.namePlace[Int(slot)] = place
                store.unplaced -= 1
            }
            place += 1
        }
        return store
    }

    /// The directory as loaded once: what the index installs on a (re)load, and what tools use
    /// (`accord directory sql --index` shows the statements the server runs with the index).
    public struct Snapshot: Sendable {
        let store: Store
        /// The directory_version it reflects: every change numbered up to it committed before the load began.
        public let version: Int64

        public static func load(pool: PGPool, batch: Int = 20_000) async throws -> Snapshot {
            let version = try await pool.query("SELECT version FROM directory_version").scalar(Int64.self)
            return Snapshot(store: try await DirectoryIndex.load(pool: pool, batch: batch), version: version)
        }

        /// As `DirectoryIndex.evaluate`, on this snapshot whatever the directory's version now.
        public func evaluate(_ query: DirectoryQuery, text: DirectoryService.TextForms, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
            guard let (expression, strict) = DirectoryIndex.expressions(text) else { return nil }
            return store.evaluate(
                query, expression: expression, strict: strict, folded: text.folded, domain: text.domain, countryRegions: countryRegions, maxIDs: maxIDs)
        }

        /// As `DirectoryIndex.evaluate(_:directoryVersion:…)`, on this snapshot.
        public func evaluate(_ query: DirectoryQuery, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
            store.evaluate(query, expression: nil, strict: nil, folded: "", domain: nil, matchAll: true, countryRegions: countryRegions, maxIDs: maxIDs)
        }
    }

    /// The fuzzy form of q, and the strict one where it differs; nil when either cannot be parsed.
    static func expressions(_ text: DirectoryService.TextForms) -> (TextExpression?, TextExpression?)? {
        guard let fuzzy = text.fuzzy else { return (nil, nil) }
        guard let expression = TextExpression.parse(fuzzy) else { return nil }
        guard let form = text.strict, form != fuzzy else { return (expression, nil) }
        guard let strict = TextExpression.parse(form) else { return nil }
        return (expression, strict)
    }

    /// The columns an `Entry` is read from: the document as text (its lexemes with their positions
    /// and weights, one value instead of an array of many small ones: a million entries hold 40
    /// million lexemes), the folded names (the similarity term of the rank) and the tags as one
    /// string (32 million of them).
    static func select(_ condition: PGQuery, orderedLimit: Int? = nil) -> PGQuery {
        var sql: PGQuery = """
            SELECT e.id, e.acronym_folded, e.schac, e.student_count, array_to_string(e.tags, ' '),
                   e.document::text, e.names_folded, e.sort_name
            FROM directory_entries e \(condition)
            """
        if let orderedLimit { sql.append(" ORDER BY e.id LIMIT \(orderedLimit)") }
        return sql
    }

    struct Entry {
        var id: UUID
        var acronym: String?
        var schac: String
        var students: Int?
        var tags: String
        /// The document's lexemes in its order (byte order), and each one's positions: those of
        /// lexeme i are positions[positionStart[i] ..< positionStart[i + 1]].
        var lexemes: [String] = []
        var positionStart: [Int32] = [0]
        var positions: [UInt16] = []
        var namesFolded: String
        var sortName: String

        init(row: PGRow) throws {
            let document: String
            (id, acronym, schac, students, tags, document, namesFolded, sortName) = try row.decode(
                (UUID, String?, String, Int?, String, String, String, String).self)
            var lexemes: [String] = []
            var positionStart: [Int32] = [0]
            var positions: [UInt16] = []
            let readable = DirectoryIndex.forEachLexeme(in: document) { word, wordPositions in
                lexemes.append(word)
                positions.append(contentsOf: wordPositions)
                positionStart.append(Int32(positions.count))
            }
            guard readable else { throw UnreadableDocument(id: id) }
            (self.lexemes, self.positionStart, self.positions) = (lexemes, positionStart, positions)
        }
    }

    /// A document the index cannot read (not a tsvector as PostgreSQL prints one).
    struct UnreadableDocument: Error, CustomStringConvertible {
        var id: UUID
        var description: String { "the directory index cannot read the document of entry \(id)" }
    }
}

// MARK: - The store

extension DirectoryIndex {
    /// Every entry in a slot (an ordinal); a changed entry gets a new slot at the end and its old
    /// one is marked dead, so posting lists stay sorted by appending.
    struct Store: Sendable {
        var ids: [UUID] = []
        /// Bit per slot: set while the slot's entry is listed as it is (not changed or removed since).
        var aliveBits: [UInt64] = []
        var liveCount = 0
        var slotOf: [UUID: Int32] = [:]
        var students: [Int32] = []
        /// Slot i's tags are tagIDs[tagStart[i] ..< tagStart[i + 1]].
        var tagStart: [Int32] = [0]
        var tagIDs: [UInt16] = []
        var tagNames: [String] = []
        var tagNumber: [String: UInt16] = [:]
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
        var acronyms: [String: [Int32]] = [:]
        var schacs: [String: [Int32]] = [:]
        /// Slot i's folded names (`names_folded`, the similarity term of the rank) are
        /// names[nameStart[i] ..< nameStart[i + 1]].
        var names: [UInt8] = []
        var nameStart: [UInt32] = [0]
        /// Per slot, its place in the name order (`sort_name, id`) read at the last full load, or
        /// -1 (changed since: PostgreSQL orders those); and its sort name, to place a cursor.
        var namePlace: [Int32] = []
        var unplaced = 0
        var sortNames: [UInt8] = []
        var sortNameStart: [UInt32] = [0]

        /// Most matches ranked in memory; beyond, the SQL search finds the page.
        static let maxRanked = 200_000
        /// Most entries without a place in the name order (changed since the last full load) for
        /// pages in name order from the index: each that matches goes to PostgreSQL.
        static let maxUnplaced = 2_000
        static let noFacet: UInt8 = .max
        static let noTag: UInt16 = .max
        static let countryFacet = UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .country)!)
        static let regionFacet = UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .region)!)
        static let typeFacet = UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .type)!)

        mutating func append(_ entry: Entry) {
            let slot = Int32(ids.count)
            ids.append(entry.id)
            liveCount += 1
            slotOf[entry.id] = slot
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
            defer {
                countryTag.append(country)
                typeTag.append(type)
            }
            for tag in entry.tags.utf8.split(separator: UInt8(ascii: " ")) {
                let number = tagNumber(String(decoding: tag, as: UTF8.self))
                tagIDs.append(number)
                switch tagFacet[Int(number)] {
                case Self.countryFacet: country = number
                case Self.typeFacet: type = number
                default: break
                }
                tagBits[Int(number)][Int(slot) >> 6] |= 1 << UInt64(slot & 63)
            }
            tagStart.append(Int32(tagIDs.count))
            for (i, word) in entry.lexemes.enumerated() {
                lexicon.add(word, slot: slot, positions: entry.positions[Int(entry.positionStart[i])..<Int(entry.positionStart[i + 1])])
            }
            names.append(contentsOf: entry.namesFolded.utf8)
            nameStart.append(UInt32(names.count))
            sortNames.append(contentsOf: entry.sortName.utf8)
            sortNameStart.append(UInt32(sortNames.count))
            namePlace.append(-1)
            unplaced += 1
            if let acronym = entry.acronym { acronyms[acronym, default: []].append(slot) }
            schacs[entry.schac, default: []].append(slot)
        }

        private mutating func tagNumber(_ tag: String) -> UInt16 {
            if let number = tagNumber[tag] { return number }
            precondition(tagNames.count < Int(UInt16.max), "more distinct directory tags than the index holds")
            let number = UInt16(tagNames.count)
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
                if let slot = slotOf.removeValue(forKey: id) {
                    let (word, bit) = (Int(slot) >> 6, UInt64(1) << UInt64(slot & 63))
                    if aliveBits[word] & bit != 0 {
                        aliveBits[word] &= ~bit
                        liveCount -= 1
                    }
                }
            }
            let appended = lexicon.words.count
            for entry in entries where slotOf[entry.id] == nil { append(entry) }
            if lexicon.words.count > appended { lexicon.insertSorted(from: appended) }
        }

        /// `strict` is the strict form of q when it differs from `expression` (the fuzzy form).
        /// `matchAll`: a search without q, which every listed entry matches.
        func evaluate(
            _ query: DirectoryQuery, expression: TextExpression?, strict: TextExpression?, folded: String, domain: String?,
            matchAll: Bool = false, countryRegions: [String: [String]], maxIDs: Int, maxRanked: Int = Self.maxRanked
        ) -> Result {
            let slots = ids.count
            // The text: the document's words, or the exact acronym or SCHAC code.
            let documents = expression.map { $0.evaluate(in: lexicon, slots: slots) } ?? Bitset(count: slots)
            let strictDocuments = strict.map { $0.evaluate(in: lexicon, slots: slots) } ?? documents
            var matches = matchAll ? Bitset(words: Array(aliveBits.prefix((slots + 63) / 64))) : documents
            if !matchAll {
                for slot in acronyms[folded] ?? [] { matches.insert(Int(slot)) }
                if let domain { for slot in schacs[domain] ?? [] { matches.insert(Int(slot)) } }
                matches.formIntersection(aliveBits)
            }

            // The filters as groups of tags, one bit each: faceted ones first, then the others.
            let faceted = DirectoryQuery.Facet.allCases.compactMap { facet in query.tags(for: facet).map { (facet, $0) } }
            let groupTags: [[Int]] = (faceted.map(\.1) + query.plainTagFilters).map { tags in tags.compactMap { tagNumber[$0].map(Int.init) } }

            let facetOfGroup = faceted.map { UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: $0.0)!) }
            let everyFacet: UInt8 = (1 << UInt8(DirectoryQuery.Facet.allCases.count)) - 1
            let countryBit: UInt8 = 1 << UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .country)!)
            let regionBit: UInt8 = 1 << UInt8(DirectoryQuery.Facet.allCases.firstIndex(of: .region)!)

            // Relevance order: every match is ranked here, and only the entries that can be on the
            // page go to PostgreSQL (Relevance).
            var relevance: Relevance?
            var after: Double?
            // Name order: the entries with the first places after the cursor's, and those without
            // a place (changed since the load), when there are not too many of those.
            var byName = false
            var afterPlace: Int32 = -1
            if query.sort == .name, unplaced <= Self.maxUnplaced {
                byName = true
                if let cursor = query.cursor {
                    if let (key, id) = try? DirectoryCursor.decode(cursor, for: query), case .name(let value) = key,
                       let slot = slotOf[id], namePlace[Int(slot)] >= 0,
                       sortNames[Int(sortNameStart[Int(slot)])..<Int(sortNameStart[Int(slot) + 1])].elementsEqual(value.utf8) {
                        afterPlace = namePlace[Int(slot)]
                    } else {
                        byName = false  // an entry changed or gone since: PostgreSQL places the cursor
                    }
                }
            }
            if query.sort == .relevance {
                relevance = Relevance(expression: expression, folded: folded)
                if let cursor = query.cursor {
                    if let (key, _) = try? DirectoryCursor.decode(cursor, for: query), case .rank(let value) = key {
                        after = value
                    } else {
                        relevance = nil  // the search says what is wrong with it
                    }
                }
            }
            var foundSlots: [Int32] = []

            let low = query.minStudents.map { Int32(clamping: $0) }
            let high = query.maxStudents.map { Int32(clamping: $0) }
            var counts = [Int32](repeating: 0, count: query.withFacets ? tagNames.count : 0)
            var regionCounts = [Int32](repeating: 0, count: query.withFacets ? tagNames.count : 0)
            var total = 0
            var found: [UUID] = []
            var foundStrict: [Bool] = []
            /// An entry that meets q and every filter without a facet, and fails the faceted
            /// filters in `failing` (one bit per group).
            func visit(_ slot: Int, failing: UInt32) {
                if low != nil || high != nil {
                    let students = self.students[slot]
                    if students < 0 { return }
                    if let low, students < low { return }
                    if let high, students > high { return }
                }
                let counted: UInt8
                if failing == 0 {
                    total += 1
                    if byName {
                        foundSlots.append(Int32(slot))
                    } else if relevance != nil {
                        if foundSlots.count <= maxRanked { foundSlots.append(Int32(slot)) }
                    } else if found.count <= maxIDs {
                        found.append(ids[slot])
                        foundStrict.append(strictDocuments.contains(slot))
                    }
                    counted = everyFacet
                } else if failing & (failing - 1) == 0 {
                    // Fails one faceted filter: counts for that facet only.
                    counted = 1 << facetOfGroup[failing.trailingZeroBitCount]
                } else {
                    return
                }
                guard query.withFacets else { return }
                switch counted {
                case countryBit:
                    let tag = countryTag[slot]
                    if tag != Self.noTag { counts[Int(tag)] += 1 }
                case regionBit:
                    let tag = countryTag[slot]
                    if tag != Self.noTag { regionCounts[Int(tag)] += 1 }
                case 1 << Self.typeFacet:
                    let tag = typeTag[slot]
                    if tag != Self.noTag { counts[Int(tag)] += 1 }
                default:
                    for k in Int(tagStart[slot])..<Int(tagStart[slot + 1]) {
                        let tag = Int(tagIDs[k])
                        let facet = tagFacet[tag]
                        guard facet != Self.noFacet else { continue }
                        let bit: UInt8 = 1 << facet
                        if bit == countryBit {
                            if counted & countryBit != 0 { counts[tag] += 1 }
                            if counted & regionBit != 0 { regionCounts[tag] += 1 }
                        } else if counted & bit != 0 {
                            counts[tag] += 1
                        }
                    }
                }
            }
            // One pass over the entries 64 at a time: the filters are unions of tag bitsets, and
            // only entries that fail at most one faceted filter are visited (the others count for
            // nothing).
            let facetedCount = faceted.count
            var groupWords = [UInt64](repeating: 0, count: groupTags.count)
            for i in matches.words.indices {
                var m = matches.words[i]
                guard m != 0 else { continue }
                for k in groupTags.indices {
                    var word: UInt64 = 0
                    for tag in groupTags[k] { word |= tagBits[tag][i] }
                    groupWords[k] = word
                    if k >= facetedCount { m &= word }
                }
                var failingOne: UInt64 = 0
                var failingTwo: UInt64 = 0
                for k in 0..<facetedCount {
                    let fails = ~groupWords[k]
                    failingTwo |= failingOne & fails
                    failingOne |= fails
                }
                m &= ~failingTwo
                while m != 0 {
                    let bit = m.trailingZeroBitCount
                    m &= m - 1
                    var failing: UInt32 = 0
                    for k in 0..<facetedCount where groupWords[k] & (1 << UInt64(bit)) == 0 { failing |= 1 << UInt32(k) }
                    visit(i << 6 | bit, failing: failing)
                }
            }

            var facets: [String: [String: Int]]?
            if query.withFacets {
                var result: [String: [String: Int]] = [:]
                for facet in DirectoryQuery.Facet.allCases { result[facet.rawValue] = [:] }
                for tag in 0..<tagNames.count where counts[tag] > 0 || regionCounts[tag] > 0 {
                    let value = String(tagNames[tag].dropFirst(2))
                    if counts[tag] > 0 {
                        let facet = DirectoryQuery.Facet.allCases[Int(tagFacet[tag])]
                        result[facet.rawValue, default: [:]][value, default: 0] += Int(counts[tag])
                    }
                    if regionCounts[tag] > 0 {
                        for region in countryRegions[value] ?? [] {
                            result[DirectoryQuery.Facet.region.rawValue, default: [:]][region, default: 0] += Int(regionCounts[tag])
                        }
                    }
                }
                facets = result
            }
            if byName {
                let kept = namePageCandidates(foundSlots, keep: query.limit + 1, after: afterPlace)
                return Result(ids: kept.map { ids[Int($0)] }, strict: kept.map { _ in false }, total: total, facets: facets, ranked: true)
            }
            if let relevance, foundSlots.count <= maxRanked {
                var exact = Set(acronyms[folded] ?? [])
                if let domain { exact.formUnion(schacs[domain] ?? []) }
                let bounds = rankBounds(foundSlots, relevance: relevance, strict: strictDocuments, exact: exact)
                let kept = Self.candidates(bounds, keep: query.limit + 1, after: after)
                return Result(
                    ids: kept.map { ids[Int(foundSlots[$0])] }, strict: kept.map { strictDocuments.contains(Int(foundSlots[$0])) },
                    total: total, facets: facets, ranked: true)
            }
            if relevance != nil {
                // Too many to rank here: the SQL search finds the page.
                return Result(ids: nil, strict: [], total: total, facets: facets)
            }
            let complete = found.count <= maxIDs
            return Result(ids: complete ? found : nil, strict: complete ? foundStrict : [], total: total, facets: facets)
        }
    }

    /// The lexemes: posting lists of slots, and the words in byte order for prefix matching (the
    /// order PostgreSQL compares lexemes in).
    struct Lexicon: Sendable {
        var number: [String: Int32] = [:]
        var words: [String] = []
        var postings: [[Int32]] = []
        /// Per word, for each of its postings, the positions and weights there (`encode`).
        var positions: [[UInt32]] = []
        /// Positions of postings with more than one.
        var overflow: [UInt16] = []
        /// Word numbers in byte order of their words.
        var sorted: [Int32] = []

        mutating func add(_ word: String, slot: Int32, positions wordPositions: ArraySlice<UInt16>) {
            let encoded = encode(wordPositions)
            if let n = number[word] {
                // A document lists each lexeme once, so a slot is appended at most once.
                postings[Int(n)].append(slot)
                positions[Int(n)].append(encoded)
                return
            }
            let n = Int32(words.count)
            number[word] = n
            words.append(word)
            postings.append([slot])
            positions.append([encoded])
        }

        mutating func sortWords() {
            sorted = (0..<Int32(words.count)).sorted { words[Int($0)].utf8.lexicographicallyPrecedes(words[Int($1)].utf8) }
        }

        /// Puts the words numbered `first...` into the sorted list.
        mutating func insertSorted(from first: Int) {
            for n in first..<words.count {
                sorted.insert(Int32(n), at: lowerBound(words[n]))
            }
        }

        /// The first position in `sorted` whose word is not before `key` in byte order.
        func lowerBound(_ key: String) -> Int {
            lowerBound(bytes: Array(key.utf8))
        }

        func lowerBound(bytes key: [UInt8]) -> Int {
            var low = 0
            var high = sorted.count
            while low < high {
                let middle = (low + high) / 2
                if words[Int(sorted[middle])].utf8.lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
            }
            return low
        }

        /// The slots of documents with `word`, or with a word that starts with it.
        func insert(_ word: String, prefix: Bool, into bits: inout Bitset) {
            for n in words(matching: word, prefix: prefix) {
                for slot in postings[n] { bits.insert(Int(slot)) }
            }
        }

        /// The numbers of the words equal to `word`, or (with `prefix`) starting with it, in byte
        /// order.
        func words(matching word: String, prefix: Bool) -> [Int] {
            guard prefix else { return number[word].map { [Int($0)] } ?? [] }
            // The words from the prefix up to (not including) the first word after every word
            // that starts with it: the prefix with its last byte below 0xFF one higher and what
            // follows dropped. Two binary searches instead of a comparison per word: a prefix such
            // as `architecture` starts a thousand words (domain names).
            let bytes = Array(word.utf8)
            let first = lowerBound(bytes: bytes)
            var beyond = bytes
            while beyond.last == 0xFF { beyond.removeLast() }
            let end: Int
            if let last = beyond.popLast() {
                beyond.append(last + 1)
                end = lowerBound(bytes: beyond)
            } else {
                end = sorted.count
            }
            return (first..<max(first, end)).map { Int(sorted[$0]) }
        }
    }

    struct Bitset {
        var words: [UInt64]

        init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }
        init(words: [UInt64]) { self.words = words }

        mutating func insert(_ i: Int) { words[i >> 6] |= 1 << UInt64(i & 63) }
        func contains(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

        /// With the first `words.count` words of `other` (which has at least as many).
        mutating func formIntersection(_ other: [UInt64]) {
            precondition(other.count >= words.count)
            other.withUnsafeBufferPointer { other in
                words.withUnsafeMutableBufferPointer { words in for i in words.indices { words[i] &= other[i] } }
            }
        }

        mutating func formUnion(_ other: [UInt64]) {
            precondition(other.count >= words.count)
            other.withUnsafeBufferPointer { other in
                words.withUnsafeMutableBufferPointer { words in for i in words.indices { words[i] |= other[i] } }
            }
        }
        mutating func invert(count: Int) {
            for i in words.indices { words[i] = ~words[i] }
            if count % 64 != 0, !words.isEmpty { words[words.count - 1] &= (1 << UInt64(count % 64)) - 1 }
        }

        func forEach(_ body: (Int) -> Void) {
            for (index, word) in words.enumerated() where word != 0 {
                var rest = word
                while rest != 0 {
                    body(index << 6 | rest.trailingZeroBitCount)
                    rest &= rest - 1
                }
            }
        }
    }

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

/// A value behind a readers-writer lock (pthread): many readers at once, one writer alone.
final class StoreBox: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var store: DirectoryIndex.Store?

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<T>(_ body: (borrowing DirectoryIndex.Store?) -> T) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body(store)
    }

    func write<T>(_ body: (inout DirectoryIndex.Store?) -> T) -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body(&store)
    }
}
