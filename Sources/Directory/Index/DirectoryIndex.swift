import AccordCore
import Foundation
import Logging
import PGStore
import ServiceLifecycle
import Synchronization

/// The directory in memory, for the part of a search that PostgreSQL can do only by reading every
/// matching row: which entries match q under the filters, the facets, and in relevance or name
/// order the entries that can be on the page. PostgreSQL does the rest over the ids it finds
/// (`DirectoryService`) and checks every condition again on those rows.
///
/// Follows the database through `accord_directory` (Schema/0009_directory_index_notify.sql). It
/// answers nothing (the search falls back to SQL) until loaded, while changes are pending or being
/// read, while it reloads, and while the listener has no connection.
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
        /// Whether q is too broad to rank (`Store.maxRankWork`): the search is refused, here and in SQL.
        public var tooBroad = false
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
    let state = Mutex(State())
    /// The entries, behind a readers-writer lock: searches evaluate in parallel, changes apply alone.
    let box = StoreBox()

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

    public init(
        pool: PGPool, listener: PGListener, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "accord.directory.index")
    ) {
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
    public func evaluate(_ query: Query, text: DirectoryService.TextForms, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
        guard let (expression, strict) = Self.expressions(text), answers(atLeast: text.directoryVersion) else { return nil }
        // A change applied since is newer than that version, which is as good; a reload empties the box.
        return box.read { store in
            store?.evaluate(
                query, expression: expression, strict: strict, folded: text.folded, domain: text.domain, countryRegions: countryRegions,
                maxIDs: maxIDs)
        }
    }

    /// As `evaluate(_:text:…)`, for a search without q (filters only): every listed entry is a
    /// match. `directoryVersion` is the directory's version read when the search began.
    public func evaluate(_ query: Query, directoryVersion: Int64, countryRegions: [String: [String]], maxIDs: Int) -> Result? {
        guard answers(atLeast: directoryVersion) else { return nil }
        return box.read { store in
            store?.evaluate(
                query, expression: nil, strict: nil, folded: "", domain: nil, matchAll: true, countryRegions: countryRegions, maxIDs: maxIDs)
        }
    }

    /// Whether the index is serving and has applied every change up to `version`.
    func answers(atLeast version: Int64) -> Bool {
        let epoch = listener.connectionEpoch
        return state.withLock { Self.serving($0, epoch: epoch) && $0.version >= version }
    }

    /// The fuzzy form of q, and the strict one where it differs; nil when either cannot be parsed.
    static func expressions(_ text: DirectoryService.TextForms) -> (TextExpression?, TextExpression?)? {
        guard let fuzzy = text.fuzzy else { return (nil, nil) }
        guard let expression = TextExpression.parse(fuzzy) else { return nil }
        guard let form = text.strict, form != fuzzy else { return (expression, nil) }
        guard let strict = TextExpression.parse(form) else { return nil }
        return (expression, strict)
    }
}
