import AccordCore
import AccordTesting
import Foundation
import HTTPTypes
import NIOCore
import PGStore
import PGStoreTesting
import Testing

@testable import Partnerships

/// Two admitted institutions (their admins signed in) and a network admin.
struct PartnershipFixture {
    let admin: String
    let a: UUID
    let b: UUID
    let ana: String
    let bram: String

    static func make(_ h: Harness) async throws -> PartnershipFixture {
        let admin = try await h.networkAdmin()
        let (a, emailA) = try await h.register(schac: "ulb.be")
        let (b, emailB) = try await h.register(schac: "uva.nl", country: "NL")
        try await h.approve(a, adminToken: admin)
        try await h.approve(b, adminToken: admin)
        return PartnershipFixture(admin: admin, a: a, b: b, ana: try await h.signIn(emailA), bram: try await h.signIn(emailB))
    }

    /// A colleague of `institution` with `role`, signed in.
    func colleague(_ h: Harness, of institution: UUID, token: String, email: String, role: String) async throws -> String {
        let invited = try await h.request(.post, "/v1/institutions/\(institution)/invitations", token: token, json: ["email": email, "role": role])
        let invitation = try #require(invited.string("token"), "invitation failed: \(invited.body)")
        let accepted = try await h.request(.post, "/v1/invitations/\(invitation)/accept", json: ["name": "Colleague", "password": Harness.password])
        return try #require(accepted.string("token"))
    }

    func propose(_ h: Harness) async throws -> UUID {
        let proposed = try await h.request(
            .post, "/v1/partnerships", token: ana,
            json: [
                "partner": b.uuidString.lowercased(), "message": "We would like to exchange students in water engineering.",
                "activities": ["student_exchange"],
            ])
        try #require(proposed.status == .created, "\(proposed.body)")
        #expect(proposed.string("stage") == "invited")
        return try #require(UUID(uuidString: proposed.string("id") ?? ""))
    }

    func terms(months: Int = 20, reversed: Bool = false) -> [String: Any] {
        var conditions: [[String: Any]] = [
            [
                "kind": "studentStudies", "sending": a.uuidString.lowercased(), "receiving": b.uuidString.lowercased(),
                "academicYears": ["first": "2027/2028", "last": "2031/2032"], "mobilitiesPerYear": 4, "totalMonthsPerYear": months,
                "subjectAreas": [["isced": "0714", "clarification": "Electronics"], ["isced": "0712"]],
                "languages": [["language": "en", "cefr": "B2"], ["language": "nl", "cefr": "B1"]], "eqfLevels": [6, 7], "blended": false,
            ],
            [
                "kind": "staffTeaching", "sending": b.uuidString.lowercased(), "receiving": a.uuidString.lowercased(),
                "academicYears": ["first": "2027/2028", "last": "2028/2029"], "mobilitiesPerYear": 2, "totalDaysPerYear": 10,
                "subjectAreas": [["isced": "0714"]], "languages": [["language": "en", "cefr": "C1"]],
            ],
        ]
        if reversed {
            conditions.reverse()
            conditions[1]["subjectAreas"] = [["isced": "0712"], ["isced": "0714", "clarification": "Electronics"]]
            conditions[1]["languages"] = [["cefr": "B1", "language": "nl"], ["language": "en", "cefr": "B2"]]
            conditions[1]["eqfLevels"] = [7, 6]
        }
        return [
            "startDate": "2027-09-01", "endDate": "2032-08-31", "cooperationConditions": conditions,
            "activities": [["kind": "doubleDegree", "title": "Double MSc in water engineering"]],
            "responsible": [["institution": a.uuidString.lowercased(), "name": "Ana Peeters", "email": "ana@ulb.be", "role": "coordinator"]],
            "kpis": [
                ["key": "studentsExchanged", "label": "Students exchanged", "target": 8, "period": "academicYear"],
                ["key": "jointPublications", "label": "Joint publications", "target": 2, "period": "calendarYear"],
            ],
            "financial": ["model": "tuitionWaiver"],
            "contacts": [["institution": b.uuidString.lowercased(), "name": "Bram de Vries", "email": "bram@uva.nl"]],
        ]
    }
}

