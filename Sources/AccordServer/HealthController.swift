import AccordCore
import Directory
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `GET /healthz`: the process is alive. `GET /readyz`: the database answers and its schema is
/// current (200), else 503 with the reason; it also says whether the directory index serves
/// searches yet (`directoryIndex`: `serving`, or `loading` while searches use SQL alone).
struct HealthController {
    let schemaCheck: SchemaCheck
    let directoryIndex: DirectoryIndex?

    let logger: Logger

    struct Health: ResponseEncodable {
        let status: String
        var migrations: Int?
        var directoryIndex: String?
    }

    func addRoutes(to router: Router<AccordRequestContext>) {
        router.get("/healthz") { _, _ in Health(status: "ok") }
        router.get("/readyz") { _, _ -> Health in
            switch await schemaCheck.check() {
            case .current(let migrations):
                return Health(status: "ready", migrations: migrations, directoryIndex: directoryIndex.map { $0.isServing ? "serving" : "loading" })
            case .behind(let reason):
                logger.warning("not ready", metadata: ["reason": "\(reason)"])
                throw Problem.serviceUnavailable("Not ready: the database schema is behind this version; run `accord migrate`.").with(headers: [
                    .retryAfter: "5"
                ])
            case .unreachable(let reason):
                logger.warning("not ready", metadata: ["reason": "\(reason)"])
                throw Problem.serviceUnavailable("Not ready: the database is unreachable.").with(headers: [.retryAfter: "5"])
            case .misconfigured(let reason):
                logger.warning("not ready", metadata: ["reason": "\(reason)"])
                throw Problem.serviceUnavailable("Not ready: the database refuses the server's connection settings.").with(headers: [.retryAfter: "5"]
                )
            }
        }
    }
}
