import AccordCore
import Foundation
import PGStore

/// Generates realistic institution profiles for benchmarks (`accord seed bench --institutions N`).
///
/// Draws from the database's real data (run `accord import universities` first, or every country
/// weighs the same). Seeded, so a run is reproducible; generated entries have SCHAC codes under
/// `.bench.example`.
public struct BenchNetwork: Sendable {
    let pool: PGPool
    let batchSize: Int

    public init(pool: PGPool, batchSize: Int = 5000) {
        self.pool = pool
        self.batchSize = batchSize
    }

    /// Inserts `count` generated institutions; calls `progress(done, count)` after each batch.
    /// Returns how many were created.
    @discardableResult
    public func seed(count: Int, seed: UInt64 = 2026, progress: @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> Int {
        let world = try await World.load(from: pool)
        let existing = try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
            try await tx.query("SELECT count(*) FROM institutions WHERE schac LIKE '%.bench.example'").scalar(Int.self)
        }
        var generator = Generator(world: world, random: SplitMix64(seed: seed &+ UInt64(existing)))
        var created = 0
        var done = 0
        while done < count {
            let size = min(batchSize, count - done)
            var batch = Batch()
            for index in 0..<size { generator.profile(number: existing + done + index, into: &batch) }
            created += try await insert(batch)
            done += size
            progress(done, count)
        }
        try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
            try await tx.query(
                """
                INSERT INTO audit_events (action, target_type, detail)
                VALUES ('directory.bench_seeded', 'institutions', \(PGJSONB(["created": String(created)])))
                """)
        }
        return created
    }

    private func insert(_ b: Batch) async throws -> Int {
        try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
            try await tx.query(
                """
                INSERT INTO institutions (schac, names, acronym, country, city, type, status, claimed, tier, student_count,
                                          founding_year, website, description, goals, subject_areas, teaching_languages,
                                          offers, seeks, services, created_at, updated_at)
                SELECT r.schac, r.names::jsonb, nullif(r.acronym, ''), r.country, r.city, r.type, r.status, false, r.tier,
                       r.students::integer, r.founded::integer, 'https://www.' || r.schac || '/', r.description, r.goals,
                       r.fields::jsonb, r.languages::jsonb, string_to_array(r.offers, ','), string_to_array(r.seeks, ','),
                       string_to_array(r.services, ','), now() - make_interval(secs => r.age), now()
                FROM unnest(\(b.schacs)::text[], \(b.names)::text[], \(b.acronyms)::text[], \(b.countries)::text[],
                            \(b.cities)::text[], \(b.types)::text[], \(b.statuses)::text[], \(b.tiers)::text[],
                            \(b.students)::int8[], \(b.founded)::int8[], \(b.descriptions)::text[], \(b.goals)::text[],
                            \(b.fields)::text[], \(b.languages)::text[], \(b.offers)::text[], \(b.seeks)::text[],
                            \(b.services)::text[], \(b.ages)::int8[])
                    AS r (schac, names, acronym, country, city, type, status, tier, students, founded, description, goals,
                          fields, languages, offers, seeks, services, age)
                WHERE NOT EXISTS (SELECT 1 FROM institutions x WHERE x.schac = r.schac)
                ON CONFLICT (schac) WHERE claim_of IS NULL AND status IN ('active', 'suspended') DO NOTHING
                """
            ).affectedRows
        }
    }
}

/// The columns of one batch, sent as arrays.
struct Batch {
    var schacs: [String] = [], names: [String] = [], acronyms: [String] = [], countries: [String] = []
    var cities: [String] = [], types: [String] = [], statuses: [String] = [], tiers: [String] = []
    var students: [Int] = [], founded: [Int] = [], descriptions: [String] = [], goals: [String] = []
    var fields: [String] = [], languages: [String] = [], offers: [String] = [], seeks: [String] = []
    var services: [String] = [], ages: [Int] = []
}

/// The real data the generator draws from.
struct World {
    /// Countries weighted by their number of real universities (cumulative weights for sampling).
    var countries: [String]
    var cumulative: [Int]
    var countryNames: [String: String]
    /// Place names found in each country's real university names.
    var cities: [String: [String]]
    /// ISCED-F codes by broad field (two digits) and their names.
    var fieldCodes: [String: [String]]
    var fieldNames: [String: String]
    var languages: [String]
    var languageNames: [String: String]