@Suite("Partnerships")
struct PartnershipsTests {
    @Test func fromMessageOfIntentToAnActiveAgreement() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            // Both parties see it; the initiator cannot accept its own message of intent.
            #expect(try await h.request(.get, "/v1/partnerships/\(id)", token: f.bram).string("stage") == "invited")
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.ana).status == .forbidden)
            let accepted = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            #expect(accepted.status == .ok)
            #expect(accepted.string("stage") == "negotiating")
            // An invalid transition names the current stage.
            let again = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            #expect(again.status == .conflict)
            #expect(again.string("detail")?.contains("negotiating") == true)
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/withdraw", token: f.ana).status == .conflict)

            // A draft, and its hash: the same terms in another order give the same hash.
            let first = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms())
            try #require(first.status == .created, "\(first.body)")
            #expect(first["version"] as? Int == 1)
            let hash1 = try #require(first.string("hash"))
            #expect(hash1.count == 64 && hash1.allSatisfy(\.isHexDigit))
            let second = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.bram, json: f.terms(reversed: true))
            #expect(second["version"] as? Int == 2)
            #expect(second.string("hash") == hash1)
            // Contacts are not part of the hash; the terms are.
            var otherContacts = f.terms()
            otherContacts["contacts"] = []
            let third = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: otherContacts)
            #expect(third.string("hash") == hash1)
            let fourth = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms(months: 24))
            #expect(fourth["version"] as? Int == 4)
            let hash4 = try #require(fourth.string("hash"))
            #expect(hash4 != hash1)

            // Approving: a stale hash is 409; both approving the latest makes the partnership active.
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.ana, json: ["hash": hash1]).status == .conflict)
            let half = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.ana, json: ["hash": hash4])
            #expect(half.status == .ok)
            #expect(half.string("stage") == "negotiating")
            let both = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.bram, json: ["hash": hash4.uppercased()])
            #expect(both.status == .ok)
            #expect(both.string("stage") == "active")
            #expect(both["inEffectVersion"] as? Int == 4)
            #expect(both.string("endsOn") == "2032-08-31")

            // A later edit needs both approvals again; the approved version stays in effect.
            let fifth = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.bram, json: f.terms(months: 30))
            #expect(fifth["version"] as? Int == 5)
            let after = try await h.request(.get, "/v1/partnerships/\(id)", token: f.ana)
            #expect(after.string("stage") == "active")
            #expect(after["inEffectVersion"] as? Int == 4)
            #expect(after["latestVersion"] as? Int == 5)
            let versions = try await h.request(.get, "/v1/partnerships/\(id)/agreement/versions", token: f.bram)
            let items = try #require(versions["items"] as? [[String: Any]])
            #expect(items.count == 5)
            #expect(items.filter { $0["inEffect"] as? Bool == true }.compactMap { $0["version"] as? Int } == [4])
            #expect((items[3]["approvals"] as? [[String: Any]])?.count == 2)

            // The timeline, in order, for both parties.
            let timeline = try await h.request(.get, "/v1/partnerships/\(id)/timeline", token: f.bram)
            let kinds = (timeline["items"] as? [[String: Any]])?.compactMap { $0["kind"] as? String }
            #expect(
                kinds == [
                    "partnership.proposed", "partnership.accepted", "agreement.drafted", "agreement.drafted", "agreement.drafted",
                    "agreement.drafted", "agreement.approved", "agreement.approved", "partnership.activated", "agreement.drafted",
                ])
            let listed = try await h.request(.get, "/v1/partnerships?stage=active", token: f.ana)
            #expect((listed["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id.uuidString.lowercased()])
            #expect((try await h.request(.get, "/v1/partnerships?stage=invited", token: f.ana)["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func rolesPartnersAndOutsiders() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            // A partner that is oneself, unknown or not admitted: 422 on /partner.
            let (pending, _) = try await h.register(schac: "kuleuven.be")
            for partner in [f.a, pending, UUID()] {
                let refused = try await h.request(
                    .post, "/v1/partnerships", token: f.ana,
                    json: ["partner": partner.uuidString.lowercased(), "message": "Hello", "activities": ["collaborative_research"]])
                #expect(refused.status == .unprocessableContent)
                #expect((refused["errors"] as? [[String: Any]])?.first?["field"] as? String == "/partner")
            }
            #expect(
                try await h.request(
                    .post, "/v1/partnerships", token: f.ana,
                    json: ["partner": f.b.uuidString.lowercased(), "message": "Hello", "activities": ["golf"]]
                ).status == .unprocessableContent)
            let id = try await f.propose(h)
            // One open partnership per pair.
            let twice = try await h.request(
                .post, "/v1/partnerships", token: f.bram,
                json: ["partner": f.a.uuidString.lowercased(), "message": "Hello", "activities": ["collaborative_research"]])
            #expect(twice.status == .conflict)
            _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)

            // Faculty neither drafts nor approves.
            let faculty = try await f.colleague(h, of: f.a, token: f.ana, email: "prof@ulb.be", role: "faculty")
            #expect(try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: faculty, json: f.terms()).status == .forbidden)
            let draft = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms())
            let hash = try #require(draft.string("hash"))
            #expect(
                try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: faculty, json: ["hash": hash]).status == .forbidden)
            let staff = try await f.colleague(h, of: f.a, token: f.ana, email: "staff@ulb.be", role: "staff")
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: staff, json: ["hash": hash]).status == .forbidden)

            // A third institution sees nothing: 404 for everything.
            let (c, emailC) = try await h.register(schac: "unibo.it", country: "IT")
            try await h.approve(c, adminToken: f.admin)
            let carla = try await h.signIn(emailC)
            for (method, path) in [
                (HTTPRequest.Method.get, "/v1/partnerships/\(id)"), (.get, "/v1/partnerships/\(id)/timeline"),
                (.get, "/v1/partnerships/\(id)/agreement/versions"), (.post, "/v1/partnerships/\(id)/accept"),
                (.post, "/v1/partnerships/\(id)/decline"), (.post, "/v1/partnerships/\(id)/withdraw"),
            ] {
                #expect(try await h.request(method, path, token: carla).status == .notFound, "\(method) \(path)")
            }
            #expect(try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: carla, json: f.terms()).status == .notFound)
            #expect(
                try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: carla, json: ["hash": hash]).status == .notFound)
            #expect((try await h.request(.get, "/v1/partnerships", token: carla)["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func termsAreCheckedAgainstTheRealVocabularies() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            // Not yet accepted: no agreement.
            #expect(try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms()).status == .conflict)
            _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            var bad = f.terms()
            var conditions = bad["cooperationConditions"] as! [[String: Any]]
            conditions[0]["receiving"] = f.a.uuidString.lowercased()  // sending = receiving
            conditions[0]["subjectAreas"] = [["isced": "07145"]]
            conditions[0]["languages"] = [["language": "xx", "cefr": "D1"]]
            conditions[0]["eqfLevels"] = [9]
            conditions[0]["academicYears"] = ["first": "2031/2032", "last": "2027/2028"]
            conditions[1]["totalMonthsPerYear"] = 3  // staff mobility counts days
            bad["cooperationConditions"] = conditions
            bad["endDate"] = "2026-02-30"
            let refused = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: bad)
            #expect(refused.status == .unprocessableContent)
            let fields = Set((refused["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String } ?? [])
            for field in [
                "/endDate", "/cooperationConditions/0/receiving", "/cooperationConditions/0/subjectAreas/0/isced",
                "/cooperationConditions/0/languages/0/language", "/cooperationConditions/0/languages/0/cefr", "/cooperationConditions/0/eqfLevels",
                "/cooperationConditions/0/academicYears/last", "/cooperationConditions/1/totalMonthsPerYear",
            ] {
                #expect(fields.contains(field), "\(field) not named in \(fields)")
            }
            // A field the terms do not have is named, not dropped.
            var unknown = f.terms()
            var first = (unknown["cooperationConditions"] as! [[String: Any]])
            first[0]["budget"] = 1000
            unknown["cooperationConditions"] = first
            let strict = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: unknown)
            #expect(strict.status == .unprocessableContent)
            #expect((strict["errors"] as? [[String: Any]])?.first?["field"] as? String == "/cooperationConditions/0/budget")
            // Nothing was stored.
            #expect((try await h.request(.get, "/v1/partnerships/\(id)/agreement/versions", token: f.ana)["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func withoutATenantContextTheApplicationRoleSeesNoPartnership() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            _ = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms())
            let tables = [
                "partnerships", "partnership_events", "partnership_notes", "partnership_meetings", "agreement_versions", "agreement_approvals",
                "kpi_reports", "partnership_activity",
            ]
            for table in tables {
                #expect(try await h.pool.query(PGQuery(unsafeSQL: "SELECT count(*) FROM \(table)")).scalar(Int.self) == 0, "\(table)")
                let forced = try await h.count("SELECT count(*) FROM pg_class WHERE relname = '\(table)' AND relrowsecurity AND relforcerowsecurity")
                #expect(forced == 1, "\(table)")
            }
            // A third institution's tenant context sees none of it either.
            let (c, _) = try await h.register(schac: "unibo.it", country: "IT")
            let seen = try await h.pool.withTransaction(settings: [("accord.institution_id", c.uuidString.lowercased())]) { tx in
                try await tx.query("SELECT (SELECT count(*) FROM partnerships) + (SELECT count(*) FROM agreement_versions)").first(Int.self)
            }
            #expect(seen == 0)
        }
    }

    @Test func theHashIgnoresOrderAndContacts() throws {
        let a = UUID()
        let b = UUID()
        func condition(_ areas: [String], _ levels: [Int]) -> AgreementTerms.CooperationCondition {
            .init(
                kind: .studentStudies, sending: a, receiving: b, academicYears: .init(first: "2027/2028", last: "2028/2029"), mobilitiesPerYear: 2,
                totalMonthsPerYear: 10, subjectAreas: areas.map { .init(isced: $0) }, eqfLevels: levels)
        }
        let one = AgreementTerms(
            startDate: "2027-09-01", endDate: "2029-08-31", cooperationConditions: [condition(["0714", "0712"], [7, 6]), condition(["0311"], [6])],
            contacts: [.init(institution: a, name: "A", email: "a@x.be")])
        let two = AgreementTerms(
            startDate: "2027-09-01", endDate: "2029-08-31", cooperationConditions: [condition(["0311"], [6]), condition(["0712", "0714"], [6, 7])])
        #expect(one.hash == two.hash)
        var three = two
        three.cooperationConditions[0].mobilitiesPerYear = 3
        #expect(three.hash != one.hash)
    }
}

