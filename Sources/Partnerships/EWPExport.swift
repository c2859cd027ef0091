import AccordCrypto
import Foundation

/// An agreement version as an Erasmus Without Paper IIAs API v7 get-response document, with the
/// `iia-hash` the specification prescribes: SHA-256 of the text its official XSLT
/// (transform_version_7.xsl) derives from the cooperation conditions. Mobility only: the network's
/// other activities, KPIs and financial terms have no place in an IIA and are left out.
enum EWPExport {
    static let namespace = "https://github.com/erasmus-without-paper/ewp-specs-api-iias/blob/stable-v7/endpoints/get-response.xsd"
    static let contactNamespace = "https://github.com/erasmus-without-paper/ewp-specs-types-contact/tree/stable-v1"

    /// One party of the export: its SCHAC code is its heiId.
    struct Party {
        let id: UUID
        let schac: String
    }

    /// The document for `terms`, `first` (the serving institution, the caller's) listed first.
    static func document(iiaID: UUID, first: Party, second: Party, terms: AgreementTerms, inEffect: Bool) -> String {
        let iia = self.iia(iiaID: iiaID, first: first, second: second, terms: terms, inEffect: inEffect)
        let root = XMLNode(
            "iias-get-response", attributes: [("xmlns", namespace), ("xmlns:c", contactNamespace)], children: [iia])
        return #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n" + root.serialized + "\n"
    }

    static func iia(iiaID: UUID, first: Party, second: Party, terms: AgreementTerms, inEffect: Bool) -> XMLNode {
        let heiID = [first.id: first.schac, second.id: second.schac]
        let id = iiaID.uuidString.lowercased()
        func partner(_ party: Party) -> XMLNode {
            let contacts = (terms.contacts ?? []).filter { $0.institution == party.id }.map { contact in
                XMLNode(
                    "c:contact",
                    children: [XMLNode("c:contact-name", text: contact.name), XMLNode("c:email", text: contact.email)]
                        + (contact.role.map { [XMLNode("c:role-description", text: $0)] } ?? []))
            }
            return XMLNode("partner", children: [XMLNode("hei-id", text: party.schac), XMLNode("iia-id", text: id)] + contacts)
        }
        // The schema wants the four kinds in this order.
        let order: [AgreementTerms.MobilityKind] = [.studentStudies, .studentTraineeship, .staffTeaching, .staffTraining]
        let specs = order.flatMap { kind in
            terms.cooperationConditions.filter { $0.kind == kind }.map { spec($0, heiID: heiID) }
        }
        let conditions = XMLNode("cooperation-conditions", children: specs)
        let hash = Secrets.sha256Hex(Array(textToHash(partners: [id, id], conditions: conditions).utf8))
        return XMLNode(
            "iia",
            children: [
                partner(first), partner(second), XMLNode("in-effect", text: inEffect ? "true" : "false"), conditions,
                XMLNode("iia-hash", text: hash),
            ])
    }

    static func spec(_ c: AgreementTerms.CooperationCondition, heiID: [UUID: String]) -> XMLNode {
        let name =
            switch c.kind {
            case .studentStudies: "student-studies-mobility-spec"
            case .studentTraineeship: "student-traineeship-mobility-spec"
            case .staffTeaching: "staff-teacher-mobility-spec"
            case .staffTraining: "staff-training-mobility-spec"
            }
        var children = [
            XMLNode("sending-hei-id", text: heiID[c.sending] ?? ""), XMLNode("receiving-hei-id", text: heiID[c.receiving] ?? ""),
            XMLNode("receiving-first-academic-year-id", text: c.academicYears.first),
            XMLNode("receiving-last-academic-year-id", text: c.academicYears.last),
            XMLNode("mobilities-per-year", text: "\(c.mobilitiesPerYear)"),
        ]
        for skill in c.languages ?? [] {
            children.append(
                XMLNode(
                    "recommended-language-skill",
                    children: [XMLNode("language", text: skill.language)] + (skill.cefr.map { [XMLNode("cefr-level", text: $0)] } ?? [])))
        }
        for area in c.subjectAreas ?? [] {
            children.append(
                XMLNode(
                    "subject-area",
                    children: [XMLNode("isced-f-code", text: area.isced)]
                        + (area.clarification.map { [XMLNode("isced-clarification", text: $0)] } ?? [])))
        }
        if c.kind.isStudent {
            if let months = c.totalMonthsPerYear { children.append(XMLNode("total-months-per-year", text: decimal(months))) }
            children.append(XMLNode("blended", text: c.blended == true ? "true" : "false"))
            for level in c.eqfLevels ?? [] { children.append(XMLNode("eqf-level", text: "\(level)")) }
        } else if let days = c.totalDaysPerYear {
            children.append(XMLNode("total-days-per-year", text: decimal(days)))
        }
        return XMLNode(name, children: children)
    }

    /// A decimal as the schema writes it: no exponent, at most two fraction digits.
    static func decimal(_ value: Double) -> String {
        if value == value.rounded() { return String(Int64(value)) }
        var text = String(format: "%.2f", value)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }

    /// What transform_version_7.xsl derives from an IIA: each partner's iia-id, then for each
    /// mobility spec every leaf element below it (contacts and the two academic years excepted) as
    /// `_grandparent.parent.name=value_`, then the two academic years. (None of the elements written
    /// here carries attributes, which the transform would also list.)
    static func textToHash(partners: [String], conditions: XMLNode) -> String {
        var text = ""
        for (n, id) in partners.enumerated() { text += "_iia-id_\(n + 1)=\(id)_" }
        for spec in conditions.children {
            func walk(_ node: XMLNode, parent: String, grandparent: String) {
                guard node.name != "sending-contact", node.name != "receiving-contact" else { return }
                let isYear = node.name == "receiving-first-academic-year-id" || node.name == "receiving-last-academic-year-id"
                if node.children.isEmpty {
                    if !isYear { text += "_\(grandparent).\(parent).\(node.name)=\(node.text ?? "")_" }
                } else {
                    for child in node.children { walk(child, parent: node.name, grandparent: parent) }
                }
            }
            for child in spec.children { walk(child, parent: spec.name, grandparent: conditions.name) }
            for year in ["receiving-first-academic-year-id", "receiving-last-academic-year-id"] {
                text += "_\(year)=\(spec.children.first { $0.name == year }?.text ?? "")_"
            }
        }
        return text
    }
}

/// A small XML element: a name, attributes, and either text or children.
struct XMLNode {
    let name: String
    var attributes: [(String, String)] = []
    var text: String?
    var children: [XMLNode] = []

    init(_ name: String, attributes: [(String, String)] = [], text: String? = nil, children: [XMLNode] = []) {
        self.name = name
        self.attributes = attributes
        self.text = text
        self.children = children
    }

    var serialized: String {
        var out = "<\(name)"
        for (key, value) in attributes { out += " \(key)=\"\(Self.escape(value))\"" }
        if children.isEmpty {
            guard let text else { return out + "/>" }
            return out + ">\(Self.escape(text))</\(name)>"
        }
        return out + ">" + children.map(\.serialized).joined() + "</\(name)>"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