    static func load(from pool: PGPool) async throws -> World {
        try await pool.withTransaction(settings: [("accord.is_admin", "true")]) { tx in
            var weights = try await tx.query(
                """
                SELECT country::text, count(*) FROM institutions WHERE schac NOT LIKE '%.bench.example' AND claim_of IS NULL
                GROUP BY country ORDER BY country
                """
            ).decode((String, Int).self)
            let countryRows = try await tx.query("SELECT code::text, name FROM countries ORDER BY code").decode((String, String).self)
            if weights.isEmpty { weights = countryRows.map { ($0.0, 1) } }
            var cumulative: [Int] = []
            var total = 0
            for (_, weight) in weights {
                total += weight
                cumulative.append(total)
            }

            var cities: [String: [String]] = [:]
            for (country, name) in try await tx.query(
                """
                SELECT country::text, names -> 0 ->> 'value' FROM institutions WHERE schac NOT LIKE '%.bench.example'
                """
            ).decode((String, String).self) {
                if let place = Self.placeName(in: name), !(cities[country]?.contains(place) ?? false) {
                    cities[country, default: []].append(place)
                }
            }
            var fieldCodes: [String: [String]] = [:]
            var fieldNames: [String: String] = [:]
            for (code, name) in try await tx.query("SELECT code, name FROM isced_fields ORDER BY code").decode((String, String).self) {
                fieldNames[code] = name
                // Narrow and detailed codes, without "not further defined" (…0), "inter-disciplinary"
                // (…8) and "not elsewhere classified" (…9).
                if code.count >= 3, !code.hasPrefix("99"), !code.hasSuffix("0"), !code.hasSuffix("8"), !code.hasSuffix("9") {
                    fieldCodes[String(code.prefix(2)), default: []].append(code)
                }
            }
            let languages = try await tx.query("SELECT code::text, name_en FROM languages ORDER BY code").decode((String, String).self)
            return World(
                countries: weights.map(\.0), cumulative: cumulative,
                countryNames: Dictionary(countryRows, uniquingKeysWith: { a, _ in a }), cities: cities,
                fieldCodes: fieldCodes, fieldNames: fieldNames, languages: languages.map(\.0),
                languageNames: Dictionary(languages, uniquingKeysWith: { a, _ in a }))
        }
    }

    static let generic: Set<String> = [
        "University", "College", "Institute", "Institution", "Technology", "Sciences", "Science", "Arts", "Art", "Studies",
        "Education", "Medicine", "Medical", "Engineering", "Management", "Business", "School", "Academy", "Polytechnic",
        "Center", "Centre", "Seminary", "Conservatory", "Music", "Design", "Economics", "Law", "Health", "Nursing",
        "Theology", "Agriculture", "State", "National", "International", "Universidad", "Université", "Universität",
        "Università", "Universidade", "Universiteit", "Hochschule", "Fachhochschule", "Campus", "Online", "Community",
        "Technical", "Applied", "Research", "Graduate", "Foundation", "Christian", "Catholic", "Islamic", "Baptist",
    ]

    /// The last word of a real name when it looks like a place: "University of Helsinki" → Helsinki.
    static func placeName(in name: String) -> String? {
        let words = name.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "(" || $0 == ")" || $0 == "-" })
        guard let last = words.last.map(String.init), last.count >= 3, last.count <= 30,
            let first = last.first, first.isUppercase, last.dropFirst().allSatisfy({ $0.isLetter && $0.isLowercase }),
            !generic.contains(last)
        else { return nil }
        return last
    }
}