@Suite("Partnerships in Erasmus Without Paper")
struct EWPExportTests {
    /// Data/ewp/validate.sh: the official XSDs and the official hash transform.
    static let validator = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Data/ewp/validate.sh")
        .standardizedFileURL

    /// Runs the validator on `xml`; its output, and whether it passed.
    static func validate(_ xml: String) async throws -> (passed: Bool, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("iia-\(UUID().uuidString.lowercased()).xml")
        try xml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let outcome = try await ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), [validator.path, file.path], timeout: .seconds(300))
        return (outcome.status == 0, outcome.stdout + outcome.stderr)
    }

    static func export(_ h: Harness, _ id: UUID, token: String) async throws -> (HTTPResponse.Status, String?, String) {
        let (status, headers, body) = try await h.send("/v1/partnerships/\(id)/agreement/ewp-iia", .get, [.authorization: "Bearer \(token)"], nil)
        return (status, headers[.contentType], String(buffer: body))
    }

    @Test func everyKindOfConditionPassesTheOfficialValidator() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            #expect(try await Self.export(h, id, token: f.ana).0 == .notFound)  // not even negotiating
            _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            #expect(try await Self.export(h, id, token: f.ana).0 == .notFound)  // no version yet
            var terms = f.terms()
            var conditions = terms["cooperationConditions"] as! [[String: Any]]
            conditions.append([
                "kind": "studentTraineeship", "sending": f.b.uuidString.lowercased(), "receiving": f.a.uuidString.lowercased(),
                "academicYears": ["first": "2028/2029", "last": "2029/2030"], "mobilitiesPerYear": 3, "totalMonthsPerYear": 7.5,
                "subjectAreas": [["isced": "0532", "clarification": "Soil & water <labs>"]], "blended": true,
            ])
            conditions.append([
                "kind": "staffTraining", "sending": f.a.uuidString.lowercased(), "receiving": f.b.uuidString.lowercased(),
                "academicYears": ["first": "2027/2028", "last": "2027/2028"], "mobilitiesPerYear": 1, "totalDaysPerYear": 5.25,
                "languages": [["language": "fr"]],
            ])
            terms["cooperationConditions"] = conditions
            terms["contacts"] = [
                ["institution": f.b.uuidString.lowercased(), "name": "Bram \"B\" de Vries & co", "email": "bram@uva.nl", "role": "IRO"],
                ["institution": f.a.uuidString.lowercased(), "name": "Ana Peeters", "email": "ana@ulb.be"],
            ]
            let drafted = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: terms)
            try #require(drafted.status == .created, "\(drafted.body)")
            let (status, type, draftXML) = try await Self.export(h, id, token: f.ana)
            #expect(status == .ok)
            #expect(type?.hasPrefix("application/xml") == true)
            #expect(draftXML.contains("<in-effect>false</in-effect>"))
            #expect(draftXML.contains("<hei-id>ulb.be</hei-id>") && draftXML.contains("<hei-id>uva.nl</hei-id>"))
            #expect(!draftXML.contains("doubleDegree") && !draftXML.contains("studentsExchanged"))  // mobility only
            let checked = try await Self.validate(draftXML)
            #expect(checked.passed, "\(checked.output)\n\(draftXML)")

            // Approved by both: in effect, and the other party's export lists it first.
            let hash = try #require(drafted.string("hash"))
            _ = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.ana, json: ["hash": hash])
            _ = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.bram, json: ["hash": hash])
            let (_, _, activeXML) = try await Self.export(h, id, token: f.bram)
            #expect(activeXML.contains("<in-effect>true</in-effect>"))
            let uva = try #require(activeXML.range(of: "<hei-id>uva.nl</hei-id>"))
            let ulb = try #require(activeXML.range(of: "<hei-id>ulb.be</hei-id>"))
            #expect(uva.lowerBound < ulb.lowerBound)
            let again = try await Self.validate(activeXML)
            #expect(again.passed, "\(again.output)\n\(activeXML)")
            // The same conditions give the same iia-hash from either side.
            func iiaHash(_ xml: String) -> Substring? {
                xml.range(of: "<iia-hash>").map { xml[$0.upperBound...].prefix(64) }
            }
            #expect(iiaHash(draftXML) == iiaHash(activeXML))

            // A later draft (one condition) is exported only once it is in effect: the approved one stays.
            var smaller = f.terms()
            smaller["cooperationConditions"] = [conditions[2]]
            _ = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: smaller)
            let (_, _, stillXML) = try await Self.export(h, id, token: f.ana)
            #expect(stillXML.contains("staff-teacher-mobility-spec") && stillXML.contains("<in-effect>true</in-effect>"))
        }
    }

    @Test func aMinimalAgreementPassesToo() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            let terms: [String: Any] = [
                "startDate": "2027-01-01", "endDate": "2028-12-31",
                "cooperationConditions": [
                    [
                        "kind": "staffTeaching", "sending": f.a.uuidString.lowercased(), "receiving": f.b.uuidString.lowercased(),
                        "academicYears": ["first": "2027/2028", "last": "2028/2029"], "mobilitiesPerYear": 1, "totalDaysPerYear": 5,
                        "languages": [["language": "en", "cefr": "C1"]],
                    ]
                ],
            ]
            let drafted = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.bram, json: terms)
            try #require(drafted.status == .created, "\(drafted.body)")
            let (_, _, xml) = try await Self.export(h, id, token: f.bram)
            let checked = try await Self.validate(xml)
            #expect(checked.passed, "\(checked.output)\n\(xml)")
        }
    }
}

