import Foundation
import PGStore
import Testing

struct Profile: Codable, Equatable, Sendable {
    var name: String
    var fields: [String]
    var students: Int?
}

@Suite("Values round-trip through bind parameters")
struct CodingTests {
    let pool: PGPool

    init() throws { pool = try ownerPool() }

    func roundTrip<T: PGCodable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let back = try await pool.query("SELECT \(value)").scalar(T.self)
        #expect(back == value, sourceLocation: sourceLocation)
        let null: T? = nil
        let nothing = try await pool.query("SELECT \(null)").scalar(T?.self)
        #expect(nothing == nil, sourceLocation: sourceLocation)
        let some = try await pool.query("SELECT \(Optional(value))").scalar(T?.self)
        #expect(some == value, sourceLocation: sourceLocation)
    }

    @Test func inlinedForToolingRunsAsTheBoundStatementDoes() async throws {
        let tricky = "it's $1 \\ \"quoted\""
        let id = UUID()
        let query: PGQuery = "SELECT \(tricky), \(42), \(Optional<String>.none), \(["a", "b'c"]), \(id), \(2.5), \(Data([0, 255]))"
        let sql = query.inlinedForTooling
        let bound = try await pool.query(query).first((String, Int, String?, [String], UUID, Double, Data).self)!
        let inlined = try await pool.query(PGQuery(unsafeSQL: sql)).first((String, Int, String?, [String], UUID, Double, Data).self)!
        #expect(bound.0 == inlined.0 && bound.1 == inlined.1 && bound.2 == inlined.2 && bound.3 == inlined.3)
        #expect(bound.4 == inlined.4 && bound.5 == inlined.5 && bound.6 == inlined.6)
        #expect(inlined.0 == tricky && inlined.1 == 42 && inlined.2 == nil && inlined.3 == ["a", "b'c"] && inlined.6 == Data([0, 255]))
    }

    @Test func integers() async throws {
        for value in [0, 1, -1, Int.max, Int.min, 42] { try await roundTrip(value) }
        for value in [Int64.max, Int64.min, 7] { try await roundTrip(value) }
        for value in [Int32.max, Int32.min] { try await roundTrip(value) }
        for value in [Int16.max, Int16.min] { try await roundTrip(value) }
    }

    @Test func doubles() async throws {
        for value in [0.0, -0.5, 1.0 / 3.0, Double.pi, 1e300, -1e-300, Double.greatestFiniteMagnitude, .infinity, -.infinity] {
            try await roundTrip(value)
        }
        let nan = try await pool.query("SELECT \(Double.nan)").scalar(Double.self)
        #expect(nan.isNaN)
        #expect(try await pool.query("SELECT 1.25::numeric").scalar(Double.self) == 1.25)
    }

    @Test func booleans() async throws {
        try await roundTrip(true)
        try await roundTrip(false)
    }

    @Test func strings() async throws {
        for value in [
            "", "plain", "Université Libre de Bruxelles", "日本語 ✓ 🎓", "quote ' and \" and \\ backslash", "'; DROP TABLE pg_class; --",
            String(repeating: "x", count: 100_000),
        ] {
            try await roundTrip(value)
        }
        // The injection attempt was stored as text, not executed.
        #expect(try await pool.query("SELECT count(*) FROM pg_class").scalar(Int.self) > 0)
        await #expect(throws: PGError.self) { try await pool.query("SELECT \("nul\u{0}byte")") }
    }

    @Test func uuids() async throws {
        try await roundTrip(UUID())
        let fromServer = try await pool.query("SELECT gen_random_uuid()").scalar(UUID.self)
        #expect(try await pool.query("SELECT \(fromServer)").scalar(UUID.self) == fromServer)
        // The text forms agree with PostgreSQL's, both ways, including the extremes and arrays.
        let ids = [
            UUID(), UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
            UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)), fromServer,
        ]
        for id in ids {
            #expect(try await pool.query("SELECT \(id)::text").scalar(String.self) == id.uuidString.lowercased())
            #expect(try await pool.query("SELECT \(id.uuidString.lowercased())::uuid").scalar(UUID.self) == id)
        }
        #expect(try await pool.query("SELECT \(ids)::uuid[]").scalar([UUID].self) == ids)
        #expect(try await pool.query("SELECT ARRAY[\(ids[0]), NULL]::uuid[] IS NOT NULL").scalar(Bool.self))
    }

    @Test func dates() async throws {
        // PostgreSQL keeps microseconds.
        for seconds in [0.0, 1_700_000_000.123456, -86_400.5, 4_102_444_800.999999, -2_208_988_800.0] {
            try await roundTrip(Date(timeIntervalSince1970: seconds))
        }
        try await roundTrip(Date.distantFuture)
        try await roundTrip(Date.distantPast)
        let epoch = try await pool.query("SELECT '1970-01-01 00:00:00+00'::timestamptz").scalar(Date.self)
        #expect(epoch == Date(timeIntervalSince1970: 0))
        let offset = try await pool.query("SELECT '2024-02-29 12:30:00.5+05:30'::timestamptz").scalar(Date.self)
        #expect(offset == Date(timeIntervalSince1970: 1_709_190_000.5))
        let now = Date()
        let stored = try await pool.query("SELECT \(now)").scalar(Date.self)
        #expect(abs(stored.timeIntervalSince(now)) < 0.000_001)
    }

    @Test func bytes() async throws {
        try await roundTrip(Data())
        try await roundTrip(Data([0, 1, 2, 255, 0, 39, 92]))
        try await roundTrip(Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
    }

    @Test func arrays() async throws {
        try await roundTrip([String]())
        try await roundTrip(["a", "b c", "quote\"d", "back\\slash", "NULL", "", "{braces}", "comma,here", "é"])
        try await roundTrip([1, -2, Int.max])
        try await roundTrip([Int32(1), Int32.min])
        try await roundTrip([UUID(), UUID()])
        let fromServer = try await pool.query("SELECT ARRAY['x', 'y z']::varchar[]").scalar([String].self)
        #expect(fromServer == ["x", "y z"])
        let ints = try await pool.query("SELECT ARRAY[1, 2, 3]::int4[]").scalar([Int].self)
        #expect(ints == [1, 2, 3])
        await #expect(throws: PGError.self) { try await pool.query("SELECT ARRAY['a', NULL]").scalar([String].self) }
    }

    @Test func json() async throws {
        let profile = Profile(name: "Université \"X\"", fields: ["0714", "0613"], students: nil)
        try await roundTrip(PGJSONB(profile))
        let fromJSON = try await pool.query(#"SELECT '{"name": "n", "fields": []}'::json"#).scalar(PGJSONB<Profile>.self)
        #expect(fromJSON.value == Profile(name: "n", fields: [], students: nil))
        await #expect(throws: PGError.self) {
            try await pool.query(#"SELECT '{"wrong": 1}'::jsonb"#).scalar(PGJSONB<Profile>.self)
        }
    }

    @Test func tuplesDecodeInOrder() async throws {
        let rows = try await pool.query("SELECT g, 'n' || g, CASE WHEN g % 2 = 0 THEN NULL ELSE g * 10 END FROM generate_series(1, 4) g")
        let decoded = try rows.decode((Int, String, Int?).self)
        #expect(decoded.map(\.0) == [1, 2, 3, 4])
        #expect(decoded.map(\.1) == ["n1", "n2", "n3", "n4"])
        #expect(decoded.map(\.2) == [10, nil, 30, nil])
        #expect(try rows[2].column("?column?", as: String.self) == "n3")
    }

    @Test func typeMismatchThrows() async throws {
        do {
            _ = try await pool.query("SELECT 1::int4").scalar(String.self)
            Issue.record("decoding int4 as String must throw")
        } catch let error as PGError {
            #expect(error.kind == .typeMismatch)
        }
        await #expect(throws: PGError.self) { try await pool.query("SELECT 'x'::text").scalar(Int.self) }
        await #expect(throws: PGError.self) { try await pool.query("SELECT true").scalar(Int.self) }
        await #expect(throws: PGError.self) { try await pool.query("SELECT 1.5::float8").scalar(Int.self) }
        await #expect(throws: PGError.self) { try await pool.query("SELECT now()::timestamp").scalar(Date.self) }
        await #expect(throws: PGError.self) { try await pool.query("SELECT 70000::int4").scalar(Int16.self) }
    }

    @Test func unexpectedNullThrows() async throws {
        for query: PGQuery in ["SELECT NULL::int8", "SELECT NULL::bool", "SELECT NULL::text"] {
            do {
                let rows = try await pool.query(query)
                if rows.columns[0].type == .bool {
                    _ = try rows.scalar(Bool.self)
                } else if rows.columns[0].type == .text {
                    _ = try rows.scalar(String.self)
                } else {
                    _ = try rows.scalar(Int.self)
                }
                Issue.record("NULL must not decode into a non-optional")
            } catch let error as PGError {
                #expect(error.kind == .unexpectedNull)
            }
        }
    }

    @Test func manyValuesOfMixedKindsBindInOrder() async throws {
        // More values (60) than a connection's parameter arrays first hold (16), with NULLs, empty
        // strings and binary values between them: each reaches its own placeholder, on a first use
        // (prepared on the thread pool) and on a reuse (sent from the I/O loop).
        var query = PGQuery(unsafeSQL: "SELECT concat_ws('|'")
        var expected: [String] = []
        for index in 0..<60 {
            query.append(PGQuery(unsafeSQL: ", "))
            switch index % 5 {
            case 0:
                query.append("\(index)::text")
                expected.append("\(index)")
            case 1:
                query.append("coalesce(\(String?.none), '-')")
                expected.append("-")
            case 2:
                query.append("\("")")
                expected.append("")
            case 3:
                query.append("encode(\(Data([UInt8(index), 0, 255])), 'hex')")
                expected.append(String(format: "%02x00ff", index))
            default:
                query.append("\("v\(index) é")")
                expected.append("v\(index) é")
            }
        }
        query.append(PGQuery(unsafeSQL: ")"))
        #expect(query.binds.count == 60)
        try await pool.withConnection { connection in
            for _ in 0..<2 {
                let joined = try await connection.query(query).scalar(String.self)
                #expect(joined.split(separator: "|", omittingEmptySubsequences: false).map(String.init) == expected)
            }
        }
    }

    @Test func interpolatedQueriesRenumberPlaceholders() async throws {
        let filter: PGQuery = "g > \(2)"
        let query: PGQuery = "SELECT count(*) FROM generate_series(1, \(10)) g WHERE \(filter) AND g < \(9)"
        #expect(query.sql == "SELECT count(*) FROM generate_series(1, $1) g WHERE g > $2 AND g < $3")
        #expect(try await pool.query(query).scalar(Int.self) == 6)
        let quoted: PGQuery = "SELECT \(identifier: "we\"ird")"
        #expect(quoted.sql == "SELECT \"we\"\"ird\"")
    }
}
