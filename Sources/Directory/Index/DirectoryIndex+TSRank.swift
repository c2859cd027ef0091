import Foundation

/// The terms of PostgreSQL's `ts_rank` (`calc_rank_or`, `calc_rank_and` in tsrank.c: default
/// weights, no normalization).
extension DirectoryIndex.Relevance {
    /// tsrank.c's weights of D, C, B, A.
    static let weights: [Float] = [0.1, 0.2, 0.4, 1.0]
    static let maxEntryPosition: Int32 = (1 << 14) - 1

    static func weight(_ position: UInt16) -> Float { weights[Int(position >> 14)] }

    /// tsrank.c's `word_distance`.
    static func wordDistance(_ distance: Int32) -> Float {
        if distance > 100 { return 1e-30 }
        return Float(1.0 / (1.005 + 0.05 * exp(Double(Float(distance)) / 1.5 - 2)))
    }

    /// `calc_rank_or`'s term for one lexeme of the document with `positions` (none: PostgreSQL's
    /// stand-in, one position of weight D).
    static func orTerm(_ positions: UnsafeBufferPointer<UInt16>) -> Float {
        var resj: Float = 0
        var wjm: Float = -1
        var jm = 0
        if positions.isEmpty {
            resj = weights[0]
            wjm = weights[0]
        }
        for j in positions.indices {
            let w = weight(positions[j])
            resj = resj + w / Float((j + 1) * (j + 1))
            if w > wjm {
                wjm = w
                jm = j
            }
        }
        return wjm + resj - wjm / Float((jm + 1) * (jm + 1))
    }

    /// The running `calc_rank_and` value after the pair (a lexeme of one operand, a lexeme of an
    /// earlier one); an empty list is PostgreSQL's stand-in position (the last, weight D).
    static func andStep(_ res: inout Float, _ post: UnsafeBufferPointer<UInt16>, _ ct: UnsafeBufferPointer<UInt16>) {
        let standIn = UInt16(maxEntryPosition)
        let postCount = max(post.count, 1)
        let ctCount = max(ct.count, 1)
        let table = pairWeightTable
        for l in 0..<postCount {
            let a = post.isEmpty ? standIn : post[l]
            for p in 0..<ctCount {
                let b = ct.isEmpty ? standIn : ct[p]
                var distance = abs(Int32(a & 0x3FFF) - Int32(b & 0x3FFF))
                guard distance != 0 || post.isEmpty || ct.isEmpty else { continue }
                if distance == 0 { distance = maxEntryPosition + 1 }  // MAXENTRYPOS
                // Beyond 100 the pair weighs at most 1e-15, which moves no float4 above 2^-19 (its
                // half-step there is 2^-44): computing it would change nothing.
                if distance > 100, res >= 0x1p-19 { continue }
                let curw = table[(Int(a >> 14) << 2 | Int(b >> 14)) &* 102 &+ Int(min(distance, 101))]
                res = res < 0 ? curw : Float(1.0 - (1.0 - Double(res)) * (1.0 - Double(curw)))
            }
        }
    }

    /// `pairWeights` as one flat table, for the and-rank's inner loop.
    nonisolated(unsafe) static let pairWeightTable: UnsafePointer<Float> = {
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 16 * 102)
        for pair in 0..<16 { for distance in 0...101 { table[pair * 102 + distance] = pairWeights[pair][distance] } }
        return UnsafePointer(table)
    }()

    /// `calc_rank_and`'s weight of a pair of positions of weights a and b (0 D … 3 A), per pair of
    /// weights (a << 2 | b) and distance 0…100 and beyond (101): sqrt(w(a) · w(b) · word_distance).
    static let pairWeights: [[Float]] = (0..<16).map { pair in
        let (wa, wb) = (weights[pair >> 2], weights[pair & 3])
        return (0...101).map { distance in
            Float((Double(wa * wb * wordDistance(distance == 101 ? 1000 : Int32(distance)))).squareRoot())
        }
    }
}