@Suite("Partnership lifecycle")
struct PartnershipLifecycleTests {
    /// Proposed, accepted, drafted and approved by both: active, with the fixture's terms in effect.
    static func active(_ h: Harness, _ f: PartnershipFixture) async throws -> (id: UUID, hash: String) {
        let id = try await f.propose(h)
        _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
        let drafted = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms())
        let hash = try #require(drafted.string("hash"))
        _ = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.ana, json: ["hash": hash])
        let both = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.bram, json: ["hash": hash])
        try #require(both.string("stage") == "active")
        return (id, hash)
    }

    @Test func meetingsNotesAndTheActivityFeed() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            // No meetings before the message of intent is accepted.
            let early = try await h.request(
                .post, "/v1/partnerships/\(id)/meetings", token: f.ana, json: ["startsAt": "2027-02-01T10:00:00Z", "agenda": "Kick-off"])
            #expect(early.status == .conflict)
            _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            let meeting = try await h.request(
                .post, "/v1/partnerships/\(id)/meetings", token: f.ana,
                json: [
                    "startsAt": "2027-02-01T10:00:00Z", "agenda": "Kick-off: scope of the exchange",
                    "participants": [
                        ["institution": f.a.uuidString.lowercased(), "name": "Ana Peeters", "role": "IRO"],
                        ["institution": f.b.uuidString.lowercased(), "name": "Bram de Vries"],
                    ],
                ])
            try #require(meeting.status == .created, "\(meeting.body)")
            let meetingID = try #require(meeting.string("id"))
            let minuted = try await h.request(
                .patch, "/v1/partnerships/\(id)/meetings/\(meetingID)", token: f.bram, json: ["minutes": "Agreed on four students a year."])
            #expect(minuted.string("minutes") == "Agreed on four students a year.")
            let foreign = try await h.request(
                .post, "/v1/partnerships/\(id)/meetings", token: f.ana,
                json: [
                    "startsAt": "2027-02-01T10:00:00Z", "agenda": "x",
                    "participants": [["institution": UUID().uuidString.lowercased(), "name": "Eve"]],
                ])
            #expect(foreign.problemFields == ["/participants/0/institution"])
            let meetings = try await h.request(.get, "/v1/partnerships/\(id)/meetings", token: f.bram)
            #expect((meetings["items"] as? [[String: Any]])?.count == 1)

            // Notes are one party's own.
            #expect(
                try await h.request(.post, "/v1/partnerships/\(id)/notes", token: f.ana, json: ["body": "Their housing offer is weak."]).status
                    == .created)
            #expect((try await h.request(.get, "/v1/partnerships/\(id)/notes", token: f.ana)["items"] as? [Any])?.count == 1)
            #expect((try await h.request(.get, "/v1/partnerships/\(id)/notes", token: f.bram)["items"] as? [Any])?.isEmpty == true)

            // The activity feed: what the other party did, newest first.
            let feedB = try await h.request(.get, "/v1/activity", token: f.bram)
            #expect((feedB["items"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } == ["meeting.planned", "partnership.proposed"])
            let feedA = try await h.request(.get, "/v1/activity?limit=1", token: f.ana)
            #expect((feedA["items"] as? [[String: Any]])?.first?["kind"] as? String == "meeting.minuted")
            let next = try #require(feedA.string("nextCursor"))
            let older = try await h.request(.get, "/v1/activity?limit=5&cursor=\(next)", token: f.ana)
            #expect((older["items"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } == ["partnership.accepted"])
        }
    }

    @Test func acceptingOpensARoomBothPartiesJoinWithoutInvitation() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/room", token: f.bram).status == .conflict)
            let accepted = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            let room = try #require(accepted.string("roomId"))
            // The proposer and the one who accepted own it; both see it among their rooms.
            for token in [f.ana, f.bram] {
                let seen = try await h.request(.get, "/v1/rooms/\(room)", token: token)
                #expect(seen.status == .ok)
                #expect(seen.string("role") == "owner")
                #expect(seen.string("title")?.hasPrefix("Partnership: ") == true)
            }
            // A colleague of either party joins without an invitation, and can write.
            let faculty = try await f.colleague(h, of: f.b, token: f.bram, email: "prof@uva.nl", role: "faculty")
            #expect(try await h.request(.get, "/v1/rooms/\(room)", token: faculty).status == .notFound)
            let joined = try await h.request(.post, "/v1/partnerships/\(id)/room", token: faculty)
            #expect(joined.string("roomId") == room)
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/room", token: faculty).status == .ok)  // again: nothing changes
            #expect(try await h.request(.get, "/v1/rooms/\(room)", token: faculty).string("role") == "member")
            let sent = try await h.request(.post, "/v1/rooms/\(room)/messages", token: faculty, json: ["clientId": "c1", "body": "Hello all"])
            #expect(sent.status == .created || sent.status == .ok, "\(sent.body)")
            let members = try await h.request(.get, "/v1/rooms/\(room)/members", token: f.ana)
            #expect((members["items"] as? [Any])?.count == 3)
            // A third institution cannot.
            let (c, emailC) = try await h.register(schac: "unibo.it", country: "IT")
            try await h.approve(c, adminToken: f.admin)
            let carla = try await h.signIn(emailC)
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/room", token: carla).status == .notFound)
            #expect(try await h.request(.get, "/v1/rooms/\(room)", token: carla).status == .notFound)
        }
    }

    @Test func assessmentRenewalAndTermination() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let (id, _) = try await Self.active(h, f)

            // Each party reports actuals for the KPIs in effect; those below target are flagged.
            let reportA = try await h.request(
                .post, "/v1/partnerships/\(id)/kpi-reports", token: f.ana, json: ["period": "2027/2028", "values": ["studentsExchanged": 5]])
            #expect(reportA.status == .ok, "\(reportA.body)")
            _ = try await h.request(
                .post, "/v1/partnerships/\(id)/kpi-reports", token: f.bram, json: ["period": "2027/2028", "values": ["studentsExchanged": 9]])
            _ = try await h.request(
                .post, "/v1/partnerships/\(id)/kpi-reports", token: f.bram, json: ["period": "2028", "values": ["jointPublications": 3]])
            let wrong = try await h.request(
                .post, "/v1/partnerships/\(id)/kpi-reports", token: f.ana, json: ["period": "2028", "values": ["studentsExchanged": 1, "golf": 2]])
            #expect(Set(wrong.problemFields) == ["/values/golf", "/values/studentsExchanged"])
            let assessment = try await h.request(.get, "/v1/partnerships/\(id)/assessment", token: f.ana)
            let kpis = try #require(assessment["kpis"] as? [[String: Any]])
            let students = try #require(kpis.first { $0["key"] as? String == "studentsExchanged" })
            let reports = try #require(students["reports"] as? [[String: Any]])
            #expect(reports.count == 2)
            #expect(reports.first { $0["institution"] as? String == f.a.uuidString.lowercased() }?["belowTarget"] as? Bool == true)
            #expect(reports.first { $0["institution"] as? String == f.b.uuidString.lowercased() }?["belowTarget"] as? Bool == false)
            #expect(students["target"] as? Double == 8)

            // Renewal: a new version from the one in effect, years moved; both approve it again.
            let renewed = try await h.request(
                .post, "/v1/partnerships/\(id)/renew", token: f.bram, json: ["startDate": "2032-09-01", "endDate": "2037-08-31"])
            try #require(renewed.status == .created, "\(renewed.body)")
            let terms = try #require(renewed["terms"] as? [String: Any])
            let years = (terms["cooperationConditions"] as? [[String: Any]])?.compactMap { ($0["academicYears"] as? [String: String])?["first"] }
            #expect(Set(years ?? []) == ["2032/2033"])
            let newHash = try #require(renewed.string("hash"))
            // The diff says exactly what changed.
            let diff = try await h.request(.get, "/v1/partnerships/\(id)/agreement/versions/1/diff/2", token: f.ana)
            let paths = Set((diff["changes"] as? [[String: Any]])?.compactMap { $0["path"] as? String } ?? [])
            #expect(paths.contains("/startDate") && paths.contains("/endDate"))
            #expect(paths.contains { $0.hasSuffix("/academicYears/first") })
            #expect(!paths.contains { $0.contains("kpis") })
            _ = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.ana, json: ["hash": newHash])
            let inEffect = try await h.request(.post, "/v1/partnerships/\(id)/agreement/approvals", token: f.bram, json: ["hash": newHash])
            #expect(inEffect["inEffectVersion"] as? Int == 2)
            #expect(inEffect.string("endsOn") == "2037-08-31")

            // A draft nobody approved may be deleted; an approved version may not.
            let draft = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms(months: 40))
            #expect(draft["version"] as? Int == 3)
            #expect(try await h.request(.delete, "/v1/partnerships/\(id)/agreement/versions/2", token: f.ana).status == .conflict)
            #expect(try await h.request(.delete, "/v1/partnerships/\(id)/agreement/versions/3", token: f.bram).status == .noContent)
            #expect(try await h.request(.get, "/v1/partnerships/\(id)/agreement/versions/3", token: f.ana).status == .notFound)

            // Termination: admins only, with a reason; then no more transitions.
            let staff = try await f.colleague(h, of: f.a, token: f.ana, email: "staff@ulb.be", role: "staff")
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/terminate", token: staff, json: ["reason": "x"]).status == .forbidden)
            let ended = try await h.request(.post, "/v1/partnerships/\(id)/terminate", token: f.bram, json: ["reason": "Programme closed."])
            #expect(ended.string("stage") == "terminated")
            let late = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms())
            #expect(late.status == .conflict)
            #expect(late.string("detail")?.contains("terminated") == true)
            // The approved agreement is kept.
            #expect((try await h.request(.get, "/v1/partnerships/\(id)/agreement/versions", token: f.ana)["items"] as? [Any])?.count == 2)
            // The pair may start again.
            #expect(try await f.propose(h) != id)
        }
    }
}

