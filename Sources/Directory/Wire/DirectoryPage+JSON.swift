import AccordCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A directory page written as JSON directly, without an encoder: the document `WireEncoder` writes (a test
/// compares the two).
extension DirectoryPage: ResponseGenerator {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var writer = JSONBytes()
        writer.page(self)
        var buffer = ByteBuffer()
        buffer.writeBytes(writer.bytes)
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .contentLength: String(buffer.readableBytes)],
            body: .init(byteBuffer: buffer))
    }

    /// The page as JSON bytes.
    public var jsonBytes: [UInt8] {
        var writer = JSONBytes()
        writer.page(self)
        return writer.bytes
    }
}

extension JSONBytes {
    mutating func page(_ page: DirectoryPage) {
        open("{")
        key("items")
        open("[")
        for item in page.items { self.item(item) }
        close("]")
        if let total = page.total {
            key("total")
            number(total)
        }
        if let facets = page.facets {
            key("facets")
            open("{")
            for (facet, counts) in facets.sorted(by: { $0.key < $1.key }) {
                key(facet)
                open("{")
                for (value, count) in counts.sorted(by: { $0.key < $1.key }) {
                    key(value)
                    number(count)
                }
                close("}")
            }
            close("}")
        }
        if let next = page.nextCursor {
            key("nextCursor")
            string(next)
        }
        close("}")
    }

    mutating func item(_ item: DirectoryItem) {
        open("{")
        key("id")
        string(item.id.uuidString.lowercased())
        key("schac")
        string(item.schac)
        key("names")
        open("[")
        for name in item.names {
            open("{")
            key("lang")
            string(name.lang)
            key("value")
            string(name.value)
            close("}")
        }
        close("]")
        if let acronym = item.acronym {
            key("acronym")
            string(acronym)
        }
        key("country")
        string(item.country)
        if let city = item.city {
            key("city")
            string(city)
        }
        key("type")
        string(item.type)
        key("tier")
        string(item.tier)
        if let students = item.studentCount {
            key("studentCount")
            number(students)
        }
        key("fields")
        open("[")
        for field in item.fields {
            open("{")
            key("code")
            string(field.code)
            if let strength = field.strength {
                key("strength")
                string(strength)
            }
            close("}")
        }
        close("]")
        key("languages")
        open("[")
        for language in item.languages {
            open("{")
            key("code")
            string(language.code)
            key("level")
            string(language.level)
            close("}")
        }
        close("]")
        key("offers")
        strings(item.offers)
        key("seeks")
        strings(item.seeks)
        key("services")
        strings(item.services)
        if let snippet = item.snippet {
            key("snippet")
            string(snippet)
        }
        close("}")
    }
}
