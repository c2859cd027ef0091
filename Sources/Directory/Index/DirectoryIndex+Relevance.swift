import Foundation

extension DirectoryIndex {
    /// The relevance of a search with q (`DirectoryService.rank`), computed in memory for every match
    /// so that PostgreSQL ranks only the entries that can be on the page: `100 × (exact acronym or
    /// SCHAC) + (matches the strict form) + ts_rank(document, fuzzy form) + similarity(names_folded,
    /// folded q)`.
    ///
    /// The rank is computed exactly as PostgreSQL computes it (a test compares every match), except
    /// for names outside ASCII, whose similarity is only bounded (0 to 1).
    struct Relevance {
        /// The operands of the fuzzy form, sorted and de-duplicated as `SortAndUniqItems` does.
        let items: [(word: [UInt8], prefix: Bool)]
        /// Whether the fuzzy form's root is `&` (`calc_rank_and`) and it has two operands or more.
        let and: Bool
        let hasText: Bool
        /// The trigrams of folded q.
        let queryTrigrams: [UInt32]

        /// nil when the rank cannot be computed here: q outside ASCII after folding, or an operand
        /// both with and without `:*` (PostgreSQL keeps either, depending on its sort).
        init?(expression: TextExpression?, folded: String) {
            guard let queryTrigrams = Self.trigrams(Array(folded.utf8)) else { return nil }
            self.queryTrigrams = queryTrigrams
            guard let expression else {
                items = []
                and = false
                hasText = false
                return
            }
            hasText = true
            var operands: [(word: [UInt8], prefix: Bool)] = []
            expression.forEachOperand { operands.append((Array($0.utf8), $1)) }
            operands.sort { $0.word.lexicographicallyPrecedes($1.word) }
            var unique: [(word: [UInt8], prefix: Bool)] = []
            for operand in operands {
                if let last = unique.last, last.word == operand.word {
                    guard last.prefix == operand.prefix else { return nil }
                    continue
                }
                unique.append(operand)
            }
            items = unique
            if case .and = expression, unique.count >= 2 { and = true } else { and = false }
        }
    }
}