@Suite("Partnerships and the directory")
struct PartnershipRecommendationTests {
    @Test func partnersAndDeclinedInstitutionsLeaveRecommendations() async throws {
        try await Harness.run { h in
            let admin = try await h.networkAdmin()
            let seeker: [String: Any] = [
                "subjectAreas": [["code": "0714", "strength": "growing"]], "teachingLanguages": [["code": "en", "level": "C1"]],
                "offers": ["staff_exchange"], "seeks": ["joint_degree"],
            ]
            let offerer: [String: Any] = [
                "subjectAreas": [["code": "0714", "strength": "strong"]], "teachingLanguages": [["code": "en", "level": "C1"]],
                "offers": ["joint_degree"], "seeks": ["staff_exchange"],
            ]
            let (a, emailA) = try await h.register(schac: "ulb.be", extra: seeker)
            let (b, emailB) = try await h.register(schac: "uva.nl", country: "NL", extra: offerer)
            let (c, emailC) = try await h.register(schac: "unibo.it", country: "IT", extra: offerer)
            for id in [a, b, c] { try await h.approve(id, adminToken: admin) }
            let ana = try await h.signIn(emailA)
            let bram = try await h.signIn(emailB)
            let carla = try await h.signIn(emailC)
            func recommended(_ token: String) async throws -> Set<String> {
                try await h.waitUntilDirectoryIndexIsCurrent()
                let reply = try await h.request(.get, "/v1/directory/recommendations?limit=20", token: token)
                return Set((reply["items"] as? [[String: Any]] ?? []).compactMap { ($0["institution"] as? [String: Any])?["id"] as? String })
            }
            #expect(try await recommended(ana) == [b.uuidString.lowercased(), c.uuidString.lowercased()])
            // Proposed to B: B leaves A's recommendations, and A leaves B's.
            let proposed = try await h.request(
                .post, "/v1/partnerships", token: ana,
                json: ["partner": b.uuidString.lowercased(), "message": "Hello", "activities": ["joint_degree"]])
            #expect(proposed.status == .created)
            #expect(try await recommended(ana) == [c.uuidString.lowercased()])
            #expect(try await !recommended(bram).contains(a.uuidString.lowercased()))
            // Declined by C: C stays out too; a withdrawn one comes back.
            let second = try await h.request(
                .post, "/v1/partnerships", token: ana,
                json: ["partner": c.uuidString.lowercased(), "message": "Hello", "activities": ["joint_degree"]])
            _ = try await h.request(.post, "/v1/partnerships/\(second.string("id")!)/decline", token: carla)
            #expect(try await recommended(ana).isEmpty)
            _ = try await h.request(.post, "/v1/partnerships/\(proposed.string("id")!)/withdraw", token: ana)
            #expect(try await recommended(ana) == [b.uuidString.lowercased()])
        }
    }
}

