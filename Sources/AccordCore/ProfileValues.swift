import Foundation

/// A name in one language: `{"lang": "fr", "value": "Université Libre de Bruxelles"}`.
public struct LocalizedName: Codable, Sendable, Equatable {
    public var lang: String
    public var value: String

    public init(lang: String, value: String) {
        self.lang = lang
        self.value = value
    }
}

/// A field of study an institution is known for.
public struct SubjectArea: Codable, Sendable, Equatable {
    /// An ISCED-F 2013 code (2, 3 or 4 digits).
    public var code: String
    /// `strong` or `growing`, if said.
    public var strength: String?

    public init(code: String, strength: String? = nil) {
        self.code = code
        self.strength = strength
    }
}

/// A language an institution teaches in, at a CEFR level.
public struct TeachingLanguage: Codable, Sendable, Equatable {
    /// ISO 639-1.
    public var code: String
    /// CEFR level A1…C2.
    public var level: String

    public init(code: String, level: String) {
        self.code = code
        self.level = level
    }
}
