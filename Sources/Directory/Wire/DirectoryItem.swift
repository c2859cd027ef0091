import AccordCore
import Foundation
import PGStore
import Synchronization

/// One institution as the directory lists it: the published profile's searchable parts.
public struct DirectoryItem: Codable, Sendable, Equatable {
    public var id: UUID
    public var schac: String
    public var names: [LocalizedName]
    public var acronym: String?
    public var country: String
    public var city: String?
    public var type: String
    public var tier: String
    public var studentCount: Int?
    public var fields: [SubjectArea]
    public var languages: [TeachingLanguage]
    public var offers: [String]
    public var seeks: [String]
    public var services: [String]
    /// Why the entry matched q: a passage of its names or description in which the matched words are
    /// wrapped in `<mark>…</mark>`. The text is HTML-escaped, so the marks are its only markup.
    public var snippet: String?
}