@Suite("Partnerships that end")
struct PartnershipExpiryTests {
    @Test func anAgreementPastItsEndExpiresOnce() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let (id, _) = try await PartnershipLifecycleTests.active(h, f)
            let clock = PartnershipClock(pool: h.pool)
            #expect(try await clock.tick() == 0)  // ends in 2032
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            try await owner.query("UPDATE partnerships SET ends_on = current_date - 1 WHERE id = \(id)")
            await owner.close()
            #expect(try await clock.tick() == 1)
            #expect(try await clock.tick() == 0)  // once
            let after = try await h.request(.get, "/v1/partnerships/\(id)", token: f.bram)
            #expect(after.string("stage") == "expired")
            let timeline = try await h.request(.get, "/v1/partnerships/\(id)/timeline", token: f.ana)
            #expect((timeline["items"] as? [[String: Any]])?.last?["kind"] as? String == "partnership.expired")
            let feed = try await h.request(.get, "/v1/activity?limit=1", token: f.ana)
            #expect((feed["items"] as? [[String: Any]])?.first?["kind"] as? String == "partnership.expired")
            // The pair may start again; nothing else moves an expired partnership.
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/terminate", token: f.ana, json: ["reason": "x"]).status == .conflict)
            #expect(try await f.propose(h) != id)
        }
    }
}