/// SplitMix64: small, fast, good enough for test data, and reproducible across platforms.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct Generator {
    let world: World
    var random: SplitMix64

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }
    mutating func some<T: Equatable>(_ items: [T], _ range: ClosedRange<Int>) -> [T] {
        var result: [T] = []
        let count = Int.random(in: range, using: &random)
        while result.count < min(count, items.count) {
            let item = pick(items)
            if !result.contains(item) { result.append(item) }
        }
        return result
    }

    mutating func country() -> String {
        let target = Int.random(in: 1...world.cumulative.last!, using: &random)
        var low = 0
        var high = world.cumulative.count - 1
        while low < high {
            let mid = (low + high) / 2
            if world.cumulative[mid] < target { low = mid + 1 } else { high = mid }
        }
        return world.countries[low]
    }

    mutating func city(in country: String) -> String {
        if let places = world.cities[country], !places.isEmpty, chance(0.9) { return pick(places) }
        let syllables = [
            "ber", "lin", "ca", "sa", "mo", "ra", "vi", "to", "ne", "ko", "la", "do", "ri", "an", "te", "por", "mar", "gan", "sol", "el",
        ]
        let name = (0..<Int.random(in: 2...3, using: &random)).map { _ in pick(syllables) }.joined()
        return name.prefix(1).uppercased() + name.dropFirst()
    }

    static let languageOf: [String: String] = {
        var map: [String: String] = [:]
        for c in ["DE", "AT", "LI"] { map[c] = "de" }
        for c in ["FR", "LU", "MC", "SN", "CI", "CM", "ML", "BF", "NE", "TG", "BJ", "GA", "CD", "CG", "MG", "HT"] { map[c] = "fr" }
        for c in ["ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY", "SV", "NI", "CR", "PA", "UY"] { map[c] = "es" }
        for c in ["IT", "SM"] { map[c] = "it" }
        for c in ["PT", "BR", "AO", "MZ"] { map[c] = "pt" }
        for c in ["NL"] { map[c] = "nl" }
        return map
    }()

    /// Subject words per broad field, per language (for names).
    static let subjects: [String: [String]] = [
        "en": [
            "Liberal Studies", "Education", "Arts", "Social Sciences", "Business", "Natural Sciences", "Computing", "Engineering", "Agriculture",
            "Health Sciences", "Hospitality",
        ],
        "de": [
            "Allgemeine Studien", "Pädagogik", "Künste", "Sozialwissenschaften", "Wirtschaft", "Naturwissenschaften", "Informatik", "Technik",
            "Agrarwissenschaften", "Gesundheit", "Tourismus",
        ],
        "fr": [
            "Études générales", "Éducation", "Beaux-Arts", "Sciences sociales", "Commerce", "Sciences", "Informatique", "Ingénierie", "Agronomie",
            "Santé", "Hôtellerie",
        ],
        "es": [
            "Estudios Generales", "Educación", "Bellas Artes", "Ciencias Sociales", "Negocios", "Ciencias", "Informática", "Ingeniería", "Agronomía",
            "Ciencias de la Salud", "Turismo",
        ],
        "it": [
            "Studi Generali", "Scienze della Formazione", "Belle Arti", "Scienze Sociali", "Economia", "Scienze", "Informatica", "Ingegneria",
            "Agraria", "Scienze della Salute", "Turismo",
        ],
        "pt": [
            "Estudos Gerais", "Educação", "Belas Artes", "Ciências Sociais", "Negócios", "Ciências", "Informática", "Engenharia", "Agronomia",
            "Ciências da Saúde", "Turismo",
        ],
        "nl": [
            "Algemene Studies", "Onderwijs", "Kunsten", "Sociale Wetenschappen", "Economie", "Natuurwetenschappen", "Informatica", "Techniek",
            "Landbouw", "Gezondheidszorg", "Toerisme",
        ],
    ]

    static let templates: [String: [String: [String]]] = [
        "en": [
            "university": ["University of {c}", "{c} University", "{c} State University", "Technical University of {c}", "{c} University of {s}"],
            "university_of_applied_sciences": ["{c} University of Applied Sciences", "{c} Polytechnic", "{c} Institute of Technology"],
            "college": ["{c} College", "{c} College of {s}", "{c} Community College"],
            "research_institute": ["{c} Institute of {s}", "{c} Research Institute for {s}"],
            "other": ["{c} School of {s}", "{c} Academy of {s}"],
        ],
        "de": [
            "university": ["Universität {c}", "Technische Universität {c}", "Universität {c} für {s}"],
            "university_of_applied_sciences": ["Hochschule {c}", "Fachhochschule {c}", "Technische Hochschule {c}"],
            "college": ["Hochschule für {s} {c}", "Kolleg {c}"],
            "research_institute": ["Institut für {s} {c}", "Forschungsinstitut {c}"],
            "other": ["Akademie für {s} {c}"],
        ],
        "fr": [
            "university": ["Université de {c}", "Université {c}", "Université de technologie de {c}"],
            "university_of_applied_sciences": ["Haute école de {c}", "Institut universitaire de technologie de {c}"],
            "college": ["École supérieure de {s} de {c}", "Collège universitaire de {c}"],
            "research_institute": ["Institut de {s} de {c}", "Institut de recherche de {c}"],
            "other": ["École de {s} de {c}"],
        ],
        "es": [
            "university": ["Universidad de {c}", "Universidad Nacional de {c}", "Universidad Autónoma de {c}", "Universidad Tecnológica de {c}"],
            "university_of_applied_sciences": ["Instituto Tecnológico de {c}", "Universidad Politécnica de {c}"],
            "college": ["Escuela Superior de {s} de {c}", "Colegio Universitario de {c}"],
            "research_institute": ["Instituto de Investigación en {s} de {c}"],
            "other": ["Academia de {s} de {c}"],
        ],
        "it": [
            "university": ["Università di {c}", "Università degli Studi di {c}", "Politecnico di {c}"],
            "university_of_applied_sciences": ["Istituto Tecnico Superiore di {c}"],
            "college": ["Scuola Superiore di {s} di {c}", "Accademia di Belle Arti di {c}"],
            "research_institute": ["Istituto di {s} di {c}"],
            "other": ["Conservatorio di {c}"],
        ],
        "pt": [
            "university": ["Universidade de {c}", "Universidade Federal de {c}", "Universidade Estadual de {c}"],
            "university_of_applied_sciences": ["Instituto Politécnico de {c}", "Instituto Federal de {c}"],
            "college": ["Faculdade de {s} de {c}", "Escola Superior de {c}"],
            "research_institute": ["Instituto de {s} de {c}"],
            "other": ["Academia de {s} de {c}"],
        ],
        "nl": [
            "university": ["Universiteit {c}", "Technische Universiteit {c}", "Universiteit van {c}"],
            "university_of_applied_sciences": ["Hogeschool {c}", "Hogeschool voor {s} {c}"],
            "college": ["Academie {c}", "Hogeschool voor de Kunsten {c}"],
            "research_institute": ["Instituut voor {s} {c}"],
            "other": ["Academie voor {s} {c}"],
        ],
    ]

    static let typeWeights: [(String, Double)] = [
        ("university", 0.5), ("university_of_applied_sciences", 0.2), ("college", 0.15), ("research_institute", 0.1), ("other", 0.05),
    ]
    static let levels = ["A2", "B1", "B2", "B2", "C1", "C1", "C2"]
    static let widelyTaught = ["en", "en", "en", "fr", "de", "es", "it", "pt", "zh", "ru", "ar", "ja", "nl", "sv", "pl", "tr"]
    static let officialLanguage: [String: String] = [
        "DE": "de", "AT": "de", "CH": "de", "FR": "fr", "BE": "fr", "ES": "es", "IT": "it", "PT": "pt", "BR": "pt", "NL": "nl",
        "SE": "sv", "NO": "no", "DK": "da", "FI": "fi", "PL": "pl", "CZ": "cs", "SK": "sk", "HU": "hu", "RO": "ro", "BG": "bg",
        "GR": "el", "TR": "tr", "RU": "ru", "UA": "uk", "CN": "zh", "TW": "zh", "JP": "ja", "KR": "ko", "IR": "fa", "SA": "ar",
        "EG": "ar", "MA": "ar", "IL": "he", "IN": "hi", "ID": "id", "VN": "vi", "TH": "th", "MX": "es", "AR": "es", "CO": "es",
        "CL": "es", "PE": "es",
    ]

    mutating func profile(number: Int, into batch: inout Batch) {
        let country = country()
        let city = city(in: country)
        var roll = Double.random(in: 0..<1, using: &random)
        var type = "university"
        for (name, weight) in Self.typeWeights {
            if roll < weight {
                type = name
                break
            }
            roll -= weight
        }
        let language = Self.languageOf[country] ?? "en"

        // Subject areas: a main broad field and a few more, narrow or detailed, some strong or growing.
        let broad = world.fieldCodes.keys.sorted()
        let main = pick(broad)
        var codes: [String] = some(world.fieldCodes[main] ?? [], 1...3)
        for _ in 0..<Int.random(in: 0...4, using: &random) {
            if let code = world.fieldCodes[pick(broad)].map({ pick($0) }), !codes.contains(code) { codes.append(code) }
        }
        let areas: [[String: String]] = codes.map { code in
            var area = ["code": code]
            let r = Double.random(in: 0..<1, using: &random)
            if r < 0.3 { area["strength"] = "strong" } else if r < 0.5 { area["strength"] = "growing" }
            return area
        }
        let subjectIndex = Int(main) ?? 0
        let subject = Self.subjects[language]![min(subjectIndex, 10)]
        let englishSubject = Self.subjects["en"]![min(subjectIndex, 10)]

        let template = pick(Self.templates[language]![type]!)
        let name = template.replacingOccurrences(of: "{c}", with: city).replacingOccurrences(of: "{s}", with: subject)
        var names = [["lang": language, "value": name]]
        if language != "en", chance(0.4) {
            let english = pick(Self.templates["en"]![type]!)
            names.append([
                "lang": "en", "value": english.replacingOccurrences(of: "{c}", with: city).replacingOccurrences(of: "{s}", with: englishSubject),
            ])
        }
        let acronym = chance(0.5) ? Self.acronym(name) : ""

        // Teaching languages: the country's own at C2, English often, sometimes another.
        var languages: [[String: String]] = []
        languages.append(["code": Self.officialLanguage[country] ?? Self.languageOf[country] ?? "en", "level": "C2"])
        if chance(0.7), !languages.contains(where: { $0["code"] == "en" }) { languages.append(["code": "en", "level": pick(Self.levels)]) }
        if chance(0.25) {
            let other = pick(Self.widelyTaught)
            if !languages.contains(where: { $0["code"] == other }) { languages.append(["code": other, "level": pick(Self.levels)]) }
        }

        let activities = Activity.allCases.map(\.rawValue)
        let offers = some(activities, 1...5)
        let seeks = some(activities, 1...4)
        let services = some(PartnerService.allCases.map(\.rawValue), 0...6)
        let students = Int(exp(Double.random(in: log(300.0)...log(90_000.0), using: &random)))

        let strong = areas.filter { $0["strength"] == "strong" }.compactMap { $0["code"].flatMap { world.fieldNames[$0] } }
        let growing = areas.filter { $0["strength"] == "growing" }.compactMap { $0["code"].flatMap { world.fieldNames[$0] } }
        let taught = languages.compactMap { world.languageNames[$0["code"]!] }
        var description =
            "\(name) is a \(type.replacingOccurrences(of: "_", with: " ")) in \(city), \(world.countryNames[country] ?? country), with about \(students) students."
        if !strong.isEmpty { description += " Strong in \(strong.joined(separator: ", "))." }
        if !growing.isEmpty { description += " Growing in \(growing.joined(separator: ", "))." }
        description += " Teaching in \(taught.joined(separator: " and ")). Offers \(offers.map(Self.label).joined(separator: ", ")) to partners."
        let goals =
            "Looking for partners for \(seeks.map(Self.label).joined(separator: " and ")), above all in \((world.fieldNames[main] ?? main).lowercased())."

        let slug = Self.slug(acronym.isEmpty ? city : acronym)
        batch.schacs.append("\(slug)-\(number).bench.example")
        batch.names.append(Self.json(names))
        batch.acronyms.append(acronym)
        batch.countries.append(country)
        batch.cities.append(city)
        batch.types.append(type)
        let status = Double.random(in: 0..<1, using: &random)
        batch.statuses.append(status < 0.01 ? "pending" : status < 0.015 ? "suspended" : "active")
        let tier = Double.random(in: 0..<1, using: &random)
        batch.tiers.append(tier < 0.8 ? "member" : tier < 0.95 ? "partner" : "premium")
        batch.students.append(students)
        batch.founded.append(Int.random(in: 1088...2020, using: &random))
        batch.descriptions.append(description)
        batch.goals.append(goals)
        batch.fields.append(Self.json(areas))
        batch.languages.append(Self.json(languages))
        batch.offers.append(offers.joined(separator: ","))
        batch.seeks.append(seeks.joined(separator: ","))
        batch.services.append(services.joined(separator: ","))
        batch.ages.append(Int.random(in: 0...(10 * 365 * 86_400), using: &random))
    }

    static func label(_ activity: String) -> String { Activity(rawValue: activity)?.label ?? activity }

    static let minor: Set<String> = [
        "of", "for", "the", "de", "di", "du", "des", "la", "le", "van", "voor", "degli", "für", "y", "e", "et", "und", "and", "da", "do", "dos",
        "das", "del",
    ]

    static func acronym(_ name: String) -> String {
        let letters = name.split(separator: " ").filter { !minor.contains($0.lowercased()) }.compactMap(\.first)
        let folded = String(letters).folding(options: .diacriticInsensitive, locale: nil).uppercased()
        let ascii = folded.filter { $0.isASCII && $0.isLetter }
        return ascii.count >= 2 ? String(ascii.prefix(8)) : ""
    }

    static func slug(_ text: String) -> String {
        let folded = text.folding(options: .diacriticInsensitive, locale: nil).lowercased()
        let ascii = String(folded.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(30))
        return ascii.isEmpty ? "inst" : ascii
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("[]".utf8), as: UTF8.self)
    }
}
