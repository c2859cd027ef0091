import AccordCore
import Foundation
import PGStore
import Synchronization

/// A page of directory results.
public struct DirectoryPage: Codable, Sendable {
    public var items: [DirectoryItem]
    /// How many entries match the whole query.
    public var total: Int?
    /// Per facet, value → count, each computed with its own filter left out; absent with facets=false.
    public var facets: [String: [String: Int]]?
    public var nextCursor: String?
}