@Suite("Partnerships of a suspended institution")
struct PartnershipSuspensionTests {
    @Test func aSuspensionFreezesThePartnershipAndReinstatementThaws() async throws {
        try await Harness.run { h in
            let f = try await PartnershipFixture.make(h)
            let id = try await f.propose(h)
            _ = try await h.request(.post, "/v1/partnerships/\(id)/accept", token: f.bram)
            #expect(
                try await h.request(.post, "/v1/admin/institutions/\(f.b)/suspend", token: f.admin, json: ["reason": "fees unpaid"]).status == .ok)
            // Nothing moves towards the suspended institution; the partnership stays readable.
            let frozen = try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms())
            #expect(frozen.status == .conflict)
            #expect(frozen.string("detail")?.contains("suspended") == true)
            #expect(try await h.request(.post, "/v1/partnerships/\(id)/terminate", token: f.ana, json: ["reason": "x"]).status == .conflict)
            #expect(try await h.request(.get, "/v1/partnerships/\(id)", token: f.ana).string("stage") == "negotiating")
            // Nor may a new one be proposed to it.
            let (c, emailC) = try await h.register(schac: "unibo.it", country: "IT")
            try await h.approve(c, adminToken: f.admin)
            let carla = try await h.signIn(emailC)
            let toSuspended = try await h.request(
                .post, "/v1/partnerships", token: carla,
                json: ["partner": f.b.uuidString.lowercased(), "message": "Hello", "activities": ["summer_school"]])
            #expect(toSuspended.problemFields == ["/partner"])
            // Reinstated: exactly as before.
            #expect(
                try await h.request(.post, "/v1/admin/institutions/\(f.b)/reinstate", token: f.admin, json: ["reason": "paid"]).status == .ok)
            #expect(try await h.request(.put, "/v1/partnerships/\(id)/agreement", token: f.ana, json: f.terms()).status == .created)
        }
    }
}
