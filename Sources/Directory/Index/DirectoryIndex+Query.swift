import Foundation

extension DirectoryIndex {
    /// What the index needs to know of a search besides its text: the filters as groups of tags,
    /// the student range, the order and where the page starts, and whether to count facets.
    public struct Query: Sendable {
        /// The order of a page, and the position of the previous page's last item.
        public enum Order: Sendable {
            /// By rank; after the cursor's rank and id.
            case relevance(after: (rank: Double, id: UUID)?)
            /// By folded first name; after the cursor's entry (its folded name and id).
            case name(after: (sortName: String, id: UUID)?)
            /// Newest first; after the cursor's entry (its id).
            case newest(after: UUID?)
        }

        /// The faceted filters: per facet, the tags of which an entry must carry one.
        public var facetTags: [(facet: DirectoryQuery.Facet, tags: [String])]
        /// The filters without a facet: of each group an entry must carry one tag.
        public var plainTags: [[String]]
        public var minStudents: Int32?
        public var maxStudents: Int32?
        public var order: Order
        /// The page's size; the index keeps one more entry to know whether a next page exists.
        public var limit: Int
        public var withFacets: Bool

        public init(
            facetTags: [(facet: DirectoryQuery.Facet, tags: [String])], plainTags: [[String]], minStudents: Int32?, maxStudents: Int32?,
            order: Order, limit: Int, withFacets: Bool
        ) {
            self.facetTags = facetTags
            self.plainTags = plainTags
            self.minStudents = minStudents
            self.maxStudents = maxStudents
            self.order = order
            self.limit = limit
            self.withFacets = withFacets
        }
    }
}
