import AccordCore
import Foundation
import Hummingbird
import NIOCore

/// `GET /openapi.yaml`: the API contract, as shipped with the server.
struct OpenAPIController {
    /// The contract (Resources/openapi.yaml; docs/openapi.yaml links to it).
    static let document: ByteBuffer? = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let data = try? Data(contentsOf: url)
        else { return nil }
        return ByteBuffer(bytes: data)
    }()

    func addRoutes(to router: Router<AccordRequestContext>) {
        router.get("/openapi.yaml") { _, _ -> Response in
            guard let document = Self.document else { throw HTTPError(.notFound) }
            return Response(
                status: .ok, headers: [.contentType: "application/yaml", .cacheControl: "public, max-age=300"], body: .init(byteBuffer: document))
        }
    }
}
